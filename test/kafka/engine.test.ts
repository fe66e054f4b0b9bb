/**
 * The engine's Kafka source and sink against a real broker (test/kafka/globalSetup.ts):
 * exact delivery through a partitioned state, a broker restart mid-run, an
 * unreachable broker, an oversized output record. The app is
 * test/fixtures/kafka-count.ts ("KEY:SEQ" in, "KEY:SEQ:COUNT" out, keyed by KEY).
 */
import { describe, expect, inject, it } from "vitest";
import {
  APP,
  appArgs,
  checkOutput,
  collect,
  freshTopics,
  makeInput,
  PrivateBroker,
  produce,
  runCli,
  sleep,
  uniqueName,
  dropTestKafkaState,
  type Input,
} from "./helpers.js";

// The engine runs in this process: keep its info lines out of the test output.
process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication } = await import("../../dist/index.js");

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";
/** the restart test needs a broker it can stop: one started by scripts/kafka/start.sh, not an external one */
const canRestart = brokers !== "" && !process.env.KAFKA_BROKERS;
const RESTART_PORT = Number(process.env.WALLAROO_TEST_KAFKA_RESTART_PORT ?? 19192);

describe("Kafka source and sink", () => {
  it("delivers 20000 records over 4 partitions through a partitioned state exactly, in order per key", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 4);
    const group = uniqueName("group");
    const input = makeInput(20_000, 40);
    const app = await runApplication({
      module: APP,
      workers: 2,
      statsInterval: 0,
      kafkaGroup: group,
      args: appArgs(brokers, inTopic, outTopic),
    });
    const output = await collect(kafka, outTopic);
    try {
      await produce(kafka, inTopic, input);
      await output.waitFor(input.length, 60_000);
      await app.stop();
      await sleep(500); // anything extra (a duplicate) would show up here
      expect(output.out.length).toBe(input.length);
      checkOutput(input, output.out, false);
      expect(new Set(output.out.map((o) => o.partition)).size).toBe(4);
    } finally {
      await app.stop();
      await output.stop();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 120_000);

  it("loses nothing when the broker is stopped and restarted mid-run", async (ctx) => {
    if (!canRestart)
      ctx.skip(brokers ? "KAFKA_BROKERS is external: cannot restart it" : `Kafka tests skipped: ${skipReason}`);
    const broker = new PrivateBroker(RESTART_PORT);
    await broker.start();
    const { kafka, admin, inTopic, outTopic } = await freshTopics(broker.address, 4);
    await admin.disconnect();
    const first = makeInput(10_000, 40);
    const second = makeInput(20_000, 40).slice(10_000);
    const app = await runApplication({
      module: APP,
      workers: 2,
      statsInterval: 0,
      kafkaGroup: uniqueName("group"),
      args: appArgs(broker.address, inTopic, outTopic),
    });
    try {
      const output = await collect(kafka, outTopic);
      await produce(kafka, inTopic, first);
      // Stop the broker while the first half is still flowing.
      await output.waitFor(1000, 30_000);
      await output.stop();
      const argv = await broker.kill();
      await sleep(2000); // the engine sees the broker gone: failed fetches and sends, retries
      await broker.relaunch(argv);
      await produce(kafka, inTopic, second);
      const all: Input[] = [...first, ...second];
      const after = await collect(kafka, outTopic);
      try {
        // Duplicates are allowed: wait until every input has shown up at least once.
        const deadline = Date.now() + 90_000;
        for (;;) {
          try {
            checkOutput(all, after.out, true);
            break;
          } catch (err) {
            if (Date.now() > deadline) throw err;
            await sleep(500);
          }
        }
        await app.stop();
      } finally {
        await after.stop();
      }
    } finally {
      await app.stop();
      await broker.destroy();
    }
  }, 180_000);

  it("logs a clear error and retries without spinning when the brokers cannot be reached", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const engine = await runCli([
      "--workers",
      "1",
      "--stats-interval",
      "0",
      "--drain-timeout",
      "5",
      ...appArgs("127.0.0.1:1", "nowhere-in", "nowhere-out"),
    ]);
    try {
      const line = await engine.waitForLog(
        (l) => /cannot reach Kafka brokers 127\.0\.0\.1:1: ECONNREFUSED; retrying/.test(l.msg ?? ""),
        20_000,
      );
      expect(line.level).toBe(40); // warn
      // runApplication does not wait for the brokers forever: it resolves with a warning (START_WAIT_MS).
      await engine.waitForLog((l) => /Kafka brokers not reachable yet; running/.test(l.msg ?? ""), 20_000);
      const cpu0 = engine.cpuSeconds();
      const t0 = performance.now();
      await sleep(4000);
      const share = (engine.cpuSeconds() - cpu0) / ((performance.now() - t0) / 1000);
      expect(share, `CPU share of one core while retrying: ${share.toFixed(2)}`).toBeLessThan(0.5);
      expect(engine.child.exitCode).toBe(null);
      // It still stops cleanly, brokers or not.
      expect((await engine.stop()).code).toBe(0);
      const retries = engine.lines.filter((l) => /cannot reach Kafka brokers/.test(l.msg ?? "")).length;
      expect(retries).toBeGreaterThanOrEqual(2);
      expect(retries).toBeLessThan(60); // backoff, not a log flood
    } finally {
      await engine.stop().catch(() => {});
    }
  }, 60_000);

  it("drops and counts an oversized output record; the rest flows", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 2);
    const group = uniqueName("group");
    const input: Input[] = makeInput(2000, 10).map((r) => ({ ...r, big: r.seq % 400 === 7 }));
    const big = input.filter((r) => r.big).length;
    const engine = await runCli([
      "--workers",
      "2",
      "--stats-interval",
      "0",
      "--kafka-group",
      group,
      ...appArgs(brokers, inTopic, outTopic),
    ]);
    const output = await collect(kafka, outTopic);
    try {
      await engine.waitForLog((l) => /joined group/.test(l.msg ?? ""), 30_000);
      await produce(kafka, inTopic, input);
      await output.waitFor(input.length - big, 60_000);
      expect((await engine.stop()).code).toBe(0);
      await sleep(500);
      checkOutput(input, output.out, false);
      expect(output.out.length).toBe(input.length - big);
      const closed = engine.lines.find((l) => typeof l.dropped === "number" && /^closed after/.test(l.msg ?? ""));
      expect(closed?.dropped).toBe(big);
      expect(closed?.delivered).toBe(input.length - big);
      const errors = engine.lines.filter((l) => /over maxMessageSize 100000/.test(l.msg ?? ""));
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(errors.length).toBeLessThan(big); // rate-limited
    } finally {
      await engine.stop().catch(() => {});
      await output.stop();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 90_000);
});
