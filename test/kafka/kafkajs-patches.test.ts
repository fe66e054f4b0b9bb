/**
 * src/connectors/kafka/kafkajs-patches.ts: the replacement of kafkajs' per-partition
 * grouping gives kafkajs' result (same partitions, same order within each); the
 * direct produce-request encoder writes kafkajs' bytes exactly; both are what
 * kafkajs' producer uses in a thread that loads the Kafka sink, which is how the
 * engine loads it (a fresh process, as an I/O thread is).
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, inject, it } from "vitest";
import { REPO, client, createTopics, uniqueName } from "./helpers.js";

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
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      // stderr captured (it is in the error if the child fails): kafkajs as shipped warns there on purpose
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(JSON.parse(out.trim())).toEqual({
      abc: 479470107 % 7,
      sendLoaded: true,
      patched: true,
      produce: true,
      installed: {
        grouping: true,
        produce: true,
        murmur2: true,
        fetch: true,
        transactions: true,
        requestTimer: true,
        abortedFilter: true,
      },
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
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      // stderr captured (it is in the error if the child fails): kafkajs as shipped warns there on purpose
      stdio: ["ignore", "pipe", "pipe"],
    });
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

describe("kafkajs' aborted-transaction filter (patch 7)", () => {
  // Record batches of one partition: [firstOffset, count, producerId, kind]; kind "t" transactional data,
  // "d" non-transactional data, "A"/"C" an ABORT/COMMIT marker.
  const partition = (batches: [number, number, string, "t" | "d" | "A" | "C"][]) =>
    batches.flatMap(([first, count, producerId, kind]) => {
      const ctx = {
        firstOffset: String(first),
        lastOffsetDelta: count - 1,
        producerId,
        inTransaction: kind !== "d",
        isControlBatch: kind === "A" || kind === "C",
      };
      return Array.from({ length: count }, (_, i) => ({
        offset: String(first + i),
        key: ctx.isControlBatch ? Buffer.from([0, 0, 0, kind === "A" ? 0 : 1]) : null,
        isControlRecord: ctx.isControlBatch,
        batchContext: ctx,
      }));
    });
  const offsets = (ms: { offset: string }[]) => ms.map((m) => Number(m.offset));

  it("drops the aborted transactions of several producers, several per producer, listed in any order", () => {
    const messages = partition([
      [0, 3, "1", "t"], // P1 T1 (aborted) 0-2
      [3, 2, "2", "t"], // P2 T1 (committed) 3-4
      [5, 2, "1", "t"], // P1 T1 5-6
      [7, 1, "3", "d"], // plain 7
      [8, 2, "2", "t"], // P2 8-9
      [10, 1, "2", "C"], // P2 commit 10
      [11, 2, "2", "t"], // P2 T2 (aborted) 11-12
      [13, 1, "2", "A"], // P2 abort 13
      [14, 1, "1", "A"], // P1 abort 14
      [15, 2, "1", "t"], // P1 T2 (aborted) 15-16
      [17, 1, "1", "A"], // P1 abort 17
      [18, 2, "1", "t"], // P1 T3 (committed) 18-19
      [20, 1, "1", "C"],
    ]);
    const kept = [3, 4, 7, 8, 9, 10, 13, 14, 17, 18, 19, 20];
    const lists = [
      [
        { producerId: "2", firstOffset: "11" },
        { producerId: "1", firstOffset: "0" },
        { producerId: "1", firstOffset: "15" },
      ],
      [
        { producerId: "1", firstOffset: "15" },
        { producerId: "1", firstOffset: "0" },
        { producerId: "2", firstOffset: "11" },
      ],
    ];
    for (const abortedTransactions of lists)
      expect(offsets(patches.filterAbortedMessages({ messages, abortedTransactions }))).toEqual(kept);
    // a fetch starting inside an aborted transaction (the list names it, its first offset before the fetch)
    const later = messages.filter((m) => Number(m.offset) >= 6);
    expect(offsets(patches.filterAbortedMessages({ messages: later, abortedTransactions: lists[0] }))).toEqual(
      kept.filter((o) => o >= 6),
    );
    expect(patches.filterAbortedMessages({ messages, abortedTransactions: [] })).toBe(messages);
  });
});

describe("kafkajs' aborted-transaction filter (patch 7), against the broker", () => {
  const brokers = inject("kafkaBrokers");
  // A child process: kafkajs loaded fresh, after the patches or as shipped; it reads the partition read_committed
  // (kafkajs' default, the source's) until the last committed record, and says what it saw.
  const consume = (topic: string, patched: boolean) => {
    const script = `
      ${patched ? `await import(${JSON.stringify(`${REPO}/dist/connectors/kafka/kafkajs-patches.js`)});` : ""}
      const { createRequire } = await import("node:module");
      const require = createRequire(${JSON.stringify(`${REPO}/package.json`)});
      const path = require.resolve("kafkajs/src/consumer/filterAbortedMessages.js");
      const filter = require(path);
      const lists = [];
      require.cache[path].exports = (a) => { if (a.abortedTransactions?.length) lists.push(a.abortedTransactions); return filter(a); };
      const { Kafka, logLevel } = require("kafkajs");
      const kafka = new Kafka({ brokers: ${JSON.stringify(brokers.split(","))}, logLevel: logLevel.NOTHING });
      const c = kafka.consumer({ groupId: "g-" + Date.now(), maxWaitTimeInMs: 100 });
      await c.connect();
      await c.subscribe({ topic: ${JSON.stringify(topic)}, fromBeginning: true });
      const values = [];
      await new Promise((resolve) => {
        setTimeout(resolve, 20000);
        c.run({ eachMessage: async ({ message }) => { values.push(String(message.value)); if (String(message.value) === "c1-4") resolve(); } });
      });
      await c.disconnect();
      console.log(JSON.stringify({ values, lists }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      // stderr captured (it is in the error if the child fails): kafkajs as shipped warns there on purpose
      stdio: ["ignore", "pipe", "pipe"],
    });
    return JSON.parse(out.trim().split("\n").pop()!) as { values: string[]; lists: { firstOffset: string }[][] };
  };

  it.skipIf(brokers === "")(
    "drops every aborted transaction when the broker lists them out of first-offset order",
    async () => {
      const kafka = client(brokers);
      const admin = kafka.admin();
      await admin.connect();
      const topic = uniqueName("aborted");
      await createTopics(admin, [topic], 1);
      const producer = (id: string) =>
        kafka.producer({ transactionalId: `${topic}-${id}`, idempotent: true, maxInFlightRequests: 1 });
      const p1 = producer("p1");
      const p2 = producer("p2");
      await p1.connect();
      await p2.connect();
      const send = (t: { send: typeof p1.send }, prefix: string, n: number) =>
        t.send({
          topic,
          messages: Array.from({ length: n }, (_, i) => ({ partition: 0, value: `${prefix}-${i}` })),
        });
      try {
        const c0 = await p1.transaction();
        await send(c0, "c0", 5);
        await c0.commit();
        // The engine's failed stop: T1 (P1) open, T2 (P2) opened after it; T2 aborts first, then T1. The broker
        // lists aborted transactions in the order they ended: T2 (the later first offset) before T1.
        const t1 = await p1.transaction();
        await send(t1, "a1", 10);
        const t2 = await p2.transaction();
        await send(t2, "a2", 10);
        await send(t1, "a1b", 10);
        // EndTxn answers before the coordinator has written the abort markers, so T1's abort could
        // overtake T2's (seen once in CI: the broker then lists them in order and the scenario is
        // not the one under test). The transaction index is not visible to a client before a fetch,
        // so give T2's markers time to land first; the list's order is asserted below either way.
        await t2.abort();
        await new Promise((r) => setTimeout(r, 1500));
        await t1.abort();
        const c1 = await p1.transaction();
        await send(c1, "c1", 5);
        await c1.commit();
      } finally {
        await p1.disconnect();
        await p2.disconnect();
      }
      const committed = [
        ...Array.from({ length: 5 }, (_, i) => `c0-${i}`),
        ...Array.from({ length: 5 }, (_, i) => `c1-${i}`),
      ];
      const ours = consume(topic, true);
      // the broker's list is out of order (what the fix is about)
      const first = ours.lists[0].map((t) => Number(t.firstOffset));
      expect(first).toHaveLength(2);
      expect(first[0]).toBeGreaterThan(first[1]);
      expect(ours.values).toEqual(committed);
      // kafkajs as shipped delivers T1's records up to T2's first offset
      const shipped = consume(topic, false);
      expect(shipped.values).toEqual([
        ...committed.slice(0, 5),
        ...Array.from({ length: 10 }, (_, i) => `a1-${i}`),
        ...committed.slice(5),
      ]);
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    },
  );
});
