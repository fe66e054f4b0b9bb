/**
 * The Kafka sink places keyed records as the Java client does (the key's murmur2, made
 * positive, modulo the topic's partition count), on the real broker, and follows the
 * partition count when partitions are added to the output topic while the engine runs.
 */
import { describe, expect, inject, it } from "vitest";
import {
  appArgs,
  collect,
  dropTestKafkaState,
  freshTopics,
  makeInput,
  produce,
  runCli,
  uniqueName,
} from "./helpers.js";

const { murmur2 } = await import("../../dist/connectors/kafka/record-frame.js");
const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";
const partitionOf = (key: string, partitions: number) => (murmur2(Buffer.from(key)) & 0x7fffffff) % partitions;

describe("Kafka sink partitions", () => {
  it("puts each key in murmur2(key) % partitions, and follows partitions added while it runs", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 2);
    const group = uniqueName("group");
    // The sink re-reads the partition count every 30 s by default; a short period keeps the test short.
    process.env.WALLAROO_KAFKA_METADATA_REFRESH_MS = "500";
    const engine = await runCli([
      "--workers",
      "2",
      "--stats-interval",
      "0",
      "--kafka-group",
      group,
      ...appArgs(brokers, inTopic, outTopic),
    ]);
    delete process.env.WALLAROO_KAFKA_METADATA_REFRESH_MS;
    const first = makeInput(3000, 40);
    const second = makeInput(6000, 40).slice(3000);
    const before = await collect(kafka, outTopic);
    let after: Awaited<ReturnType<typeof collect>> | null = null;
    try {
      await engine.waitForLog((l) => /joined group/.test(l.msg ?? ""), 30_000);
      await produce(kafka, inTopic, first);
      await before.waitFor(first.length, 60_000);
      await admin.createPartitions({ topicPartitions: [{ topic: outTopic, count: 5 }] });
      await engine.waitForLog((l) => /has 5 partitions now \(was 2\)/.test(l.msg ?? ""), 30_000);
      await produce(kafka, inTopic, second);
      // A fresh reader: the first one's metadata would not show the new partitions for minutes.
      after = await collect(kafka, outTopic);
      await after.waitFor(first.length + second.length, 60_000);
      expect((await engine.stop()).code).toBe(0);
      for (const o of after.out) {
        const partitions = o.seq < first.length ? 2 : 5;
        expect(o.partition, `${o.key} (seq ${o.seq})`).toBe(partitionOf(o.key, partitions));
      }
      // Keys did move with the count (a check that the one above compares something).
      expect(new Set(second.map((r) => partitionOf(r.key, 5))).size).toBe(5);
      // Every input once, counted once: the key's count is its place in the key's sequence (40 keys, seq % 40).
      // (Not checkOutput: a key that moved partition is, as with the Java client, in two partitions.)
      expect(after.out.length).toBe(first.length + second.length);
      expect(new Set(after.out.map((o) => o.seq)).size).toBe(first.length + second.length);
      for (const o of after.out) expect(o.count, `seq ${o.seq}`).toBe(Math.floor(o.seq / 40) + 1);
    } finally {
      await engine.stop().catch(() => {});
      await before.stop();
      await after?.stop();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 120_000);
});
