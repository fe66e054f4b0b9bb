/**
 * src/connectors/kafka/kafkajs-patches.ts: the replacement of kafkajs' per-partition
 * grouping gives kafkajs' result (same partitions, same order within each); the
 * direct produce-request encoder writes kafkajs' bytes exactly; both are what
 * kafkajs' producer uses in a thread that loads the Kafka sink, which is how the
 * engine loads it (a fresh process, as an I/O thread is).
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { REPO } from "./helpers.js";

const patches = await import("../../dist/connectors/kafka/kafkajs-patches.js");
const { groupMessagesPerPartition } = patches;
const require = createRequire(import.meta.url);

describe("kafkajs patches", () => {
  it("groups like kafkajs' own grouping: same partitions, input order within each", () => {
    // kafkajs' function, read from its source file (this test process may already hold the patched one)
    const { readFileSync } = require("node:fs") as typeof import("node:fs");
    const src = readFileSync(require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js"), "utf8");
    const mod = { exports: {} as any };
    new Function("module", src)(mod);
    const original = mod.exports;
    expect(typeof original).toBe("function");

    const messages = Array.from({ length: 3000 }, (_, i) => ({ key: `k${(i * 7919) % 97}`, value: `v${i}` }));
    const partitionMetadata = [
      { partitionId: 0 },
      { partitionId: 1 },
      { partitionId: 2 },
      { partitionId: 3 },
      { partitionId: 4 },
    ];
    const partitioner = ({ message }: { message: any }) => Number(message.key.slice(1)) % partitionMetadata.length;
    const args = { topic: "t", partitionMetadata, messages, partitioner };
    const ours = groupMessagesPerPartition(args);
    expect(ours).toEqual(original(args));
    expect(Object.keys(ours).sort()).toEqual(["0", "1", "2", "3", "4"]);
    for (const list of Object.values(ours)) {
      const seq = (list as { value: string }[]).map((m) => Number(m.value.slice(1)));
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
    }
    expect(groupMessagesPerPartition({ ...args, partitionMetadata: [] })).toEqual({});
  });

  it("encodes produce requests byte for byte as kafkajs does (plain records), and defers to kafkajs otherwise", async () => {
    const original = patches.originalProduceRequest;
    const patched = patches.patchedProduceRequest;
    // helpers.ts loads kafkajs first, but kafkajs requires its produce request modules lazily: the patch is in.
    if (original === null || patched === null)
      throw new Error("the produce request patch is not installed in this process");
    const Long = require("kafkajs/src/utils/long.js");
    const big = Buffer.alloc(20_000, 7); // a multi-byte varint length
    const plain = (n: number, withKeys: boolean) =>
      Array.from({ length: n }, (_, i) => ({
        key: withKeys ? (i % 5 === 0 ? null : Buffer.from(`key-${i % 13}`)) : null,
        value: i === 3 ? big : i === 4 ? null : Buffer.from(`value ${i} ${"x".repeat(i % 50)}`),
      }));
    const cases = [
      {
        acks: -1,
        timeout: 30000,
        topicData: [
          {
            topic: "t1",
            partitions: [
              { partition: 0, messages: plain(300, true) },
              { partition: 3, messages: plain(1, false) },
            ],
          },
        ],
      },
      {
        acks: -1,
        timeout: 1000,
        transactionalId: "tx-1",
        producerId: Long.fromNumber(12345),
        producerEpoch: 3,
        topicData: [
          { topic: "a", partitions: [{ partition: 1, firstSequence: 77, messages: plain(9000, true) }] },
          { topic: "b", partitions: [{ partition: 0, firstSequence: 0, messages: plain(70, false) }] },
        ],
      },
    ];
    const realNow = Date.now;
    Date.now = () => 1_700_000_000_123; // both encoders stamp the batch with Date.now()
    try {
      for (const args of cases) {
        const want = (await original(args).encode()).buffer as Buffer;
        const got = (await patched(args).encode()).buffer as Buffer;
        expect(got.length).toBe(want.length);
        expect(got.equals(want)).toBe(true);
      }
      // Not plain (a string value, a timestamp): kafkajs' own encode, untouched.
      const other = {
        acks: -1,
        timeout: 1000,
        topicData: [
          { topic: "t", partitions: [{ partition: 0, messages: [{ key: "k", value: "v", timestamp: "5" }] }] },
        ],
      };
      expect(patched(other).encode.toString()).toBe(original(other).encode.toString());
      expect(((await patched(other).encode()).buffer as Buffer).equals((await original(other).encode()).buffer)).toBe(
        true,
      );
    } finally {
      Date.now = realNow;
    }
  });

  it("decodes fetched record batches into the very messages kafkajs makes", async () => {
    const original = patches.originalRecordBatchDecoder;
    const patched = patches.patchedRecordBatchDecoder;
    if (original === null || patched === null)
      throw new Error("the record batch decoder patch is not installed in this process");
    const Long = require("kafkajs/src/utils/long.js");
    const Decoder = require("kafkajs/src/protocol/decoder.js");
    const { RecordBatch } = require("kafkajs/src/protocol/recordBatch/v0/index.js");
    const Record = require("kafkajs/src/protocol/recordBatch/record/v0/index.js");
    const { Types } = require("kafkajs/src/protocol/message/compression/index.js");
    const big = Buffer.alloc(300, 5); // a two-byte varint length
    const records = (n: number) =>
      Array.from({ length: n }, (_, i) =>
        Record({
          offsetDelta: i,
          timestampDelta: i * 1000,
          key: i % 4 === 0 ? null : Buffer.from(`key-${i}`),
          value: i % 7 === 3 ? null : i % 5 === 0 ? big : Buffer.from(`value ${i}`),
          // a few records with headers go through kafkajs' own record decoder
          headers: i % 9 === 8 ? { h: Buffer.from("x"), m: [Buffer.from("1"), Buffer.from("2")] } : {},
        }),
      );
    const cases = [
      { firstOffset: Long.fromInt(0), records: records(300) },
      { firstOffset: Long.fromString("123456789012"), records: records(50), transactional: true },
      // an offset past 2^53: kafkajs' Long arithmetic, not a double's
      { firstOffset: Long.fromString("9007199254740990"), records: records(10) },
      { firstOffset: Long.fromInt(7), records: records(40), compression: Types.GZIP },
    ];
    for (const c of cases) {
      const batch = await RecordBatch({
        ...c,
        firstTimestamp: 1_700_000_000_000,
        maxTimestamp: 1_700_000_300_000,
        lastOffsetDelta: c.records.length - 1,
      });
      // two batches back to back, as a fetch response holds them
      const bytes = Buffer.concat([batch.buffer, batch.buffer]);
      const theirs = new Decoder(bytes);
      const ours = new Decoder(bytes);
      for (let k = 0; k < 2; k++) {
        const want = await original(theirs);
        const got = await patched(ours);
        expect(got).toEqual(want);
        expect(ours.offset).toBe(theirs.offset);
      }
    }
  });

  it("hashes keys as Kafka's murmur2 and as kafkajs' own murmur2", () => {
    // Kafka's UtilsTest vectors
    const vectors: [string, number][] = [
      ["21", -973932308],
      ["foobar", -790332482],
      ["a-little-bit-long-string", -985981536],
      ["a-little-bit-longer-string", -1486304829],
      ["lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971],
      ["abc", 479470107],
    ];
    for (const [key, hash] of vectors) expect(patches.murmur2(Buffer.from(key)), key).toBe(hash);
    const { readFileSync } = require("node:fs") as typeof import("node:fs");
    const path = require.resolve("kafkajs/src/producer/partitioners/default/murmur2.js");
    const mod = { exports: {} as any };
    new Function("module", "require", readFileSync(path, "utf8"))(mod, createRequire(path));
    const original = mod.exports as (k: Buffer) => number;
    for (let i = 0; i < 5000; i++) {
      const key = Buffer.from(Array.from({ length: i % 40 }, (_, j) => (i * 31 + j * 7919) & 0xff));
      expect(patches.murmur2(key)).toBe(original(key));
    }
  });

  it("is what kafkajs' producer requires once the Kafka sink module is loaded", () => {
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(${JSON.stringify(`${REPO}/package.json`)});
      await import(${JSON.stringify(`${REPO}/dist/connectors/kafka/sink.js`)});
      const patches = await import(${JSON.stringify(`${REPO}/dist/connectors/kafka/kafkajs-patches.js`)});
      const sendPath = require.resolve("kafkajs/src/producer/sendMessages.js");
      const groupPath = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
      const v3Path = require.resolve("kafkajs/src/protocol/requests/produce/v3/request.js");
      const v7 = require("kafkajs/src/protocol/requests/produce/v7/request.js");
      const kafkajs = require("kafkajs");
      const partitioner = kafkajs.Partitioners.DefaultPartitioner();
      const partitionMetadata = Array.from({ length: 7 }, (_, i) => ({ partitionId: i, leader: 0 }));
      console.log(JSON.stringify({
        // the murmur2 the default partitioner uses is the patched one: "abc" hashes to 479470107 -> partition 479470107 % 7
        abc: partitioner({ topic: "t", partitionMetadata, message: { key: Buffer.from("abc"), value: null } }),
        sendLoaded: require.cache[sendPath] !== undefined,
        patched: require.cache[groupPath]?.exports === patches.groupMessagesPerPartition,
        produce: require.cache[v3Path]?.exports === patches.patchedProduceRequest && typeof v7 === "function",
        installed: patches.installKafkajsPatches(),
      }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(JSON.parse(out.trim())).toEqual({
      abc: 479470107 % 7,
      sendLoaded: true,
      patched: true,
      produce: true,
      installed: { grouping: true, produce: true, murmur2: true, fetch: true, transactions: true, requestTimer: true },
    });
  });
});

describe("kafkajs' request queue timer (patch 6)", () => {
  // A child process: a process-wide 'warning' listener, and a kafkajs loaded fresh.
  const run = (patched: boolean) => {
    const script = `
      ${patched ? `await import(${JSON.stringify(`${REPO}/dist/connectors/kafka/kafkajs-patches.js`)});` : ""}
      const { createRequire } = await import("node:module");
      const require = createRequire(${JSON.stringify(`${REPO}/package.json`)});
      const RequestQueue = require("kafkajs/src/network/requestQueue/index.js");
      const warnings = [];
      process.on("warning", (w) => warnings.push(w.name));
      const logger = { debug() {}, info() {}, warn() {}, error() {} };
      const q = new RequestQueue({ maxInFlightRequests: 1, requestTimeout: 1000, clientId: "t", broker: "b", logger });
      // what kafkajs does after every response: nothing pending, not throttled
      q.checkPendingRequests();
      const idleTimer = q.throttleCheckTimeoutId !== null;
      let checks = 0;
      const check = q.checkPendingRequests.bind(q);
      q.checkPendingRequests = () => { checks++; check(); };
      await new Promise((r) => setTimeout(r, 50));
      const idleChecks = checks;
      // a request waiting (throttled for 20 ms): a timer must be armed to send it later
      q.destroy();
      q.throttledUntil = Date.now() + 20;
      q.pending.push({ entry: { correlationId: 1 } });
      q.scheduleCheckPendingRequests();
      const pendingTimer = q.throttleCheckTimeoutId !== null;
      q.destroy();
      console.log(JSON.stringify({ warnings, idleTimer, idleChecks: idleChecks > 0, pendingTimer }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    return JSON.parse(out.trim());
  };

  it("arms no timer for an idle queue (kafkajs as shipped re-arms a 1 ms one forever), and still one for a waiting request", () => {
    expect(run(true)).toEqual({ warnings: [], idleTimer: false, idleChecks: false, pendingTimer: true });
    const shipped = run(false);
    expect(shipped).toMatchObject({ idleTimer: true, idleChecks: true, pendingTimer: true });
    // Node 23+ also warns about the negative delay
    if (Number(process.versions.node.split(".")[0]) >= 23) expect(shipped.warnings).toContain("TimeoutNegativeWarning");
  });
});
