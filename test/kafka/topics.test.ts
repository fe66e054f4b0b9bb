/**
 * The engine never creates Kafka topics: a missing source or sink topic is
 * reported (which topic, which brokers), retried with backoff, and picked up
 * once it exists; a topic deleted under a running engine is not re-created by
 * the consumer's metadata requests. Real broker (test/kafka/globalSetup.ts),
 * engine run through the CLI so that its log lines can be read.
 */
import { describe, expect, inject, it } from "vitest";
import {
  appArgs,
  checkOutput,
  client,
  collect,
  createTopics,
  makeInput,
  produce,
  runCli,
  sleep,
  uniqueName,
  dropTestKafkaState,
} from "./helpers.js";

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

const missing = (topic: string) => (l: { msg?: string }) =>
  (l.msg ?? "").includes(`Kafka topic ${JSON.stringify(topic)} does not exist on brokers ${brokers.split(",")[0]}`);

describe("Kafka topics", () => {
  it("reports missing source and sink topics, creates neither, and runs once they exist", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const kafka = client(brokers);
    const admin = kafka.admin();
    await admin.connect();
    const inTopic = uniqueName("missing-in");
    const outTopic = uniqueName("missing-out");
    const group = uniqueName("group");
    const engine = await runCli([
      "--workers",
      "2",
      "--stats-interval",
      "0",
      "--kafka-group",
      group,
      ...appArgs(brokers, inTopic, outTopic),
    ]);
    try {
      const inLine = await engine.waitForLog(missing(inTopic), 20_000);
      const outLine = await engine.waitForLog(missing(outTopic), 20_000);
      expect(inLine.level).toBe(40); // warn
      expect(outLine.msg).toMatch(/wallaroo does not create topics/);
      // Retried, with backoff: a second report of each comes after the first.
      await engine.waitForLog(missing(inTopic), 20_000, engine.lines.indexOf(inLine) + 1);
      await engine.waitForLog(missing(outTopic), 20_000, engine.lines.indexOf(outLine) + 1);
      const topics = await admin.listTopics();
      expect(topics).not.toContain(inTopic);
      expect(topics).not.toContain(outTopic);
      expect(engine.child.exitCode).toBe(null);

      // Created by the operator: the engine picks them up and delivers everything.
      await createTopics(admin, [inTopic, outTopic], 2);
      const input = makeInput(2000, 10);
      await produce(kafka, inTopic, input);
      const output = await collect(kafka, outTopic);
      try {
        await output.waitFor(input.length, 60_000);
        expect((await engine.stop()).code).toBe(0);
        await sleep(500);
        checkOutput(input, output.out, false);
      } finally {
        await output.stop();
      }
      const meta = await admin.fetchTopicMetadata({ topics: [inTopic, outTopic] });
      expect(meta.topics.map((t) => t.partitions.length)).toEqual([2, 2]);
    } finally {
      await engine.stop().catch(() => {});
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 120_000);

  it("does not re-create an input topic deleted under a running engine; says which topic is gone", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const kafka = client(brokers);
    const admin = kafka.admin();
    await admin.connect();
    const inTopic = uniqueName("in");
    const outTopic = uniqueName("out");
    await createTopics(admin, [inTopic, outTopic], 4);
    const group = uniqueName("group");
    const engine = await runCli([
      "--workers",
      "2",
      "--stats-interval",
      "0",
      "--kafka-group",
      group,
      ...appArgs(brokers, inTopic, outTopic),
    ]);
    try {
      await engine.waitForLog((l) => /joined group/.test(l.msg ?? ""), 30_000);
      const input = makeInput(500, 10);
      await produce(kafka, inTopic, input);
      const output = await collect(kafka, outTopic);
      try {
        await output.waitFor(input.length, 60_000);
      } finally {
        await output.stop();
      }
      const from = engine.lines.length;
      await admin.deleteTopics({ topics: [inTopic] });
      await engine.waitForLog(missing(inTopic), 60_000, from);
      // Give the consumer's metadata refreshes time to (wrongly) auto-create it.
      await sleep(3000);
      expect(await admin.listTopics()).not.toContain(inTopic);
      expect(engine.child.exitCode).toBe(null);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      await engine.stop().catch(() => {});
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 120_000);
});
