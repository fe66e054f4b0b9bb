/**
 * Smoke test for the test Kafka broker (see test/kafka/globalSetup.ts and scripts/kafka/):
 * kafkajs admin/producer/consumer round trip against a real broker.
 */
// The engine's kafkajs fixes before kafkajs loads (see helpers.ts; patch 6: no TimeoutNegativeWarning).
import "../../dist/connectors/kafka/kafkajs-patches.js";
import { randomUUID } from "node:crypto";
import { Kafka, Partitioners, logLevel, type Consumer, type Producer } from "kafkajs";
import { describe, expect, inject, it } from "vitest";

// undefined when test/kafka/globalSetup.ts is not registered as a vitest globalSetup.
const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

const PARTITIONS = 4;
const COUNT = 1000;
const BATCH = 100;
const KEYS = 16;

describe("kafka broker smoke test", () => {
  it("round-trips 1000 messages over a 4-partition topic", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);

    const kafka = new Kafka({
      clientId: "wallaroo-kafka-smoke",
      brokers: brokers.split(","),
      logLevel: logLevel.WARN,
    });
    const topic = `wallaroo-smoke-${randomUUID()}`;
    const groupId = `${topic}-group`;
    const admin = kafka.admin();
    let producer: Producer | undefined;
    let consumer: Consumer | undefined;
    await admin.connect();
    try {
      const created = await admin.createTopics({
        topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1 }],
        waitForLeaders: true,
      });
      expect(created).toBe(true);
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      expect(meta.topics[0]!.partitions).toHaveLength(PARTITIONS);

      // Produce sequentially (one awaited batch at a time) so that, within every
      // partition, sequence numbers must come back strictly increasing.
      producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      for (let start = 0; start < COUNT; start += BATCH) {
        const messages = [];
        for (let i = start; i < start + BATCH; i++) {
          messages.push({ key: `key-${i % KEYS}`, value: JSON.stringify({ seq: i }) });
        }
        await producer.send({ topic, acks: -1, messages });
      }

      const offsets = await admin.fetchTopicOffsets(topic);
      expect(offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0)).toBe(COUNT);

      // Consume everything back.
      const received: { partition: number; offset: number; key: string; seq: number }[] = [];
      consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      let allReceived!: () => void;
      const done = new Promise<void>((r) => (allReceived = r));
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          const { seq } = JSON.parse(message.value!.toString()) as { seq: number };
          received.push({ partition, offset: Number(message.offset), key: message.key!.toString(), seq });
          if (received.length >= COUNT) allReceived();
        },
      });
      await Promise.race([
        done,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`only ${received.length}/${COUNT} messages consumed`)), 30_000),
        ),
      ]);
      await new Promise((r) => setTimeout(r, 300)); // catch duplicates, if any
      await consumer.disconnect();
      consumer = undefined;

      // Exact multiset: every seq exactly once.
      expect(received).toHaveLength(COUNT);
      expect(received.map((m) => m.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: COUNT }, (_, i) => i));

      // Per-partition order, contiguous offsets, and a stable key -> partition mapping.
      const byPartition = new Map<number, typeof received>();
      const keyPartition = new Map<string, number>();
      for (const m of received) {
        if (!byPartition.has(m.partition)) byPartition.set(m.partition, []);
        byPartition.get(m.partition)!.push(m);
        expect(keyPartition.get(m.key) ?? m.partition).toBe(m.partition);
        keyPartition.set(m.key, m.partition);
        expect(m.key).toBe(`key-${m.seq % KEYS}`);
      }
      expect(byPartition.size).toBe(PARTITIONS);
      for (const msgs of byPartition.values()) {
        msgs.forEach((m, i) => {
          expect(m.offset).toBe(i);
          if (i > 0) expect(m.seq).toBeGreaterThan(msgs[i - 1]!.seq);
        });
      }
    } finally {
      await consumer?.disconnect().catch(() => {});
      await producer?.disconnect().catch(() => {});
      await admin.deleteGroups([groupId]).catch(() => {});
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect();
    }
  });
});
