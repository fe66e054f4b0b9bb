/**
 * word_count_kafka through the test driver: lines as Kafka values, counts out
 * as Kafka records keyed by word, checked against word_count's reference.
 */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createTestDriver, type KafkaOutput } from "wallaroo/testing";
import { expected } from "../word_count/reference.js";

const args = [
  "--kafka_source_topic",
  "lines",
  "--kafka_source_brokers",
  "127.0.0.1:9092",
  "--kafka_sink_topic",
  "counts",
  "--kafka_sink_brokers",
  "127.0.0.1:9092",
];

it("writes `word => count` keyed by word, every count of a word in order", async () => {
  const driver = await createTestDriver({ module: new URL("./app.ts", import.meta.url), args, workers: 2 });
  const lines = readFileSync(new URL("../word_count/data.txt", import.meta.url), "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(0, 200);
  await driver.pipeInput("Split and Count", ...lines);
  const out = driver.readOutput<KafkaOutput>();
  const want = expected(lines.map((l) => Buffer.from(l))).map((l) => l.slice(0, -1));
  expect(out.map((r) => r.value.toString()).sort()).toEqual([...want].sort());
  for (const r of out) expect(r.value.toString().startsWith(`${r.key!.toString()} => `)).toBe(true);
  const counts = new Map<string, number[]>();
  for (const r of out) {
    const k = r.key!.toString();
    counts.set(k, [...(counts.get(k) ?? []), Number(r.value.toString().split(" => ")[1])]);
  }
  for (const [word, ns] of counts) expect(ns, word).toEqual(ns.map((_, i) => i + 1));
  await driver.close();
});
