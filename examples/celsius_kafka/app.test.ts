/** celsius_kafka through the test driver: Kafka records in and out, no broker. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createTestDriver, type KafkaOutput } from "wallaroo/testing";

const args = [
  "--kafka_source_topic",
  "celsius",
  "--kafka_source_brokers",
  "127.0.0.1:9092",
  "--kafka_sink_topic",
  "fahrenheit",
  "--kafka_sink_brokers",
  "127.0.0.1:9092",
];

it("converts each Kafka message value, writes text values with no key", async () => {
  const driver = await createTestDriver({ module: new URL("./app.ts", import.meta.url), args, workers: 2 });
  const celsius = readFileSync(new URL("./celsius.txt", import.meta.url), "utf8")
    .split("\n")
    .filter(Boolean)
    .map(Number);
  const values = celsius.map((c) => {
    const b = Buffer.alloc(4);
    b.writeFloatBE(c);
    return b;
  });
  // the key picks the partition; the decoder sees only the value
  await driver.pipeInput("Celsius Conversion", ...values.map((value, i) => ({ key: `sensor-${i % 3}`, value })));
  const out = driver.readOutput<KafkaOutput>();
  expect(out.every((r) => r.key === null)).toBe(true);
  const want = values.map((v) => (v.readFloatBE(0) * 1.8 + 32).toFixed(2));
  expect(out.map((r) => r.value.toString()).sort()).toEqual([...want].sort());
  await driver.close();
});
