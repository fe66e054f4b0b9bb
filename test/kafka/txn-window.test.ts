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
  produce,
  runCli,
  sleep,
  uniqueName,
} from "./helpers.js";
import type { Engine } from "../helpers/engine.js";

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

describe("Kafka sink two-phase commit", () => {
  it("a crash between the store commit and the transaction commit: the restart commits it, each output once", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
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
      // Input keeps coming while the engine runs, so that checkpoints keep having outputs: the engine dies at
      // its second one with outputs (the first leaves a committed transaction behind, so the stored one is
      // not the first of its producer).
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
      // It died in the window: the last checkpoint names transactions that hold records.
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, "MANIFEST"), "utf8").split("\n")[0]);
      const pending = manifest.transactions as { records: number; transactionalId: string }[];
      expect(pending.length).toBe(1);
      expect(pending[0].records).toBeGreaterThan(0);

      // No checkpoint in this run (it is killed first): the store keeps naming the transaction.
      const noCheckpoint = args.map((a, i) => (args[i - 1] === "--checkpoint-interval" ? "600" : a));
      engine = await runCli(noCheckpoint);
      await engine.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? ""), 60_000);
      await engine.waitForLog((l) => /is committed$/.test(l.msg ?? "") && l.records === pending[0].records, 60_000);
      // Killed again once its producers are registered, before a checkpoint: the second restart still finds
      // the stored transaction committed (the first did not register its id again, which would have fenced
      // the stored epoch: the transaction would look aborted, "LOST").
      await engine.waitForLog((l) => /^producing to Kafka topic/.test(l.msg ?? ""), 60_000);
      await engine.kill9();
      engine = await runCli(args);
      await engine.waitForLog((l) => /is committed$/.test(l.msg ?? "") && l.records === pending[0].records, 60_000);
      expect(engine.lines.filter((l) => /LOST/.test(l.msg ?? ""))).toEqual([]);
      await produce(kafka, inTopic, input.slice(sent), 500);
      await output.waitFor(input.length, 90_000);
      expect((await engine.stop()).code).toBe(0);
      await sleep(1000); // anything past the count (repeats) reaches the collector too
      checkOutput(input, output.out, false); // every input's output exactly once, in order per key
      expect(output.out.length).toBe(input.length);
      ctx.annotate(
        `died after checkpoint ${manifest.checkpoint} with ${pending[0].records} records in ${pending[0].transactionalId}'s open transaction`,
      );
    } finally {
      engine?.kill();
      await output.stop();
      await admin.deleteTopics({ topics: [inTopic, outTopic] }).catch(() => {});
      await admin.disconnect();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
