#!/usr/bin/env node
// A small Kafka command-line tool for the Kafka examples (the broker of
// `npm run kafka:start` ships no kafka-topics / console-producer scripts):
//
//   node examples/kafka-tool.mjs create TOPIC [--partitions N]
//   node examples/kafka-tool.mjs delete TOPIC
//   node examples/kafka-tool.mjs produce TOPIC [--file F] [--float] [--key-words]
//        one message per line of F (or stdin); --float sends each line as a
//        4-byte big-endian IEEE-754 float (Python struct ">f"); --key-words keys
//        each line by its first word
//   node examples/kafka-tool.mjs consume TOPIC [--count N] [--timeout S] [--float]
//        prints "key\tvalue" per record from the beginning of the topic, until N
//        records or S seconds without a record (default 5)
//
// Common option: --brokers HOST:PORT[,HOST:PORT] (default 127.0.0.1:9092).
import { createReadStream, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { randomUUID } from "node:crypto";
import kafkajs from "kafkajs";

const { Kafka, Partitioners, logLevel } = kafkajs;
const [command, topic, ...rest] = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = rest.indexOf(name);
  return i >= 0 ? rest[i + 1] : fallback;
};
const flag = (name) => rest.includes(name);
if (!command || !topic) {
  process.stderr.write(
    readFileSync(new URL(import.meta.url), "utf8")
      .split("\n")
      .slice(1, 18)
      .map((l) => l.replace(/^\/\/ ?/, ""))
      .join("\n") + "\n",
  );
  process.exit(2);
}
const kafka = new Kafka({
  clientId: "kafka-tool",
  brokers: opt("--brokers", "127.0.0.1:9092").split(","),
  logLevel: logLevel.WARN,
});

if (command === "create") {
  const admin = kafka.admin();
  await admin.connect();
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: Number(opt("--partitions", "1")), replicationFactor: 1 }],
    waitForLeaders: true,
  });
  console.log(created ? `created ${topic}` : `${topic} already exists`);
  await admin.disconnect();
} else if (command === "delete") {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] });
  console.log(`deleted ${topic}`);
  await admin.disconnect();
} else if (command === "produce") {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const file = opt("--file");
  const lines = createInterface({ input: file ? createReadStream(file) : process.stdin, crlfDelay: Infinity });
  let batch = [];
  let n = 0;
  const send = async () => {
    if (batch.length === 0) return;
    await producer.send({ topic, acks: -1, messages: batch });
    n += batch.length;
    batch = [];
  };
  for await (const line of lines) {
    if (line.length === 0) continue;
    let value = line;
    if (flag("--float")) {
      value = Buffer.alloc(4);
      value.writeFloatBE(Number(line));
    }
    batch.push({ key: flag("--key-words") ? line.split(" ")[0] : null, value });
    if (batch.length >= 1000) await send();
  }
  await send();
  console.error(`produced ${n} messages to ${topic}`);
  await producer.disconnect();
} else if (command === "consume") {
  const count = Number(opt("--count", "Infinity"));
  const idleMs = Number(opt("--timeout", "5")) * 1000;
  const groupId = `kafka-tool-${randomUUID()}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let n = 0;
  let last = Date.now();
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (n >= count) return;
      n++;
      last = Date.now();
      const value =
        flag("--float") && message.value?.length === 4
          ? String(message.value.readFloatBE(0))
          : message.value?.toString();
      process.stdout.write(`${message.key?.toString() ?? ""}\t${value}\n`);
    },
  });
  while (n < count && Date.now() - last < idleMs) await new Promise((r) => setTimeout(r, 100));
  await consumer.disconnect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.disconnect();
  console.error(`consumed ${n} messages from ${topic}`);
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
