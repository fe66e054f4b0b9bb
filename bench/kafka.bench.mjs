#!/usr/bin/env node
// Throughput Kafka -> engine -> Kafka, against plain kafkajs loops on the same data, in one run.
//
//   npm run kafka:start && npx tsc -p tsconfig.json
//   node bench/kafka.bench.mjs [--brokers 127.0.0.1:9092] [--app celsius|word_count] [--messages 200000]
//        [--workers 2] [--partitions 4] [--engines label=DIR,label=DIR] [--engines-only] [--json]
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
/** --engines-only: skip the kafkajs consume-only and loop cases (e.g. to profile the engine) */
const ENGINES_ONLY = argv.includes("--engines-only");
const APP_NAME = opt("--app", "celsius");
if (APP_NAME !== "celsius" && APP_NAME !== "word_count") throw new Error(`--app: celsius or word_count, not ${APP_NAME}`);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const ENGINES = (opt("--engines", `engine=${ROOT}`)).split(",").map((e) => {
  const [label, dir] = e.includes("=") ? e.split("=") : ["engine", e];
  return { label, dir };
});

const kafka = new Kafka({ clientId: "wallaroo-bench", brokers: BROKERS.split(","), logLevel: logLevel.ERROR });
const admin = kafka.admin();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const name = (what) => `bench-${what}-${randomUUID().slice(0, 8)}`;
const topics = [];
const groups = [];
const note = (s) => { if (!JSON_OUT) process.stderr.write(`${s}\n`); };

async function createTopic(partitions) {
  const topic = name("t");
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
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
const splitWords = APP_NAME === "word_count"
  ? (await (await import("tsx/esm/api")).tsImport(join(ROOT, "examples/word_count/app.ts"), import.meta.url)).splitWords
  : null;
let LINES = [];
/** output records expected: one per input record (celsius) or per word (word_count) */
let OUT = N;
if (APP_NAME === "word_count") {
  const file = join(mkdtempSync(join(tmpdir(), "wc-kafka-")), "lines.txt");
  execFileSync(process.execPath, [join(ROOT, "examples/word_count/gen.mjs"), "--lines", String(N), "--out", file]);
  LINES = readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0);
  OUT = LINES.reduce((n, l) => n + splitWords(l).length, 0);
}
function inputBatch(from, to) {
  if (APP_NAME === "celsius") return celsiusBatch(from, to);
  return LINES.slice(from, to).map((l) => ({ value: Buffer.from(l) }));
}

const convert = (value) => ((value.readFloatBE(0) * 1.8) + 32).toFixed(2);

async function produceOnly(topic) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < N; i += 10_000) await producer.send({ topic, acks: -1, messages: inputBatch(i, Math.min(N, i + 10_000)) });
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
  consumer.on(consumer.events.GROUP_JOIN, () => { joinedAt ||= performance.now(); });
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
  const finished = new Promise((r) => { resolveDone = r; });
  return consumeLoop(input, async (batch) => {
    n += batch.messages.length;
    if (n >= N) resolveDone(performance.now());
  }, () => finished);
}

async function kafkajsLoop(input) {
  const output = await createTopic(PARTITIONS);
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const counts = new Map();
  const transform = APP_NAME === "celsius"
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
  const secs = await consumeLoop(input, async (batch) => {
    // One produce per fetched batch: the simple, at-least-once consume-transform-produce loop.
    // Sends of at most 10000 records: kafkajs' per-partition grouping is quadratic in the send's size.
    const messages = transform(batch);
    for (let i = 0; i < messages.length; i += 10_000) {
      await producer.send({ topic: output, acks: -1, messages: messages.slice(i, i + 10_000) });
    }
  }, () => waitForRecords(output, OUT));
  await producer.disconnect();
  return secs;
}

async function engine(input, dir) {
  const output = await createTopic(PARTITIONS);
  const groupId = name("g");
  groups.push(groupId);
  const { runApplication } = await import(pathToFileURL(join(dir, "dist/index.js")).href);
  const app = await runApplication({
    module: join(dir, `examples/${APP_NAME}_kafka/app.ts`), workers: WORKERS, statsInterval: 0, kafkaGroup: groupId,
    args: ["--kafka_source_topic", input, "--kafka_source_brokers", BROKERS.split(",")[0],
      "--kafka_sink_topic", output, "--kafka_sink_brokers", BROKERS.split(",")[0]],
  });
  // runApplication resolves once the source has joined its group.
  const t0 = performance.now();
  const end = await waitForRecords(output, OUT);
  await app.stop();
  const got = await records(output);
  if (got !== OUT) throw new Error(`engine ${dir}: ${got} output records, expected ${OUT}`);
  return (end - t0) / 1000;
}

await admin.connect();
const rows = [];
try {
  const input = await createTopic(PARTITIONS);
  note(`producing ${N} records into ${input} (${PARTITIONS} partitions) ...`);
  const produceSecs = await produceOnly(input);
  if (APP_NAME === "celsius") rows.push({ name: "kafkajs produce only (batches of 10000, acks -1)", secs: produceSecs });
  if (!ENGINES_ONLY) {
    note("consume only ...");
    rows.push({ name: "kafkajs consume only (eachBatch, no work)", secs: await consumeOnly(input) });
    note("kafkajs consume-transform-produce loop ...");
    rows.push({ name: "kafkajs consume-transform-produce loop (1 thread)", secs: await kafkajsLoop(input) });
  }
  for (const e of ENGINES) {
    note(`${e.label}, ${WORKERS} workers ...`);
    rows.push({ name: `${e.label}: ${APP_NAME}_kafka (${WORKERS} workers)`, secs: await engine(input, e.dir) });
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
  console.log(JSON.stringify({ app: APP_NAME, messages: N, outputs: OUT, partitions: PARTITIONS, workers: WORKERS, brokers: BROKERS,
    node: process.version, results: rows.map((r) => ({ name: r.name, seconds: r.secs, perSec: Math.round(r.rate), unit })) }, null, 2));
} else {
  console.log(`\n${APP_NAME}: ${N} input records${APP_NAME === "word_count" ? ` (${OUT} words)` : ""}, ${PARTITIONS} partitions, broker ${BROKERS}, Node ${process.version}\n`);
  console.log(`| pipeline | seconds | ${unit} (consume only: input records/s) |`);
  console.log("|---|---:|---:|");
  for (const r of rows) console.log(`| ${r.name} | ${r.secs.toFixed(2)} | ${Math.round(r.rate).toLocaleString("en-US")} |`);
}
process.exit(0);
