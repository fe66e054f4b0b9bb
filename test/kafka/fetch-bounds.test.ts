/**
 * The Kafka source asks for at most FETCH_PARTITION_BYTES per partition and FETCH_BYTES per fetch
 * (src/connectors/kafka/source.ts: a fetch is what its thread holds, decoded). Bounded fetches still
 * deliver everything: a backlog many fetches long, and records larger than either bound (a broker
 * returns such a record alone), through the real engine and a real broker.
 */
// The engine's kafkajs fixes before kafkajs loads (see helpers.ts; patch 6: no TimeoutNegativeWarning).
import "../../dist/connectors/kafka/kafkajs-patches.js";
import { describe, expect, inject, it } from "vitest";
import { Partitioners } from "kafkajs";
import {
  APP,
  appArgs,
  checkOutput,
  collect,
  dropTestKafkaState,
  freshTopics,
  makeInput,
  sleep,
  uniqueName,
} from "./helpers.js";

process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication } = await import("../../dist/index.js");
const { FETCH_BYTES, FETCH_PARTITION_BYTES } = await import("../../dist/connectors/kafka/source.js");

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

describe("Kafka source fetch bounds", () => {
  it("delivers a backlog of many fetches and records over the fetch bounds, exactly, in order per key", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 2);
    const group = uniqueName("group");
    // 3000 records of ~2 KiB (6 MB: over 20 fetches of FETCH_BYTES) on 6 keys; every 500th is
    // 1.5x FETCH_PARTITION_BYTES, and the last three in a row are each larger than FETCH_BYTES / 2,
    // so one partition holds consecutive records over FETCH_BYTES together.
    const input = makeInput(3000, 6);
    const padOf = (seq: number) =>
      seq >= 2997 ? (FETCH_BYTES * 3) / 4 : seq % 500 === 7 ? (FETCH_PARTITION_BYTES * 3) / 2 : 2048;
    expect((FETCH_BYTES * 3) / 4).toBeLessThan(1_000_000); // under the broker's default message.max.bytes
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const app = await runApplication({
      module: APP,
      workers: 2,
      statsInterval: 0,
      kafkaGroup: group,
      args: appArgs(brokers, inTopic, outTopic),
    });
    const output = await collect(kafka, outTopic);
    try {
      // Produced before the engine reads much of it: the source meets a backlog.
      for (let i = 0; i < input.length; i += 100) {
        // One record per request where a record is large (a request is one broker message set).
        const slice = input.slice(i, i + 100);
        const large = slice.some((r) => padOf(r.seq) > 2048);
        const sends = large ? slice.map((r) => [r]) : [slice];
        for (const rs of sends)
          await producer.send({
            topic: inTopic,
            acks: -1,
            messages: rs.map((r) => ({ key: r.key, value: `${r.key}:${r.seq}:pad:${"#".repeat(padOf(r.seq))}` })),
          });
      }
      await output.waitFor(input.length, 90_000);
      await app.stop();
      await sleep(500); // anything extra (a duplicate) would show up here
      expect(output.out.length).toBe(input.length);
      checkOutput(input, output.out, false);
    } finally {
      await producer.disconnect();
      await app.stop();
      await output.stop();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 180_000);
});
