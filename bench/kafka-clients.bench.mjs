#!/usr/bin/env node
// Kafka client micro-bench: the same keyed records produced and consumed by each
// candidate client, on the same broker, in the same run (so that the machine's
// noise hits them alike; compare the ratios, not the absolute numbers).
//
//   node bench/kafka-clients.bench.mjs [--brokers 127.0.0.1:9092] [--records 500000] [--partitions 4]
//        [--batch 50000] [--modules DIR]
//
// Records look like the word count's output: key = a word (3..10 bytes), value =
// "word count" (~12 bytes). Each produce case writes all records into a fresh topic
// in sends of --batch records, awaited one at a time, acks = -1:
//   - kafkajs send            producer.send as kafkajs ships it (its per-message
//                             array copy in groupMessagesPerPartition makes a send of
//                             n records O(n^2 / partitions))
//   - kafkajs send, patched   the same with src/connectors/kafka/kafkajs-patches.ts's fixes
//   - @platformatic/kafka     producer.send (needs Node >= 22.22; loaded from --modules DIR,
//                             a folder with node_modules/@platformatic/kafka, when given)
// Each consume case reads the first topic from the beginning with a fresh group:
//   - kafkajs eachBatch, @platformatic/kafka consume stream (mode earliest).
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { dirname } from "node:path";
import { randomUUID } from "node:crypto";

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const BROKERS = opt("--brokers", "127.0.0.1:9092").split(",");
const N = Number(opt("--records", "500000"));
const PARTITIONS = Number(opt("--partitions", "4"));
const BATCH = Number(opt("--batch", "50000"));
const MODULES = opt("--modules", null);
const ONLY = opt("--only", null)?.split(",");

const here = createRequire(import.meta.url);
const load = async (pkg) => {
  const req = MODULES && pkg !== "kafkajs" ? createRequire(`${MODULES}/package.json`) : here;
  try {
    return await import(pathToFileURL(req.resolve(pkg)).href);
  } catch (err) {
    process.stderr.write(`${pkg}: not loadable (${err.message.split("\n")[0]}); skipped\n`);
    return null;
  }
};

const kafkajs = (await load("kafkajs")).default;
const { Kafka, Partitioners, logLevel } = kafkajs;
const platformatic = Number(process.versions.node.split(".")[0]) >= 22 ? await load("@platformatic/kafka") : null;

const kafka = new Kafka({ clientId: "clients-bench", brokers: BROKERS, logLevel: logLevel.ERROR });
const admin = kafka.admin();
await admin.connect();
const topics = [];
const newTopic = async () => {
  const topic = `cbench-${randomUUID().slice(0, 8)}`;
  await admin.createTopics({
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  topics.push(topic);
  return topic;
};
const count = async (topic) => (await admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);

const WORDS = Array.from({ length: 5000 }, (_, i) => `w${(i * 7919).toString(36)}`.slice(0, 3 + (i % 8)));
const records = Array.from({ length: N }, (_, i) => {
  const w = WORDS[(i * 31) % WORDS.length];
  return { key: Buffer.from(w), value: Buffer.from(`${w} ${i % 1000}`) };
});

const rows = [];
const time = async (name, fn, topic) => {
  if (ONLY && !ONLY.some((o) => name.includes(o))) return;
  process.stderr.write(`${name} ...\n`);
  const t0 = performance.now();
  await fn();
  const secs = (performance.now() - t0) / 1000;
  if (topic) {
    const n = await count(topic);
    if (n !== N) throw new Error(`${name}: ${n} records in ${topic}, expected ${N}`);
  }
  rows.push({ name, secs, rate: N / secs });
};

/** A second, fresh kafkajs, loaded with src/connectors/kafka/kafkajs-patches.ts's fixes in place. */
async function patchedKafkajs() {
  const { reinstallKafkajsPatches } = await import("../dist/connectors/kafka/kafkajs-patches.js");
  const root = dirname(here.resolve("kafkajs"));
  for (const k of Object.keys(here.cache)) if (k.startsWith(`${root}/`)) delete here.cache[k];
  const state = reinstallKafkajsPatches();
  if (!state.grouping || !state.produce || !state.murmur2)
    throw new Error(`patches not installed: ${JSON.stringify(state)}`);
  const fresh = here("kafkajs");
  return [
    new fresh.Kafka({ clientId: "clients-bench", brokers: BROKERS, logLevel: fresh.logLevel.ERROR }),
    fresh.Partitioners,
  ];
}

async function kafkajsProduce(topic, client = kafka, partitioners = Partitioners) {
  const producer = client.producer({ createPartitioner: partitioners.DefaultPartitioner });
  await producer.connect();
  for (let i = 0; i < N; i += BATCH) {
    await producer.send({ topic, acks: -1, messages: records.slice(i, i + BATCH) });
  }
  await producer.disconnect();
}

try {
  const first = await newTopic();
  // Fill the topic every consume case reads.
  if (platformatic) {
    const t = first;
    await time(
      "@platformatic/kafka send",
      async () => {
        const producer = new platformatic.Producer({ clientId: "cbench", bootstrapBrokers: BROKERS, acks: -1 });
        for (let i = 0; i < N; i += BATCH) {
          await producer.send({
            messages: records.slice(i, i + BATCH).map((r) => ({ topic: t, key: r.key, value: r.value })),
          });
        }
        await producer.close();
      },
      t,
    );
  } else {
    await kafkajsProduce(first);
  }
  {
    const t = await newTopic();
    await time("kafkajs send (as shipped)", () => kafkajsProduce(t), t);
  }
  {
    const t = await newTopic();
    await time(
      "kafkajs send, patched (kafkajs-patches.ts)",
      async () => {
        await kafkajsProduce(t, ...(await patchedKafkajs()));
      },
      t,
    );
  }
  if (platformatic) {
    const t = await newTopic();
    await time(
      "@platformatic/kafka send (again)",
      async () => {
        const producer = new platformatic.Producer({ clientId: "cbench", bootstrapBrokers: BROKERS, acks: -1 });
        for (let i = 0; i < N; i += BATCH) {
          await producer.send({
            messages: records.slice(i, i + BATCH).map((r) => ({ topic: t, key: r.key, value: r.value })),
          });
        }
        await producer.close();
      },
      t,
    );
  }
  await time("kafkajs consume (eachBatch)", async () => {
    const consumer = kafka.consumer({ groupId: `cbench-${randomUUID()}`, maxWaitTimeInMs: 100 });
    await consumer.connect();
    await consumer.subscribe({ topic: first, fromBeginning: true });
    let n = 0;
    await new Promise((resolve) => {
      void consumer.run({
        eachBatch: async ({ batch }) => {
          n += batch.messages.length;
          if (n >= N) resolve();
        },
      });
    });
    await consumer.disconnect();
  });
  if (platformatic) {
    await time("@platformatic/kafka consume (stream)", async () => {
      const consumer = new platformatic.Consumer({
        clientId: "cbench",
        groupId: `cbench-${randomUUID()}`,
        bootstrapBrokers: BROKERS,
        maxWaitTime: 100,
      });
      const stream = await consumer.consume({ topics: [first], mode: "earliest", autocommit: false });
      let n = 0;
      for await (const _m of stream) if (++n >= N) break;
      await stream.close();
      await consumer.close(true);
    });
  }
} finally {
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}
console.log(`\n${N} keyed records (~20 bytes), ${PARTITIONS} partitions, sends of ${BATCH}, Node ${process.version}\n`);
console.log("| case | seconds | records/s |");
console.log("|---|---:|---:|");
for (const r of rows)
  console.log(`| ${r.name} | ${r.secs.toFixed(2)} | ${Math.round(r.rate).toLocaleString("en-US")} |`);
process.exit(0);
