/**
 * The test driver frames a Kafka input as the source thread does: a decoder that takes the
 * record's metadata gets the key, timestamp, headers, partition and offset given to pipeInput,
 * and readOutput shows the headers an encoder set (test/fixtures/kafka-meta.ts).
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { createTestDriver, type KafkaOutput } from "wallaroo/testing";

const APP = join(fileURLToPath(new URL("../..", import.meta.url)), "test/fixtures/kafka-meta.ts");
const ARGS = [
  "--kafka_source_topic",
  "in",
  "--kafka_source_brokers",
  "h",
  "--kafka_sink_topic",
  "out",
  "--kafka_sink_brokers",
  "h",
];

it("passes pipeInput's metadata to a two-parameter decoder and shows the encoder's headers", async () => {
  const d = await createTestDriver({ module: APP, args: ARGS, workers: 2 });
  try {
    await d.pipeInput(
      "Meta",
      { key: "k", value: "v1", timestamp: 1234, headers: { trace: "t1" }, partition: 3, offset: 77 },
      { value: "v2", timestamp: 5 },
    );
    const out = d.readOutput<KafkaOutput>();
    const seen = out.map((o) => JSON.parse(o.value.toString()));
    expect(seen).toEqual([
      { value: "v1", key: "k", timestamp: 1234, trace: "t1", topic: "in", partition: 3, offset: 77 },
      { value: "v2", key: null, timestamp: 5, trace: null, topic: "in", partition: 0, offset: 0 },
    ]);
    expect(String(out[0].headers?.trace)).toBe("t1");
    expect(String(out[0].headers?.from)).toBe("3/77");
    expect(Object.keys(out[1].headers ?? {})).toEqual(["from"]);
    expect(out[1].timestamp).toBe(5 + 86_400_000); // offset 0: the fixture's encoder sets it
    expect(out[0].timestamp).toBeUndefined(); // offset 77: it does not
  } finally {
    await d.close();
  }
});
