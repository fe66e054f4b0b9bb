/**
 * Stops while the Kafka broker is gone (issue 24 item 8c: "after a Kafka sink failure every
 * stop takes the full --drain-timeout because the source does not answer the stop"). Two
 * causes, one test each, on a broker of its own (PrivateBroker) so that no other test is
 * disturbed:
 *
 * - A broker that does not answer (frozen with SIGSTOP: it keeps connections open and answers
 *   nothing): kafkajs' disconnect() waits for the consumer's fetch and its leaving the group,
 *   each up to a request timeout (30 s), and the source answered the stop only after it. The
 *   source now gives the disconnect 2 s.
 * - A broker that is gone (stopped) under a transactional sink: the sink's send fails, the
 *   engine terminates the sink's thread and stops. A checkpoint in progress then asked the dead
 *   thread to prepare its transaction and waited 60 s for the answer; the stop waited for that
 *   checkpoint before it asked the sources to stop, so they were asked with no drain time left.
 *   A dead sink is now not asked.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import type { LogLine } from "../helpers/engine.js";
import {
  appArgs,
  collect,
  freshTopics,
  makeInput,
  PrivateBroker,
  produce,
  runCli,
  sleep,
  uniqueName,
} from "./helpers.js";

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";
const haveJava = spawnSync("java", ["-version"]).status === 0;
const PORT = Number(process.env.WALLAROO_TEST_KAFKA_STOP_PORT ?? 19292);

describe("stopping while the Kafka broker is gone", () => {
  it("the Kafka source answers the stop without waiting for kafkajs' disconnect: the report has its count", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    if (!haveJava) ctx.skip("no java: cannot start a broker of its own to freeze");
    const broker = new PrivateBroker(PORT);
    await broker.start();
    let frozen = false;
    try {
      const { kafka, admin, inTopic, outTopic } = await freshTopics(broker.address, 1);
      await admin.disconnect();
      const engine = await runCli([
        "--workers",
        "1",
        "--stats-interval",
        "0",
        // Less than kafkajs' request timeout (30 s), which the disconnect waited for; still ten
        // times the 2 s the source now gives it.
        "--drain-timeout",
        "20",
        "--kafka-group",
        uniqueName("group"),
        ...appArgs(broker.address, inTopic, outTopic),
      ]);
      try {
        await engine.waitForLog((l) => / running on \d+ worker/.test(l.msg ?? ""), 60_000);
        const input = makeInput(100, 4);
        const output = await collect(kafka, outTopic);
        await produce(kafka, inTopic, input);
        await output.waitFor(input.length, 60_000);
        await output.stop();
        broker.freeze();
        frozen = true;
        const exit = await engine.stop("SIGTERM", 120_000);
        const msgs = (pred: (l: LogLine) => boolean) => engine.lines.filter(pred).map((l) => l.msg);
        const stderr = engine.stderr().slice(-4000);
        // The source answered the stop, with what it read, and said that it did not wait for the disconnect.
        expect(
          msgs((l) => /did not stop within the drain timeout/.test(l.msg ?? "")),
          stderr,
        ).toEqual([]);
        expect(msgs((l) => l.name === "wallaroo.source.kafka" && /^stopped after/.test(l.msg ?? ""))).toEqual([
          "stopped after 100 messages",
        ]);
        expect(
          msgs((l) => l.name === "wallaroo.source.kafka" && /did not disconnect within 2000 ms/.test(l.msg ?? "")),
        ).toHaveLength(1);
        // Nothing was in flight: the sink reports all 100 records delivered, and the report is exact.
        const stopped = engine.lines.find((l) => l.msg === "stopped" || /^stopped; LOST/.test(l.msg ?? ""));
        expect(stopped?.report, stderr).toMatchObject({
          lost: false,
          drained: true,
          approximate: false,
          unprocessed: {},
        });
        expect(exit, stderr).toEqual({ code: 0, signal: null });
      } finally {
        engine.kill();
      }
    } finally {
      if (frozen) broker.thaw();
      await broker.destroy();
    }
  }, 240_000);

  it("after a transactional sink failed on a stopped broker, the stop asks the source in time and drains", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    if (!haveJava) ctx.skip("no java: cannot start a broker of its own to stop");
    const broker = new PrivateBroker(PORT);
    await broker.start();
    let destroyed = false;
    try {
      const { kafka, admin, inTopic, outTopic } = await freshTopics(broker.address, 1);
      await admin.disconnect();
      const engine = await runCli([
        "--workers",
        "1",
        "--stats-interval",
        "0",
        // Generous: the stop must not need it all.
        "--drain-timeout",
        "60",
        "--kafka-group",
        uniqueName("group"),
        "--resilience-dir",
        mkdtempSync(join(tmpdir(), "wallaroo-stop-")),
        ...appArgs(broker.address, inTopic, outTopic),
      ]);
      try {
        await engine.waitForLog((l) => / running on \d+ worker/.test(l.msg ?? ""), 60_000);
        const output = await collect(kafka, outTopic);
        await produce(kafka, inTopic, makeInput(100, 4));
        await output.waitFor(100, 60_000);
        await output.stop();
        // Records keep coming while the broker goes: the sink has sends in flight when it fails.
        void produce(kafka, inTopic, makeInput(200_000, 4).slice(100), 500).catch(() => {});
        await engine.waitForLog((l) => /^checkpoint \d+ committed/.test(l.msg ?? ""), 30_000, engine.lines.length);
        await broker.destroy();
        destroyed = true;
        // The sink fails (kafkajs' retries run out, or the commit of a checkpoint's transaction) and
        // the engine stops by itself: a fatal line, then the exit.
        await engine.waitForLog((l) => l.level === 60 && /^stopping: /.test(l.msg ?? ""), 120_000);
        const exit = await Promise.race([engine.exited, sleep(150_000).then(() => null)]);
        const stderr = engine.stderr().slice(-4000);
        const msgs = (re: RegExp, name?: string) =>
          engine.lines.filter((l) => re.test(l.msg ?? "") && (name === undefined || l.name === name)).map((l) => l.msg);
        expect(msgs(/did not stop within the drain timeout/), stderr).toEqual([]);
        expect(msgs(/^stopped after \d+ messages/, "wallaroo.source.kafka"), stderr).toHaveLength(1);
        const stopped = engine.lines.find((l) => /^stopped; LOST/.test(l.msg ?? "") || l.msg === "stopped");
        // Drained: nothing was left in flight to the live threads when the stop gave up waiting.
        expect(stopped?.report, stderr).toMatchObject({ drained: true });
        expect(exit?.code, stderr).not.toBe(0);
      } finally {
        engine.kill();
      }
    } finally {
      if (!destroyed) await broker.destroy();
    }
  }, 300_000);
});
