#!/usr/bin/env node
// Throughput Kafka -> engine -> Kafka, against plain kafkajs loops and peer systems on the same data, in one run.
//
//   npm run kafka:start && npx tsc -p tsconfig.json
//   node bench/kafka.bench.mjs [--brokers 127.0.0.1:9092] [--app celsius|word_count] [--messages 200000]
//        [--workers 2 | --workers 1,2] [--partitions 4] [--engines label=DIR,label=DIR] [--engines-only]
//        [--peers] [--verify] [--json] [--resilience]
//
// --app celsius (default): --messages 4-byte floats; word_count: --messages lines of
// generated text (examples/word_count/gen.mjs), one output record per word. The input
// topic is produced once; then, each with its own consumer group and output topic,
// reading the whole backlog:
//   - consume only        kafkajs consumer, eachBatch, nothing else (the fetch ceiling)
//   - produce only        kafkajs producer, batches of 10000, acks -1 (celsius only)
//   - kafkajs loop        consume, transform, produce each batch (awaited), in one thread
//   - engine              examples/<app>_kafka/app.ts (`wallaroo run`, a child process) on each
//                         --workers count, once per --engines entry (a checkout's root whose
//                         dist/ is built: compare two builds on the same broker and data)
//   - peers (--peers)     the JVM programs of PEER_SYSTEMS below (bench/peers/<dir>, built by
//                         their build.sh when not built yet), each at each --workers count
//                         of threads, run after the engine of that count
// --verify (implied by --peers) reads every output of the engines and peers back and checks it
// is exact: word_count, each word's outputs are "word => 1", "word => 2", ... up to its
// occurrences, in order, all in the partition murmur2(word) % partitions (Java's default
// partitioner); celsius, the output values are the expected multiset.
// Engines and peers are rated from the first to the last output record acknowledged (output topic
// high-water marks summed, polled every 50 ms; the kafkajs loops from the group join); `seconds`
// from the system's ready line (engine: group joined; peers: RUNNING) to the last output. CPU
// seconds (utime+stime of the process and its descendants, /proc) over that same span, and peak
// RSS (VmHWM) of the child process.
// The throughput unit is input records/s for celsius and words/s (output records) for word_count.
// --resilience runs each engine a second time with --resilience-dir (checkpoints every 1 s by default;
// the sink produces in Kafka transactions committed at each checkpoint), on the same input; both runs
// of an engine are then timed to the last transaction marker (see waitForStable).
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import kafkajs from "kafkajs";
import { readFileSync, mkdtempSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, rmSync, statSync } from "node:fs";
import { lastLines, procSample, spawnProc, stop, waitForOutput } from "./lib/procs.mjs";

const { Kafka, Partitioners, logLevel } = kafkajs;
// A failure's whole report, then one line naming it last on stderr (run.js shows the tail of stderr;
// a kafkajs error's own last lines are its fields, e.g. "code: 6").
process.on("uncaughtException", (e) => {
  console.error(e);
  process.stderr.write(`\nkafka.bench.mjs failed: ${e?.name ?? "Error"}: ${e?.message ?? e}\n`);
  process.exit(1);
});
// The engines run in this process: keep their info lines out of the table.
process.env.WALLAROO_LOG_LEVEL ??= "warn";
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const BROKERS = opt("--brokers", "127.0.0.1:9092");
const N = Number(opt("--messages", "200000"));
/** --workers: engine workers and peer threads; a list (1,2) runs each system once per count */
const WORKER_COUNTS = opt("--workers", "2").split(",").map(Number);
if (WORKER_COUNTS.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--workers: counts like 1,2`);
const PARTITIONS = Number(opt("--partitions", "4"));
const JSON_OUT = argv.includes("--json");
/** --peers: also run the peer systems of PEER_SYSTEMS (JVM programs in bench/peers/, built by their build.sh) */
const PEERS = argv.includes("--peers");
/** --verify: read every engine's and peer's output topic back and check it is exact (see the head of this file) */
const VERIFY = argv.includes("--verify") || PEERS;
/** --engines-only: skip the kafkajs consume-only and loop cases (e.g. to profile the engine) */
const ENGINES_ONLY = argv.includes("--engines-only");
/** --resilience: each engine case runs twice, without and with --resilience-dir (transactional sink, exactly-once) */
const RESILIENCE = argv.includes("--resilience");
const APP_NAME = opt("--app", "celsius");
if (APP_NAME !== "celsius" && APP_NAME !== "word_count")
  throw new Error(`--app: celsius or word_count, not ${APP_NAME}`);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENGINES = opt("--engines", `engine=${ROOT}`)
  .split(",")
  .map((e) => {
    const [label, dir] = e.includes("=") ? e.split("=") : ["engine", e];
    return { label, dir };
  });

const kafka = new Kafka({ clientId: "wallaroo-bench", brokers: BROKERS.split(","), logLevel: logLevel.ERROR });
const admin = kafka.admin();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const name = (what) => `bench-${what}-${randomUUID().slice(0, 8)}`;
const topics = [];
const groups = [];
const note = (s) => {
  if (!JSON_OUT) process.stderr.write(`${s}\n`);
};

async function createTopic(partitions) {
  const topic = name("t");
  await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  topics.push(topic);
  return topic;
}

async function records(topic) {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
}

/**
 * Waits until `topic` holds `n` records. Returns the times (performance.now()) the first record
 * and the n-th were seen; rejects at once if `child` (the system writing them) exits first.
 */
async function waitForRecords(topic, n, { child = null, timeoutMs = 900_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let first = 0;
  for (;;) {
    const got = await records(topic);
    const now = performance.now();
    if (got > 0 && !first) first = now;
    if (got >= n) return { first, end: now };
    if (child && (child.exitCode !== null || child.signalCode !== null))
      throw new Error(
        `exited (code ${child.exitCode}, signal ${child.signalCode}) after ${got} of ${n} records: ${lastLines(child.tail ?? "")}`,
      );
    if (Date.now() > deadline) throw new Error(`${topic}: ${got} of ${n} records after ${timeoutMs} ms`);
    await sleep(50);
  }
}

/**
 * With --resilience: like waitForRecords, but the end is when the output topic's offsets last grew,
 * once they reach `n` and then stay put for `quietMs`. A transactional topic's offsets also count the
 * transaction markers, so reaching `n` is not the end; its last marker is written when the last
 * transaction commits, which is when read_committed consumers see the last output.
 */
async function waitForStable(topic, n, { child = null, timeoutMs = 900_000, quietMs = 2500 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let first = 0;
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const got = await records(topic);
    const now = performance.now();
    if (got > 0 && !first) first = now;
    if (got !== last) {
      last = got;
      lastChange = now;
    } else if (got >= n && now - lastChange >= quietMs) return { first, end: lastChange };
    if (child && (child.exitCode !== null || child.signalCode !== null))
      throw new Error(
        `exited (code ${child.exitCode}, signal ${child.signalCode}) after ${got} of ${n} records: ${lastLines(child.tail ?? "")}`,
      );
    if (Date.now() > deadline) throw new Error(`${topic}: ${got} of ${n} records after ${timeoutMs} ms`);
    await sleep(50);
  }
}

function celsiusBatch(from, to) {
  const messages = [];
  for (let i = from; i < to; i++) {
    const value = Buffer.alloc(4);
    value.writeFloatBE((i % 10000) / 10 - 273.15);
    messages.push({ value });
  }
  return messages;
}

/** word_count: the example's own splitting, so the expected output count is exact. */
const splitWords =
  APP_NAME === "word_count"
    ? (await (await import("tsx/esm/api")).tsImport(join(ROOT, "examples/word_count/app.ts"), import.meta.url))
        .splitWords
    : null;
let LINES = [];
/** output records expected: one per input record (celsius) or per word (word_count) */
let OUT = N;
if (APP_NAME === "word_count") {
  const file = join(mkdtempSync(join(tmpdir(), "wc-kafka-")), "lines.txt");
  execFileSync(process.execPath, [join(ROOT, "examples/word_count/gen.mjs"), "--lines", String(N), "--out", file]);
  LINES = readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.length > 0);
  OUT = LINES.reduce((n, l) => n + splitWords(l).length, 0);
  rmSync(dirname(file), { recursive: true }); // kept in memory; 10 MB per 200,000 lines left behind otherwise
}
/** word_count: occurrences of each word in the input */
const EXPECTED = new Map();
if (APP_NAME === "word_count")
  for (const l of LINES) for (const w of splitWords(l)) EXPECTED.set(w, (EXPECTED.get(w) ?? 0) + 1);

/** Java's default partitioner for a keyed record (kafkajs' DefaultPartitioner is murmur2 as in the Java client). */
const javaPartitioner = Partitioners.DefaultPartitioner();
const partitionMetadata = Array.from({ length: PARTITIONS }, (_, partitionId) => ({ partitionId, leader: 0 }));
const javaPartition = (key) => javaPartitioner({ topic: "any", partitionMetadata, message: { key } });

/** Reads `topic` from the beginning until `count` records were seen (or 5 minutes passed), each to `onMessage(m, partition)`. */
async function readBack(topic, count, onMessage) {
  const groupId = name("verify");
  groups.push(groupId);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let n = 0;
  let resolveDone;
  const done = new Promise((r) => {
    resolveDone = r;
  });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        onMessage(m, batch.partition);
        if (++n >= count) resolveDone();
      }
    },
  });
  const timer = setTimeout(() => resolveDone(), 300_000);
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  return n;
}

/**
 * word_count: every word's outputs must be "word => 1", "word => 2", ... up to its occurrences,
 * in order, all in the partition Java's default partitioner gives the word.
 */
async function verifyWordCounts(topic, who) {
  const seen = new Map();
  let bad = null;
  const n = await readBack(topic, OUT, (m, partition) => {
    const word = m.key.toString();
    const want = `${word} => ${(seen.get(word) ?? 0) + 1}`;
    if (m.value.toString() !== want && bad === null)
      bad = `got ${JSON.stringify(m.value.toString())}, expected ${JSON.stringify(want)}`;
    if (bad === null && partition !== javaPartition(m.key))
      bad = `${JSON.stringify(word)} in partition ${partition}, expected ${javaPartition(m.key)} (murmur2)`;
    seen.set(word, (seen.get(word) ?? 0) + 1);
  });
  for (const [w, c] of EXPECTED)
    if ((seen.get(w) ?? 0) !== c && bad === null) bad = `${w}: ${seen.get(w) ?? 0} outputs, expected ${c}`;
  if (n !== OUT && bad === null) bad = `${n} outputs, expected ${OUT}`;
  if (bad !== null) throw new Error(`${who}: output of ${topic} is not exact: ${bad}`);
  note(`${who}: ${n} outputs verified exact`);
}

/** celsius: the output values (no key, spread over partitions, so no order) must be the expected multiset. */
async function verifyCelsius(topic, who) {
  const left = new Map();
  for (let i = 0; i < N; i += 10_000)
    for (const m of celsiusBatch(i, Math.min(N, i + 10_000))) {
      const f = convert(m.value);
      left.set(f, (left.get(f) ?? 0) + 1);
    }
  let bad = null;
  const n = await readBack(topic, OUT, (m) => {
    const v = m.value.toString();
    const c = left.get(v) ?? 0;
    if (c === 0 && bad === null) bad = `unexpected (or one too many) ${JSON.stringify(v)}`;
    left.set(v, c - 1);
  });
  if (n !== OUT && bad === null) bad = `${n} outputs, expected ${OUT}`;
  if (bad !== null) throw new Error(`${who}: output of ${topic} is not exact: ${bad}`);
  note(`${who}: ${n} outputs verified exact`);
}

const verifyOutput = (topic, who) =>
  APP_NAME === "word_count" ? verifyWordCounts(topic, who) : verifyCelsius(topic, who);

/**
 * The peers of --peers: JVM programs of our own in bench/peers/<dir>, each built by its build.sh
 * (jars from Maven Central, classes in target/, ignored by git) and run on `threads` threads;
 * `main`: its class per app (--app).
 * `ready`: the line it prints once it runs (the CPU span starts there). `config`: how it is set
 * up against the engine, printed next to the table.
 */
const PEER_SYSTEMS = [
  {
    system: "Kafka Streams 3.9.1",
    dir: "kafka-streams",
    main: { word_count: "WordCount", celsius: "Celsius" },
    args: ({ input, output, group, threads }) => [BROKERS, input, output, group, String(threads)],
    ready: /^RUNNING$/m,
    config:
      "num.stream.threads = threads, producer acks=all, processing.guarantee at_least_once (the default; exactly-once off); " +
      "word_count: record cache off (statestore.cache.max.bytes 0: every count update is emitted), its default store (RocksDB, with a changelog topic) " +
      "and, as the split changes the key, a repartition topic (as many partitions as the input) between split and count",
  },
  {
    system: "Flink 1.20.3",
    dir: "flink",
    main: { word_count: "FlinkPeer", celsius: "FlinkPeer" },
    args: ({ input, output, group, threads }) => [APP_NAME, BROKERS, input, output, group, String(threads)],
    ready: /^RUNNING$/m,
    config:
      "local MiniCluster in the program's JVM, parallelism = threads, heap state backend, checkpointing off, " +
      "KafkaSink delivery guarantee NONE (exactly-once off), producer acks=all, Kafka connector 3.4.0-1.20 (kafka-clients 3.4.0)",
  },
];

/** Builds a peer with its build.sh unless its classes are newer than its sources; returns an error text or null. */
function buildPeer(peer) {
  const dir = join(ROOT, "bench/peers", peer.dir);
  const cls = join(dir, "target/classes", `${peer.main[APP_NAME]}.class`);
  const src = join(dir, `${peer.main[APP_NAME]}.java`);
  if (existsSync(cls) && statSync(cls).mtimeMs >= statSync(src).mtimeMs) return null;
  for (const [tool, flag] of [
    ["java", "-version"],
    ["mvn", "-v"],
  ]) {
    const r = spawnSync(tool, [flag], { encoding: "utf8" });
    if (r.error || r.status !== 0) return `${tool} not found (Java 17 and Maven build bench/peers/${peer.dir})`;
  }
  note(`building bench/peers/${peer.dir} ...`);
  const r = spawnSync("bash", [join(dir, "build.sh")], { encoding: "utf8" });
  if (r.status !== 0)
    return `bash bench/peers/${peer.dir}/build.sh failed: ${lastLines(`${r.stdout}\n${r.stderr}`, 4)}`;
  return null;
}

/**
 * Runs one system under test as a child process until its output topic holds OUT records,
 * then stops it and (with --verify) checks the output. Measured: first to last output,
 * ready line to last output, and CPU and peak RSS of the process tree (/proc).
 */
async function runSystem({ who, cmd, args, env, ready, output, transactional = false }) {
  const child = spawnProc(cmd, args, { env: { ...process.env, ...env } });
  try {
    await waitForOutput(child, ready, 180_000, who);
    const readyAt = performance.now();
    const cpu0 = procSample(child.pid).cpu;
    let peakRss = 0;
    const sampler = setInterval(() => {
      peakRss = Math.max(peakRss, procSample(child.pid).rss);
    }, 200);
    let t;
    try {
      t = RESILIENCE ? await waitForStable(output, OUT, { child }) : await waitForRecords(output, OUT, { child });
    } finally {
      clearInterval(sampler);
    }
    const end = procSample(child.pid);
    await stop(child, 30_000);
    const got = await records(output);
    // Transactional: the offsets also hold one marker per partition and transaction.
    if (transactional ? got < OUT : got !== OUT) throw new Error(`${got} output offsets, expected ${OUT}`);
    if (VERIFY) await verifyOutput(output, who);
    return {
      secs: (t.end - readyAt) / 1000,
      firstToLastSecs: (t.end - t.first) / 1000,
      cpuSecs: end.cpu - cpu0,
      cpuTotalSecs: end.cpu,
      peakRssBytes: Math.max(peakRss, end.hwm),
      verified: VERIFY,
    };
  } catch (e) {
    throw new Error(`${who}: ${e.message}`);
  } finally {
    await stop(child, 5_000);
  }
}

async function peer(p, input, threads) {
  const output = await createTopic(PARTITIONS);
  const group = name(p.dir);
  groups.push(group);
  const dir = join(ROOT, "bench/peers", p.dir, "target");
  // A temporary directory per run, removed after it: Kafka Streams keeps its state stores under
  // java.io.tmpdir, Flink its RPC jar (20 MB) and blobs, and neither removes them on SIGTERM.
  const tmp = mkdtempSync(join(tmpdir(), "wallaroo-peer-"));
  try {
    return await runSystem({
      who: `${p.system} (${threads} threads)`,
      cmd: "java",
      // JVM flags otherwise at their defaults (heap up to 1/4 of RAM, G1), as Node's are for the engine
      args: [
        `-Djava.io.tmpdir=${tmp}`,
        "-cp",
        `${dir}/classes:${dir}/libs/*`,
        p.main[APP_NAME],
        ...p.args({ input, output, group, threads }),
      ],
      ready: p.ready,
      output,
    });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function inputBatch(from, to) {
  if (APP_NAME === "celsius") return celsiusBatch(from, to);
  return LINES.slice(from, to).map((l) => ({ value: Buffer.from(l) }));
}

const convert = (value) => (value.readFloatBE(0) * 1.8 + 32).toFixed(2);

async function produceOnly(topic) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < N; i += 10_000)
    await producer.send({ topic, acks: -1, messages: inputBatch(i, Math.min(N, i + 10_000)) });
  const secs = (performance.now() - t0) / 1000;
  await producer.disconnect();
  return secs;
}

/** Runs a consumer over the input topic; `onBatch` handles each batch. Returns the time from join to `done()`. */
async function consumeLoop(input, onBatch, done) {
  const groupId = name("g");
  groups.push(groupId);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  let joinedAt = 0;
  consumer.on(consumer.events.GROUP_JOIN, () => {
    joinedAt ||= performance.now();
  });
  await consumer.connect();
  await consumer.subscribe({ topic: input, fromBeginning: true });
  await consumer.run({ eachBatch: async ({ batch }) => onBatch(batch) });
  const end = await done();
  await consumer.disconnect();
  return (end - joinedAt) / 1000;
}

async function consumeOnly(input) {
  let n = 0;
  let resolveDone;
  const finished = new Promise((r) => {
    resolveDone = r;
  });
  return consumeLoop(
    input,
    async (batch) => {
      n += batch.messages.length;
      if (n >= N) resolveDone(performance.now());
    },
    () => finished,
  );
}

async function kafkajsLoop(input) {
  const output = await createTopic(PARTITIONS);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const counts = new Map();
  const transform =
    APP_NAME === "celsius"
      ? (batch) => batch.messages.map((m) => ({ value: convert(m.value) }))
      : (batch) => {
          const out = [];
          for (const m of batch.messages) {
            for (const w of splitWords(m.value.toString("utf8"))) {
              const c = (counts.get(w) ?? 0) + 1;
              counts.set(w, c);
              out.push({ key: w, value: `${w} => ${c}` });
            }
          }
          return out;
        };
  const secs = await consumeLoop(
    input,
    async (batch) => {
      // One produce per fetched batch: the simple, at-least-once consume-transform-produce loop.
      // Sends of at most 10000 records: kafkajs' per-partition grouping is quadratic in the send's size.
      const messages = transform(batch);
      for (let i = 0; i < messages.length; i += 10_000) {
        await producer.send({ topic: output, acks: -1, messages: messages.slice(i, i + 10_000) });
      }
    },
    () => waitForRecords(output, OUT).then((t) => t.end),
  );
  await producer.disconnect();
  return secs;
}

/** The engine: `wallaroo run examples/<app>_kafka/app.ts` of checkout `dir`, a child process. */
async function engine(input, dir, workers, resilient = false) {
  const output = await createTopic(PARTITIONS);
  const group = name("g");
  groups.push(group);
  const broker = BROKERS.split(",")[0];
  const store = resilient ? mkdtempSync(join(tmpdir(), "kafka-bench-resilience-")) : null;
  try {
    return await runSystem({
      who: `engine ${dir} (${workers} workers${resilient ? ", --resilience-dir" : ""})`,
      cmd: process.execPath,
      // WR_NODE_ARGS: node flags for the engine (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof), as in e2e.mjs
      args: [
        ...(process.env.WR_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
        join(dir, "bin/wallaroo.js"),
        "run",
        join(dir, `examples/${APP_NAME}_kafka/app.ts`),
        "--workers",
        String(workers),
        "--stats-interval",
        "0",
        "--kafka-group",
        group,
        "--kafka_source_topic",
        input,
        "--kafka_source_brokers",
        broker,
        "--kafka_sink_topic",
        output,
        "--kafka_sink_brokers",
        broker,
        ...(store ? ["--resilience-dir", store] : []),
      ],
      // its info line "application ... running on N worker(s)" comes once the source has joined its group
      env: { WALLAROO_LOG_LEVEL: "info" },
      ready: /running on \d+ worker/,
      output,
      transactional: resilient,
    });
  } finally {
    if (store) rmSync(store, { recursive: true, force: true });
  }
}

/** A case run in this process (the kafkajs baselines): its seconds and this process's CPU seconds meanwhile. */
async function inProcess(name, run) {
  const cpu0 = process.cpuUsage();
  const secs = await run();
  const cpu = process.cpuUsage(cpu0);
  return { name, secs, cpuSecs: (cpu.user + cpu.system) / 1e6 };
}

/** Runs one system; a failure becomes its row's `error` (the other systems still run). */
async function measured(row, run) {
  try {
    return { ...row, ...(await run()) };
  } catch (e) {
    note(`${row.name} FAILED: ${e.message}`);
    return { ...row, error: e.message };
  }
}

await admin.connect();
const rows = [];
try {
  const input = await createTopic(PARTITIONS);
  note(`producing ${N} records into ${input} (${PARTITIONS} partitions) ...`);
  const produceSecs = await produceOnly(input);
  if (APP_NAME === "celsius")
    rows.push({ name: "kafkajs produce only (batches of 10000, acks -1)", secs: produceSecs });
  if (!ENGINES_ONLY) {
    note("consume only ...");
    rows.push(await inProcess("kafkajs consume only (eachBatch, no work)", () => consumeOnly(input)));
    note("kafkajs consume-transform-produce loop ...");
    rows.push(await inProcess("kafkajs consume-transform-produce loop (1 thread)", () => kafkajsLoop(input)));
  }
  // Per thread count: each engine, then each peer, on the same input topic (a group and output topic each).
  for (const threads of WORKER_COUNTS) {
    for (const e of ENGINES) {
      note(`${e.label}, ${threads} workers ...`);
      rows.push(
        await measured(
          { name: `${e.label}: ${APP_NAME}_kafka (${threads} workers)`, system: e.label, engine: true, threads },
          () => engine(input, e.dir, threads),
        ),
      );
      if (RESILIENCE) {
        note(`${e.label}, ${threads} workers, --resilience-dir ...`);
        rows.push(
          await measured(
            {
              name: `${e.label}: ${APP_NAME}_kafka (${threads} workers, --resilience-dir: exactly-once)`,
              system: `${e.label} (exactly-once)`,
              engine: true,
              threads,
            },
            () => engine(input, e.dir, threads, true),
          ),
        );
      }
    }
    if (!PEERS) continue;
    for (const p of PEER_SYSTEMS) {
      const row = { name: `${p.system} (${threads} threads)`, system: p.system, threads, config: p.config };
      if (!p.main[APP_NAME]) {
        rows.push({ ...row, skipped: `no ${APP_NAME} program in bench/peers/${p.dir}` });
        continue;
      }
      const buildError = buildPeer(p);
      if (buildError) {
        note(`${p.system}: ${buildError}`);
        rows.push({ ...row, skipped: buildError });
        continue;
      }
      note(`${p.system}, ${threads} threads ...`);
      rows.push(await measured(row, () => peer(p, input, threads)));
    }
  }
} finally {
  await admin.deleteGroups(groups).catch(() => {});
  // and the internal topics Kafka Streams made (APP_ID-...-repartition, -changelog), named after its group
  const internal = (await admin.listTopics().catch(() => [])).filter((t) => groups.some((g) => t.startsWith(`${g}-`)));
  await admin.deleteTopics({ topics: [...topics, ...internal] }).catch(() => {});
  await admin.disconnect();
}

// celsius: input records/s (= output records); word_count: words/s (output records), except for consume only.
// Systems run as child processes are rated from their first to their last output.
for (const r of rows)
  if (r.secs !== undefined) {
    // A run whose outputs all came within a few polls (a small --messages) has no measurable
    // first-to-last span: it is rated from its ready line instead, and says so (rateFrom).
    const firstToLast = r.firstToLastSecs !== undefined && r.firstToLastSecs >= 0.5;
    r.rateSecs = firstToLast ? r.firstToLastSecs : r.secs;
    r.rateFrom = r.firstToLastSecs === undefined ? undefined : firstToLast ? "first output" : "ready";
    r.rate = (r.name.includes("consume only") ? N : OUT) / r.rateSecs;
  }
const unit = APP_NAME === "celsius" ? "records/s" : "words/s";
const mb = (b) => (b === undefined ? undefined : Math.round(b / 1e6));
if (JSON_OUT) {
  console.log(
    JSON.stringify(
      {
        app: APP_NAME,
        messages: N,
        outputs: OUT,
        partitions: PARTITIONS,
        workers: WORKER_COUNTS.join(","),
        brokers: BROKERS,
        node: process.version,
        loadavg: loadavg(),
        results: rows.map((r) => ({
          name: r.name,
          system: r.system,
          engine: r.engine,
          threads: r.threads,
          seconds: r.secs,
          firstToLastSeconds: r.firstToLastSecs,
          rateSeconds: r.rateSecs,
          rateFrom: r.rateFrom,
          perSec: r.rate === undefined ? undefined : Math.round(r.rate),
          unit,
          cpuSeconds: r.cpuSecs,
          cpuTotalSeconds: r.cpuTotalSecs,
          peakRssMB: mb(r.peakRssBytes),
          verified: r.verified,
          config: r.config,
          error: r.error,
          skipped: r.skipped,
        })),
      },
      null,
      2,
    ),
  );
} else {
  console.log(
    `\n${APP_NAME}: ${N} input records${APP_NAME === "word_count" ? ` (${OUT} words)` : ""}, ${PARTITIONS} partitions, broker ${BROKERS}, Node ${process.version}, load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}\n`,
  );
  console.log(`| pipeline | seconds | ${unit} (consume only: input records/s) | CPU s | peak RSS | output |`);
  console.log("|---|---:|---:|---:|---:|---|");
  for (const r of rows)
    console.log(
      r.rate === undefined
        ? `| ${r.name} | | | | | ${r.error ? `FAILED: ${r.error}` : `skipped: ${r.skipped}`} |`
        : `| ${r.name} | ${r.secs.toFixed(2)} | ${Math.round(r.rate).toLocaleString("en-US")} | ${r.cpuSecs?.toFixed(1) ?? ""} | ${r.peakRssBytes ? `${mb(r.peakRssBytes)} MB` : ""} | ${r.verified ? "exact" : ""} |`,
    );
}
process.exit(0);
