#!/usr/bin/env node
// Throughput Kafka -> engine -> Kafka, against plain kafkajs loops on the same data.
//
//   npm run kafka:start && npx tsc -p tsconfig.json
//   node bench/kafka.bench.mjs [--brokers 127.0.0.1:9092] [--messages 200000] [--workers 2] [--partitions 4] [--json]
//
// One input topic of 4-byte floats (celsius) is produced once; then, each with
// its own consumer group and output topic, reading the whole backlog:
//   - consume only        kafkajs consumer, eachBatch, nothing else (the fetch ceiling)
//   - produce only        kafkajs producer, batches of 10000, acks -1 (the produce ceiling)
//   - kafkajs loop        consume, convert, produce each batch (awaited), in one thread
//   - engine              examples/celsius_kafka/app.ts on --workers threads
// Time runs from the group join (or the first send) to the last output record
// being acknowledged (output topic high-water marks summed).
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import kafkajs from "kafkajs";
import { runApplication } from "../dist/index.js";

const { Kafka, Partitioners, logLevel } = kafkajs;
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
const APP = fileURLToPath(new URL("../examples/celsius_kafka/app.ts", import.meta.url));

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

const convert = (value) => ((value.readFloatBE(0) * 1.8) + 32).toFixed(2);

async function produceOnly(topic) {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const t0 = performance.now();
  for (let i = 0; i < N; i += 10_000) await producer.send({ topic, acks: -1, messages: celsiusBatch(i, Math.min(N, i + 10_000)) });
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
  const secs = await consumeLoop(input, async (batch) => {
    // One produce per fetched batch: the simple, at-least-once consume-transform-produce loop.
    const messages = batch.messages.map((m) => ({ value: convert(m.value) }));
    await producer.send({ topic: output, acks: -1, messages });
  }, () => waitForRecords(output, N));
  await producer.disconnect();
  return secs;
}

async function engine(input) {
  const output = await createTopic(PARTITIONS);
  const groupId = name("g");
  groups.push(groupId);
  const app = await runApplication({
    module: APP, workers: WORKERS, statsInterval: 0, kafkaGroup: groupId,
    args: ["--kafka_source_topic", input, "--kafka_source_brokers", BROKERS.split(",")[0],
      "--kafka_sink_topic", output, "--kafka_sink_brokers", BROKERS.split(",")[0]],
  });
  // runApplication resolves once the source has joined its group.
  const t0 = performance.now();
  const end = await waitForRecords(output, N);
  await app.stop();
  return (end - t0) / 1000;
}

await admin.connect();
const rows = [];
try {
  const input = await createTopic(PARTITIONS);
  note(`producing ${N} records into ${input} (${PARTITIONS} partitions) ...`);
  const produceSecs = await produceOnly(input);
  rows.push({ name: "kafkajs produce only (batches of 10000, acks -1)", secs: produceSecs });
  note("consume only ...");
  rows.push({ name: "kafkajs consume only (eachBatch, no work)", secs: await consumeOnly(input) });
  note("kafkajs consume-transform-produce loop ...");
  rows.push({ name: "kafkajs consume-transform-produce loop (1 thread)", secs: await kafkajsLoop(input) });
  note(`engine, ${WORKERS} workers ...`);
  rows.push({ name: `engine celsius_kafka (${WORKERS} workers)`, secs: await engine(input) });
} finally {
  await admin.deleteGroups(groups).catch(() => {});
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}

for (const r of rows) r.rate = N / r.secs;
if (JSON_OUT) {
  console.log(JSON.stringify({ messages: N, partitions: PARTITIONS, workers: WORKERS, brokers: BROKERS,
    node: process.version, results: rows.map((r) => ({ name: r.name, seconds: r.secs, msgsPerSec: Math.round(r.rate) })) }, null, 2));
} else {
  console.log(`\n${N} records of 4 bytes, ${PARTITIONS} partitions, broker ${BROKERS}, Node ${process.version}\n`);
  console.log("| pipeline | seconds | records/s |");
  console.log("|---|---:|---:|");
  for (const r of rows) console.log(`| ${r.name} | ${r.secs.toFixed(2)} | ${Math.round(r.rate).toLocaleString("en-US")} |`);
}
process.exit(0);
