#!/usr/bin/env node
// Throughput Kafka -> engine -> Kafka, against plain kafkajs loops on the same data, in one run.
//
//   npm run kafka:start && npx tsc -p tsconfig.json
//   node bench/kafka.bench.mjs [--brokers 127.0.0.1:9092] [--app celsius|word_count] [--messages 200000]
//        [--workers 2] [--partitions 4] [--engines label=DIR,label=DIR] [--engines-only] [--peers] [--verify] [--json]
//        [--resilience]
//
// --app celsius (default): --messages 4-byte floats; word_count: --messages lines of
// generated text (examples/word_count/gen.mjs), one output record per word. The input
// topic is produced once; then, each with its own consumer group and output topic,
// reading the whole backlog:
//   - consume only        kafkajs consumer, eachBatch, nothing else (the fetch ceiling)
//   - produce only        kafkajs producer, batches of 10000, acks -1 (celsius only)
//   - kafkajs loop        consume, transform, produce each batch (awaited), in one thread
//   - engine              examples/<app>_kafka/app.ts on --workers threads, once per
//                         --engines entry (a checkout's root whose dist/ is built: compare
//                         two builds on the same broker and data, in the same run)
//   - Kafka Streams       (--peers, word_count) bench/peers/kafka-streams/WordCount.java, --workers
//                         stream threads, from its RUNNING state; build it first with its build.sh
// --resilience runs each engine a second time with --resilience-dir (checkpoints every 1 s by default;
// the sink produces in Kafka transactions committed at each checkpoint), on the same input.
// --verify (implied by --peers) reads each word_count output back and checks it is exact.
// Time runs from the group join (or the first send) to the last output record being
// acknowledged (output topic high-water marks summed). The throughput unit is input
// records/s for celsius and words/s (output records) for word_count.
import { randomUUID } from "node:crypto";
import { fileURLToPath, pathToFileURL } from "node:url";
import kafkajs from "kafkajs";
import { readFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";

const { Kafka, Partitioners, logLevel } = kafkajs;
// The engines run in this process: keep their info lines out of the table.
process.env.WALLAROO_LOG_LEVEL ??= "warn";
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const BROKERS = opt("--brokers", "127.0.0.1:9092");
const N = Number(opt("--messages", "200000"));
const WORKERS = Number(opt("--workers", "2"));
const PARTITIONS = Number(opt("--partitions", "4"));
const JSON_OUT = argv.includes("--json");
/** --peers (word_count): also run the Kafka Streams word count of bench/peers/kafka-streams (built by its build.sh) */
const PEERS = argv.includes("--peers");
/** --verify (word_count): read every output topic back and check each word's counts are 1..n in order, n its occurrences */
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

async function waitForRecords(topic, n, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  while ((await records(topic)) < n) {
    if (Date.now() > deadline) throw new Error(`${topic}: fewer than ${n} records after ${timeoutMs} ms`);
    await sleep(50);
  }
  return performance.now();
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
}
/** word_count: occurrences of each word in the input */
const EXPECTED = new Map();
if (APP_NAME === "word_count")
  for (const l of LINES) for (const w of splitWords(l)) EXPECTED.set(w, (EXPECTED.get(w) ?? 0) + 1);

/** Reads `topic` back: every word's outputs must be "word => 1", "word => 2", ... up to its occurrences, in order. */
async function verifyWordCounts(topic, who) {
  const seen = new Map();
  let n = 0;
  let bad = null;
  const groupId = name("verify");
  groups.push(groupId);
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let resolveDone;
  const done = new Promise((r) => {
    resolveDone = r;
  });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const word = m.key.toString();
        const want = `${word} => ${(seen.get(word) ?? 0) + 1}`;
        if (m.value.toString() !== want && bad === null)
          bad = `got ${JSON.stringify(m.value.toString())}, expected ${JSON.stringify(want)}`;
        seen.set(word, (seen.get(word) ?? 0) + 1);
        if (++n >= OUT) resolveDone();
      }
    },
  });
  const timer = setTimeout(() => resolveDone(), 300_000);
  await done;
  clearTimeout(timer);
  await consumer.disconnect();
  for (const [w, c] of EXPECTED)
    if ((seen.get(w) ?? 0) !== c && bad === null) bad = `${w}: ${seen.get(w) ?? 0} outputs, expected ${c}`;
  if (n !== OUT && bad === null) bad = `${n} outputs, expected ${OUT}`;
  if (bad !== null) throw new Error(`${who}: output of ${topic} is not exact: ${bad}`);
  note(`${who}: ${n} outputs verified exact`);
}

/** Kafka Streams word count (bench/peers/kafka-streams), 2 stream threads by default (--workers). */
async function kafkaStreams(input) {
  const output = await createTopic(PARTITIONS);
  const dir = join(ROOT, "bench/peers/kafka-streams/target");
  const appId = name("kstreams");
  groups.push(appId);
  const { spawn } = await import("node:child_process");
  const child = spawn(
    "java",
    ["-cp", `${dir}/classes:${dir}/libs/*`, "WordCount", BROKERS, input, output, appId, String(WORKERS)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  let t0 = 0;
  await new Promise((resolve, reject) => {
    child.stdout.on("data", (d) => {
      if (String(d).includes("RUNNING") && !t0) {
        t0 = performance.now();
        resolve();
      }
    });
    child.on("exit", (code) =>
      reject(
        new Error(`Kafka Streams exited with ${code} before running (built? bash bench/peers/kafka-streams/build.sh)`),
      ),
    );
  });
  const end = await waitForRecords(output, OUT);
  child.kill("SIGTERM");
  await new Promise((r) => child.on("exit", r));
  if (VERIFY) await verifyWordCounts(output, "Kafka Streams");
  return (end - t0) / 1000;
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
    () => waitForRecords(output, OUT),
  );
  await producer.disconnect();
  return secs;
}

/**
 * With --resilience: the time the output topic's offsets last grew, once they reach `n` and then stay
 * put for `quietMs`. A transactional topic's offsets also count the transaction markers, so reaching
 * `n` is not the end; its last marker is written when the last transaction commits, which is when
 * read_committed consumers see the last output. Both runs of an engine are timed this way.
 */
async function waitForStable(topic, n, quietMs = 2500) {
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const r = await records(topic);
    const now = performance.now();
    if (r !== last) {
      last = r;
      lastChange = now;
    } else if (r >= n && now - lastChange >= quietMs) return lastChange;
    await sleep(50);
  }
}

async function engine(input, dir, resilient = false) {
  const output = await createTopic(PARTITIONS);
  const groupId = name("g");
  groups.push(groupId);
  const { runApplication } = await import(pathToFileURL(join(dir, "dist/index.js")).href);
  const app = await runApplication({
    module: join(dir, `examples/${APP_NAME}_kafka/app.ts`),
    workers: WORKERS,
    statsInterval: 0,
    kafkaGroup: groupId,
    ...(resilient ? { resilienceDir: mkdtempSync(join(tmpdir(), "kafka-bench-resilience-")) } : {}),
    args: [
      "--kafka_source_topic",
      input,
      "--kafka_source_brokers",
      BROKERS.split(",")[0],
      "--kafka_sink_topic",
      output,
      "--kafka_sink_brokers",
      BROKERS.split(",")[0],
    ],
  });
  // runApplication resolves once the source has joined its group.
  const t0 = performance.now();
  const end = RESILIENCE ? await waitForStable(output, OUT) : await waitForRecords(output, OUT);
  await app.stop();
  const got = await records(output);
  // Transactional: the offsets also hold one marker per partition and transaction.
  if (resilient ? got < OUT : got !== OUT) throw new Error(`engine ${dir}: ${got} output offsets, expected ${OUT}`);
  if (VERIFY && APP_NAME === "word_count") await verifyWordCounts(output, `engine ${dir}`);
  return (end - t0) / 1000;
}

await admin.connect();
const rows = [];
/** Runs one case; also notes the CPU seconds this process (every thread: the engines run in it) used meanwhile. */
async function timed(name, run) {
  const cpu0 = process.cpuUsage();
  const secs = await run();
  const cpu = process.cpuUsage(cpu0);
  rows.push({ name, secs, cpu: (cpu.user + cpu.system) / 1e6 });
}
try {
  const input = await createTopic(PARTITIONS);
  note(`producing ${N} records into ${input} (${PARTITIONS} partitions) ...`);
  const produceSecs = await produceOnly(input);
  if (APP_NAME === "celsius")
    rows.push({ name: "kafkajs produce only (batches of 10000, acks -1)", secs: produceSecs });
  if (!ENGINES_ONLY) {
    note("consume only ...");
    await timed("kafkajs consume only (eachBatch, no work)", () => consumeOnly(input));
    note("kafkajs consume-transform-produce loop ...");
    await timed("kafkajs consume-transform-produce loop (1 thread)", () => kafkajsLoop(input));
  }
  for (const e of ENGINES) {
    note(`${e.label}, ${WORKERS} workers ...`);
    await timed(`${e.label}: ${APP_NAME}_kafka (${WORKERS} workers)`, () => engine(input, e.dir));
    if (RESILIENCE)
      await timed(`${e.label}: ${APP_NAME}_kafka (${WORKERS} workers, --resilience-dir: exactly-once)`, () =>
        engine(input, e.dir, true),
      );
  }
  if (PEERS && APP_NAME === "word_count") {
    note(`Kafka Streams, ${WORKERS} stream threads ...`);
    rows.push({
      name: `Kafka Streams 3.9.1 word count (${WORKERS} stream threads, cache off)`,
      secs: await kafkaStreams(input),
    });
  }
} finally {
  await admin.deleteGroups(groups).catch(() => {});
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}

// celsius: input records/s (= output records); word_count: words/s (output records), except for consume only.
for (const r of rows) r.rate = (r.name.includes("consume only") ? N : OUT) / r.secs;
const unit = APP_NAME === "celsius" ? "records/s" : "words/s";
if (JSON_OUT) {
  console.log(
    JSON.stringify(
      {
        app: APP_NAME,
        messages: N,
        outputs: OUT,
        partitions: PARTITIONS,
        workers: WORKERS,
        brokers: BROKERS,
        node: process.version,
        results: rows.map((r) => ({
          name: r.name,
          seconds: r.secs,
          perSec: Math.round(r.rate),
          unit,
          cpuSeconds: r.cpu,
        })),
      },
      null,
      2,
    ),
  );
} else {
  console.log(
    `\n${APP_NAME}: ${N} input records${APP_NAME === "word_count" ? ` (${OUT} words)` : ""}, ${PARTITIONS} partitions, broker ${BROKERS}, Node ${process.version}\n`,
  );
  // CPU s: this process's CPU time during the case (engine: all its threads; the broker is not counted).
  console.log(`| pipeline | seconds | ${unit} (consume only: input records/s) | CPU s (this process) |`);
  console.log("|---|---:|---:|---:|");
  for (const r of rows)
    console.log(
      `| ${r.name} | ${r.secs.toFixed(2)} | ${Math.round(r.rate).toLocaleString("en-US")} | ${r.cpu === undefined ? "" : r.cpu.toFixed(2)} |`,
    );
}
process.exit(0);
