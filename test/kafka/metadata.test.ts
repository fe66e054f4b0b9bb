/**
 * A decoder that takes the record's metadata and an encoder that sets headers, through the
 * engine and the real broker (test/fixtures/kafka-meta.ts): every input record's key,
 * timestamp, header, topic, partition and offset reach the decoder exactly, and the output
 * records carry the headers and timestamps the encoder set.
 */
// The engine's kafkajs fixes before kafkajs loads (see helpers.ts; patch 6: no TimeoutNegativeWarning).
import "../../dist/connectors/kafka/kafkajs-patches.js";
import { describe, expect, inject, it } from "vitest";
import { Partitioners } from "kafkajs";
import { join } from "node:path";
import { appArgs, dropTestKafkaState, freshTopics, REPO, sleep, uniqueName } from "./helpers.js";
import type { Seen } from "../fixtures/kafka-meta.js";

process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication } = await import("../../dist/index.js");
const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "no broker";

describe("Kafka record metadata", () => {
  it("reaches a two-parameter decoder; an encoder's headers and timestamps reach the output records", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 2);
    const group = uniqueName("group");
    const N = 40;
    // Timestamps far from now, so that the broker's own time could not pass for them.
    const input = Array.from({ length: N }, (_, i) => ({
      key: i % 5 === 0 ? null : `k${i % 7}`,
      value: `v${i}`,
      timestamp: 1_600_000_000_000 + i * 1000,
      trace: i % 3 === 0 ? null : `t-${i}`,
    }));
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const written = new Map<string, { partition: number; offset: number }>();
    for (const r of input) {
      const [meta] = await producer.send({
        topic: inTopic,
        acks: -1,
        messages: [
          {
            key: r.key,
            value: r.value,
            timestamp: String(r.timestamp),
            headers: r.trace === null ? {} : { trace: r.trace },
          },
        ],
      });
      written.set(r.value, { partition: meta.partition, offset: Number(meta.baseOffset) });
    }
    await producer.disconnect();
    const app = await runApplication({
      module: join(REPO, "test/fixtures/kafka-meta.ts"),
      workers: 2,
      statsInterval: 0,
      kafkaGroup: group,
      args: appArgs(brokers, inTopic, outTopic),
    });
    const out: { key: string | null; seen: Seen; headers: Record<string, string>; timestamp: number }[] = [];
    const started = Date.now();
    const consumer = kafka.consumer({ groupId: uniqueName("collector"), maxWaitTimeInMs: 100 });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: outTopic, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          out.push({
            key: message.key?.toString() ?? null,
            timestamp: Number(message.timestamp),
            seen: JSON.parse(message.value!.toString()),
            headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)])),
          });
        },
      });
      for (let i = 0; i < 600 && out.length < N; i++) await sleep(100);
      await app.stop();
      expect(out.length).toBe(N);
      const byValue = new Map(out.map((o) => [o.seen.value, o]));
      for (const r of input) {
        const o = byValue.get(r.value)!;
        const w = written.get(r.value)!;
        expect(o.seen).toEqual({
          value: r.value,
          key: r.key,
          timestamp: r.timestamp,
          trace: r.trace,
          topic: inTopic,
          partition: w.partition,
          offset: w.offset,
        });
        expect(o.key).toBe(r.key);
        // The encoder set the time of every other output (the input's, a day later); the rest carry the time sent.
        if (w.offset % 2 === 0) expect(o.timestamp).toBe(r.timestamp + 86_400_000);
        else expect(o.timestamp).toBeGreaterThanOrEqual(started);
        expect(o.headers).toEqual({
          ...(r.trace === null ? {} : { trace: r.trace }),
          from: `${w.partition}/${w.offset}`,
        });
      }
    } finally {
      await app.stop();
      await consumer.disconnect();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 120_000);
});
