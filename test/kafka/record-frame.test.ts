/**
 * src/connectors/kafka/record-frame.ts: what a worker writes for a Kafka sink reads back as the
 * same keys and values; the hash it carries puts a key in the partition the Java client (and
 * kafkajs' default partitioner) would; and the records the sink completes from it, sent as one
 * encoded list per partition, make the very produce request kafkajs writes for the same messages.
 */
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";

const frame = await import("../../dist/connectors/kafka/record-frame.js");
const { crc32c } = await import("../../dist/connectors/kafka/crc32c.js");
const patches = await import("../../dist/connectors/kafka/kafkajs-patches.js");
const { RecordFrameWriter, PartitionRecords, decodeRecords, GATHER_BYTES, NO_KEY } = frame;
const require = createRequire(import.meta.url);

type Rec = { key: string | Buffer | null; value: string | Buffer };
const bytesOf = (v: string | Buffer) => (typeof v === "string" ? Buffer.from(v, "utf8") : v);

/** Writes `records` with a writer (gathering or not) and returns the frames it handed on. */
function writeAll(records: Rec[], gather = true): Buffer[] {
  const frames: Buffer[] = [];
  const w = new RecordFrameWriter((b: Uint8Array, len: number) => frames.push(Buffer.from(b.subarray(0, len))), gather);
  for (const r of records) w.write(r.key === null ? [r.value, null] : [r.value, r.key]);
  w.flush();
  return frames;
}

const sample: Rec[] = [
  { key: "word", value: "word => 1" },
  { key: null, value: "no key" },
  { key: Buffer.from([0, 1, 2, 255]), value: Buffer.from([9, 8, 7]) },
  { key: "", value: "" }, // an empty key is a key (hashed), not a missing one
  { key: "clé-ünïcødé-✓", value: "välue ✓ €" },
  { key: "k".repeat(200), value: "v".repeat(70) }, // lengths past one varint byte and past the ASCII fast path
  { key: "big", value: Buffer.alloc(GATHER_BYTES + 10, 3) }, // bigger than a gathered frame: a frame of its own
  ...Array.from({ length: 5000 }, (_, i) => ({ key: `key-${i % 37}`, value: `value ${i}` })),
];

describe("Kafka record frame", () => {
  it("reads back every key and value written, in order, gathered or one frame per record", () => {
    for (const gather of [true, false]) {
      const frames = writeAll(sample, gather);
      if (gather) {
        expect(frames.length).toBeLessThan(sample.length / 10);
        for (const f of frames) if (f.length > GATHER_BYTES) expect(decodeRecords(f).length).toBe(1);
      } else {
        expect(frames.length).toBe(sample.length);
      }
      const back = frames.flatMap((f) => decodeRecords(f));
      expect(back.length).toBe(sample.length);
      back.forEach((r, i) => {
        const want = sample[i];
        expect(r.value.equals(bytesOf(want.value)), `value ${i}`).toBe(true);
        if (want.key === null) {
          expect(r.key).toBe(null);
          expect(r.hash).toBe(NO_KEY);
        } else {
          expect(r.key!.equals(bytesOf(want.key)), `key ${i}`).toBe(true);
          expect(r.hash).toBe(patches.murmur2(bytesOf(want.key)) & 0x7fffffff);
        }
      });
    }
  });

  it("refuses an encoder result that is not [value, key] of strings or bytes, writing nothing", () => {
    const frames: Buffer[] = [];
    const w = new RecordFrameWriter((b: Uint8Array, len: number) => frames.push(Buffer.from(b.subarray(0, len))));
    expect(() => w.write("just a value")).toThrow(
      /must return \[value, key\] or \{ value, key, headers \}, got string just a value/,
    );
    expect(() => w.write({ value: "v", timestamp: 5.5 })).toThrow(
      /timestamp returned by a Kafka encoder must be an integer/,
    );
    expect(() => w.write({ value: "v", timestamp: "now" })).toThrow(/must be an integer number of ms/);
    expect(() => w.write({ value: "v", partition: 1 })).toThrow(/unknown field "partition"/);
    expect(() => w.write({ value: "v", headers: { h: 7 } })).toThrow(/header "h" returned by an encoder/);
    expect(() => w.write([42, "k"])).toThrow(
      /Kafka value returned by an encoder must be a string, Buffer or Uint8Array/,
    );
    expect(() => w.write(["v", { k: 1 }])).toThrow(/Kafka key returned by an encoder/);
    w.write(["ok", undefined]); // no key
    w.flush();
    const back = frames.flatMap((f) => decodeRecords(f));
    expect(back.map((r) => [r.key, r.value.toString()])).toEqual([[null, "ok"]]);
  });

  it("writes the headers of an encoder's { value, key, headers } into the record, in order", () => {
    const frames: Buffer[] = [];
    const w = new RecordFrameWriter((b: Uint8Array, len: number) => frames.push(Buffer.from(b.subarray(0, len))));
    w.write({
      value: "v1",
      key: "k",
      headers: { trace: "abc", bin: Buffer.from([0, 255]), none: null, n: ["1", "2"] },
    });
    w.write({ value: "v2" });
    w.write(["v3", "k3"]);
    w.flush();
    const back = frames.flatMap((f) => decodeRecords(f));
    expect(back.map((r) => [r.key?.toString() ?? null, r.value.toString()])).toEqual([
      ["k", "v1"],
      [null, "v2"],
      ["k3", "v3"],
    ]);
    const h = back[0].headers!;
    expect(Object.keys(h)).toEqual(["trace", "bin", "none", "n"]);
    expect(String(h.trace)).toBe("abc");
    expect([...(h.bin as Buffer)]).toEqual([0, 255]);
    expect(h.none).toBeNull();
    expect((h.n as Buffer[]).map(String)).toEqual(["1", "2"]);
    expect(back[1].headers).toBeUndefined();
  });

  it("puts a key in the partition kafkajs' Java-compatible default partitioner picks", () => {
    const kafkajs = require("kafkajs");
    const partitioner = kafkajs.Partitioners.DefaultPartitioner();
    const keys = Array.from({ length: 2000 }, (_, i) => `w${i * 7919}-${"x".repeat(i % 9)}`);
    const frames = writeAll(keys.map((key) => ({ key, value: "v" })));
    const back = frames.flatMap((f) => decodeRecords(f));
    for (const n of [1, 3, 4, 12]) {
      const partitionMetadata = Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: 0 }));
      back.forEach((r, i) => {
        const theirs = partitioner({
          topic: "t",
          partitionMetadata,
          message: { key: Buffer.from(keys[i]), value: "v" },
        });
        expect(r.hash % n, keys[i]).toBe(theirs);
      });
    }
  });

  it("makes, through the patched grouping and encoder, the produce request kafkajs writes for the same messages", async () => {
    const original = patches.originalProduceRequest;
    const patched = patches.patchedProduceRequest;
    if (original === null || patched === null)
      throw new Error("the produce request patch is not installed in this process");
    const Long = require("kafkajs/src/utils/long.js");
    const partitions = 3;
    const records = sample.filter((r) => bytesOf(r.value).length < 100_000);
    // The sink's side: each record appended to its partition's records, as the sink places them.
    const parts = Array.from({ length: partitions }, () => new PartitionRecords());
    const plain: { key: Buffer | null; value: Buffer }[][] = parts.map(() => []);
    let spread = 0;
    for (const f of writeAll(records))
      frame.forEachRecord(f, 0, f.length, (hash: number, tailAt: number, tailLen: number) => {
        const p = hash === NO_KEY ? spread++ % partitions : hash % partitions;
        parts[p].append(f, tailAt, tailLen);
        const { key, value } = frame.decodeTail(f, tailAt);
        plain[p].push({ key, value });
      });
    const partitionMetadata = parts.map((_, i) => ({ partitionId: i, leader: 0 }));
    const grouped = patches.groupMessagesPerPartition({
      topic: "t",
      partitionMetadata,
      messages: parts.map((part, p) =>
        patches.encodedRecordsMessage({ partition: p, records: part.buf.subarray(0, part.len), count: part.count }),
      ),
      partitioner: () => {
        throw new Error("encoded records are partitioned by the sink");
      },
    });
    // kafkajs advances the idempotent producer's sequence by messages.length: the record count.
    parts.forEach((part, p) => expect(grouped[p].length).toBe(part.count));
    const realNow = Date.now;
    Date.now = () => 1_700_000_000_000;
    try {
      for (const transactional of [false, true]) {
        const args = (lists: unknown[][]) => ({
          acks: -1,
          timeout: 30000,
          transactionalId: transactional ? "tx" : null,
          producerId: transactional ? Long.fromInt(42) : undefined,
          producerEpoch: transactional ? 3 : undefined,
          topicData: [
            {
              topic: "t",
              partitions: lists.map((messages, p) => ({ partition: p, firstSequence: 10 * p, messages })),
            },
          ],
        });
        const ours = (await patched(args(parts.map((_, p) => grouped[p]))).encode()).buffer as Buffer;
        const theirs = (await original(args(plain)).encode()).buffer as Buffer;
        expect(ours.equals(theirs), `transactional: ${transactional}`).toBe(true);
      }
    } finally {
      Date.now = realNow;
    }
    expect(() =>
      patches.groupMessagesPerPartition({
        topic: "t",
        partitionMetadata: partitionMetadata.slice(0, 1),
        messages: [patches.encodedRecordsMessage({ partition: 2, records: Buffer.alloc(0), count: 0 })],
        partitioner: () => 0,
      }),
    ).toThrow(expect.objectContaining({ name: "KafkaJSMetadataNotLoaded" }));
  });

  it("encodes records with an encoder's timestamps byte for byte as kafkajs does", async () => {
    const original = patches.originalProduceRequest;
    const patched = patches.patchedProduceRequest;
    if (original === null || patched === null)
      throw new Error("the produce request patch is not installed in this process");
    // Increasing times of one digit count: kafkajs' batch starts at the smallest (by string sort) and
    // ends at the largest, which are then the first and the last, as the sink's.
    const records = Array.from({ length: 50 }, (_, i) => ({
      key: i % 3 ? `k${i}` : null,
      value: `v${i}`,
      timestamp: 1_600_000_000_000 + i * 997,
    }));
    const part = new PartitionRecords();
    const plain: { key: Buffer | null; value: Buffer; timestamp: number }[] = [];
    const frames: Buffer[] = [];
    const w = new RecordFrameWriter((b: Uint8Array, len: number) => frames.push(Buffer.from(b.subarray(0, len))));
    for (const r of records) w.write({ value: r.value, key: r.key, timestamp: r.timestamp });
    w.flush();
    for (const f of frames)
      frame.forEachRecord(f, 0, f.length, (_h: number, tailAt: number, tailLen: number, ts: number) => {
        part.append(f, tailAt, tailLen, ts);
        plain.push({ ...frame.decodeTail(f, tailAt), timestamp: ts });
      });
    expect(plain.map((r) => r.timestamp)).toEqual(records.map((r) => r.timestamp));
    const timesBack: number[] = [];
    part.forEachTail((_b: Buffer, _at: number, _len: number, ts: number) => timesBack.push(ts));
    expect(timesBack).toEqual(records.map((r) => r.timestamp));
    const args = (messages: unknown[]) => ({
      acks: -1,
      timeout: 30000,
      topicData: [{ topic: "t", partitions: [{ partition: 0, firstSequence: 0, messages }] }],
    });
    const encoded = patches.encodedRecordsMessage({
      partition: 0,
      records: part.buf.subarray(0, part.len),
      count: part.count,
      firstTimestamp: part.base,
      maxTimestamp: part.max,
    });
    const grouped = patches.groupMessagesPerPartition({
      topic: "t",
      partitionMetadata: [{ partitionId: 0, leader: 0 }],
      messages: [encoded],
      partitioner: () => 0,
    });
    const ours = (await patched(args(grouped[0])).encode()).buffer as Buffer;
    const theirs = (
      await original(args(plain.map((r) => ({ key: r.key, value: r.value, timestamp: r.timestamp })))).encode()
    ).buffer as Buffer;
    expect(ours.equals(theirs)).toBe(true);
  });

  it("keeps each record's time in a batch that mixes records with and without one", () => {
    for (const v of [0, 1, -1, 63, -64, 64, 1e12, -1.7e12, 2 ** 51, -(2 ** 51)]) {
      const b = Buffer.alloc(10);
      const end = frame.writeVarLong(b, 0, v);
      expect(end).toBe(frame.sizeOfVarLong(v));
      expect(frame.readVarLong(b, 0)).toEqual([v, end]);
    }
    const part = new PartitionRecords();
    const tail = Buffer.from([1, 2, 0x61, 0]); // no key, value "a", no headers
    const before = Date.now();
    part.append(tail, 0, tail.length); // none: the batch's time
    part.append(tail, 0, tail.length, 5_000); // long before the batch
    part.append(tail, 0, tail.length); // none, after one with a time: now
    const after = Date.now();
    const times: number[] = [];
    part.forEachTail((_b: Buffer, _at: number, _len: number, ts: number) => times.push(ts));
    expect(times[1]).toBe(5_000);
    for (const t of [times[0], times[2]]) {
      expect(t).toBeGreaterThanOrEqual(before);
      expect(t).toBeLessThanOrEqual(after);
    }
    expect(part.base).toBe(times[0]);
    expect(part.max).toBe(Math.max(...times));
    part.clear();
    part.append(tail, 0, tail.length);
    expect(Number.isNaN(part.base)).toBe(true); // no time of its own: delta 0, the batch's time
  });

  it("checksums record batches as kafkajs' CRC-32C does", () => {
    const theirs = require("kafkajs/src/protocol/recordBatch/crc32C/index.js") as (b: Buffer) => number;
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283); // the standard check value
    for (let n = 0; n < 300; n++) {
      const b = Buffer.from(Array.from({ length: n * 7 }, (_, i) => (i * 131 + n * 17) & 0xff));
      expect(crc32c(b), `${b.length} bytes`).toBe(theirs(b));
      const end = Math.max(3, b.length - 5);
      expect(crc32c(b, 3, end)).toBe(theirs(b.subarray(3, end)));
    }
  });
});
