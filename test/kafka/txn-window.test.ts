/**
 * The crash window of the Kafka sink's exactly-once output, hit on purpose: the
 * engine kills itself (SIGKILL, WALLAROO_TEST_DIE_AFTER_STORE_COMMIT) right after
 * the store committed a checkpoint that names the sinks' prepared transactions and
 * before the sinks commit them (EndTxn). The checkpoint's input is not replayed
 * after the restart (its positions are in the checkpoint), so its outputs exist
 * only in those transactions: the restart must commit them, once. Committing the
 * transaction before the store commit (the order before two-phase commit) makes
 * that interval's outputs appear twice when the crash comes between the two;
 * aborting them (a restarted producer fencing them) would lose them. The
 * read_committed collector checks every input's output appears exactly once.
 */
import { describe, expect, inject, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  appArgs,
  checkOutput,
  collect,
  freshTopics,
  makeInput,
  type Input,
  produce,
  runCli,
  sleep,
  uniqueName,
} from "./helpers.js";
import type { Engine } from "../helpers/engine.js";
import type { Kafka } from "kafkajs";

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

interface Pending {
  records: number;
  transactionalId: string;
}

/**
 * A fresh pair of topics and store; runs the engine until it kills itself in the window of its second
 * checkpoint with outputs (input keeps coming while it runs, so checkpoints keep having outputs; the first
 * leaves a committed transaction behind, so the stored one is not the first of its producer), then hands
 * the stored transaction to `body`.
 */
async function diedInWindow(
  body: (w: {
    kafka: Kafka;
    args: string[];
    input: Input[];
    sent: number;
    pending: Pending;
    checkpoint: number;
    output: Awaited<ReturnType<typeof collect>>;
    started: (e: Engine) => Engine;
  }) => Promise<void>,
): Promise<void> {
  const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 4);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-kafka-2pc-"));
  const input = makeInput(20_000, 50);
  const args = [
    "--workers",
    "2",
    "--stats-interval",
    "0",
    "--kafka-group",
    uniqueName("group"),
    "--resilience-dir",
    dir,
    "--checkpoint-interval",
    "0.2",
    ...appArgs(brokers, inTopic, outTopic),
  ];
  const output = await collect(kafka, outTopic);
  let engine: Engine | null = null;
  try {
    engine = await runCli(args, { WALLAROO_TEST_DIE_AFTER_STORE_COMMIT: "2" });
    let died = false;
    const exited = engine.exited.then((e) => {
      died = true;
      return e;
    });
    let sent = 0;
    while (!died && sent < 10_000) {
      await produce(kafka, inTopic, input.slice(sent, sent + 250), 250);
      sent += 250;
      await sleep(50);
    }
    const exit = await exited;
    expect(exit.signal).toBe("SIGKILL");
    // It died in the window: the last checkpoint names a transaction that holds records.
    const manifest = JSON.parse(fs.readFileSync(path.join(dir, "MANIFEST"), "utf8").split("\n")[0]);
    const pending = manifest.transactions as Pending[];
    expect(pending.length).toBe(1);
    expect(pending[0].records).toBeGreaterThan(0);
    await body({
      kafka,
      args,
      input,
      sent,
      pending: pending[0],
      checkpoint: manifest.checkpoint,
      output,
      started: (e) => (engine = e),
    });
  } finally {
    (engine as Engine | null)?.kill();
    await output.stop();
    await admin.deleteTopics({ topics: [inTopic, outTopic] }).catch(() => {});
    await admin.disconnect();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe("Kafka sink two-phase commit", () => {
  it("a crash between the store commit and the transaction commit: the restart commits it, each output once", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    await diedInWindow(async ({ kafka, args, input, sent, pending, checkpoint, output, started }) => {
      // No checkpoint in this run (it is killed first): the store keeps naming the transaction.
      const noCheckpoint = args.map((a, i) => (args[i - 1] === "--checkpoint-interval" ? "600" : a));
      let engine = started(await runCli(noCheckpoint));
      await engine.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? ""), 60_000);
      await engine.waitForLog((l) => /is committed$/.test(l.msg ?? "") && l.records === pending.records, 60_000);
      // Killed again once its producers are registered, before a checkpoint: the second restart still finds
      // the stored transaction committed (the first did not register its id again, which would have fenced
      // the stored epoch: the transaction would look aborted, "LOST").
      await engine.waitForLog((l) => /^producing to Kafka topic/.test(l.msg ?? ""), 60_000);
      await engine.kill9();
      engine = started(await runCli(args));
      await engine.waitForLog((l) => /is committed$/.test(l.msg ?? "") && l.records === pending.records, 60_000);
      expect(engine.lines.filter((l) => /LOST/.test(l.msg ?? ""))).toEqual([]);
      await produce(kafka, inTopic(args), input.slice(sent), 500);
      await output.waitFor(input.length, 90_000);
      expect((await engine.stop()).code).toBe(0);
      await sleep(1000); // anything past the count (repeats) reaches the collector too
      checkOutput(input, output.out, false); // every input's output exactly once, in order per key
      expect(output.out.length).toBe(input.length);
      ctx.annotate(
        `died after checkpoint ${checkpoint} with ${pending.records} records in ${pending.transactionalId}'s open transaction`,
      );
    });
  }, 180_000);

  it("a stored transaction aborted before the restart (another producer took its id): its records are reported lost, not repeated", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    await diedInWindow(async ({ kafka, args, input, sent, pending, output, started }) => {
      // What the broker's transaction timeout would do if the restart came late: the open transaction aborted,
      // the id's epoch bumped.
      const thief = kafka.producer({
        transactionalId: pending.transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
      });
      await thief.connect();
      await (await thief.transaction()).abort();
      await thief.disconnect();
      const engine = started(await runCli(args));
      const lost = await engine.waitForLog((l) => /are LOST for read_committed consumers/.test(l.msg ?? ""), 60_000);
      expect(lost.level).toBe(50); // error
      expect(lost.records).toBe(pending.records);
      expect(lost.answer).toBe("INVALID_PRODUCER_EPOCH");
      await produce(kafka, inTopic(args), input.slice(sent), 500);
      await output.waitFor(input.length - pending.records, 90_000);
      expect((await engine.stop()).code).toBe(0);
      await sleep(1000);
      // Exactly the stored transaction's records are missing, nothing twice.
      const times = new Map<number, number>();
      for (const o of output.out) times.set(o.seq, (times.get(o.seq) ?? 0) + 1);
      const twice = [...times].filter(([, n]) => n > 1).map(([q]) => q);
      const missing = input.filter((r) => !times.has(r.seq)).map((r) => r.seq);
      expect(
        { twice: twice.length, missing: missing.length },
        `seq twice: ${twice.slice(0, 5)}..${twice.at(-1)}; missing: ${missing.slice(0, 5)}..${missing.at(-1)}; the collector was handed ${output.redelivered()} records again`,
      ).toEqual({ twice: 0, missing: pending.records });
      expect(output.out.length).toBe(input.length - pending.records);
      expect(new Set(output.out.map((o) => o.seq)).size).toBe(output.out.length);
    });
  }, 180_000);
});

describe("Kafka sink two-phase commit, the store's compaction failing", () => {
  it("a compaction failing after the store commit (issue 24 item 2) does not undo it: the transaction is committed, the engine goes on, each output once", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 4);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-kafka-compact-"));
    // 2,000 keys: every 2,000 records rewrite each one, so the log passes 64 KiB and twice its live size in a
    // few checkpoints
    const input = makeInput(40_000, 2000);
    const args = [
      "--workers",
      "2",
      "--stats-interval",
      "0",
      "--kafka-group",
      uniqueName("group"),
      "--resilience-dir",
      dir,
      "--checkpoint-interval",
      "0.2",
      ...appArgs(brokers, inTopic, outTopic),
    ];
    const output = await collect(kafka, outTopic);
    let engine: Engine | null = null;
    try {
      engine = await runCli(args);
      await engine.waitForLog((l) => /^producing to Kafka topic/.test(l.msg ?? ""), 60_000);
      // The compacted log cannot be created (a directory holds its name): every compaction fails after the
      // MANIFEST commit of its checkpoint, as one does when the disk fills between the two (the store test
      // does that on a real full tmpfs).
      fs.mkdirSync(path.join(dir, "log-2"));
      const e = engine;
      const failed = () => e.lines.find((l) => /compacting its log failed/.test(l.msg ?? ""));
      let sent = 0;
      while (failed() === undefined && sent < input.length / 2 && e.child.exitCode === null) {
        await produce(kafka, inTopic, input.slice(sent, sent + 2000), 2000);
        sent += 2000;
        await sleep(100);
      }
      const warning = failed();
      expect(warning, e.stderr().slice(-3000)).toBeDefined();
      expect(warning!.level).toBe(40);
      expect(warning!.msg).toMatch(
        new RegExp(`^checkpoint \\d+ is committed, but compacting its log failed \\(.*${dir}/log-2.*EISDIR`),
      );
      await produce(kafka, inTopic, input.slice(sent), 2000);
      await output.waitFor(input.length, 90_000);
      expect((await e.stop()).code).toBe(0);
      await sleep(1000); // anything past the count (repeats) reaches the collector too
      checkOutput(input, output.out, false); // every input's output exactly once, in order per key
      expect(output.out.length).toBe(input.length);
      expect(e.lines.filter((l) => /LOST|aborting/.test(l.msg ?? ""))).toEqual([]);
      // logged once, not at every checkpoint
      expect(e.lines.filter((l) => /compacting its log failed/.test(l.msg ?? "")).length).toBe(1);
    } finally {
      (engine as Engine | null)?.kill();
      await output.stop();
      await admin.deleteTopics({ topics: [inTopic, outTopic] }).catch(() => {});
      await admin.disconnect();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});

/** the input topic of the fixture's arguments */
const inTopic = (args: string[]) => args[args.indexOf("--kafka_source_topic") + 1];
