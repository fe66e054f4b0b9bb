/**
 * Resilience with Kafka: the count-per-key fixture (test/fixtures/kafka-count.ts)
 * is killed with SIGKILL three times while input is produced, and restarted on
 * the same --resilience-dir each time.
 *
 * State is exactly-once: every output record carries the count its input has in
 * the key's sequence (a record applied twice, or skipped, would shift the counts),
 * and the final count of every key equals its number of inputs. Output is
 * exactly-once for a read_committed consumer (the test's collector: kafkajs reads
 * committed records only by default), because the sink produces in a transaction
 * committed at each checkpoint. The kills land between checkpoints (at a random
 * moment in the 0-200 ms after one, with checkpoints 300 ms apart); a kill inside
 * a checkpoint's two-phase commit (between the store commit and the transaction's)
 * is what test/kafka/txn-window.test.ts makes happen.
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

describe("Kafka with --resilience-dir", () => {
  it("counts every record exactly once, and outputs each count once, across three kill -9 and restarts", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 4);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-kafka-resil-"));
    const input = makeInput(40_000, 50);
    const chunks = [0, 1, 2, 3].map((i) => input.slice(i * 10_000, (i + 1) * 10_000));
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
      "0.3",
      ...appArgs(brokers, inTopic, outTopic),
    ];
    const output = await collect(kafka, outTopic);
    let engine: Engine | null = null;
    const restored: number[] = [];
    // What a read_uncommitted consumer sees: also the outputs of the transactions the kills aborted.
    const dirtyReader = kafka.consumer({
      groupId: uniqueName("uncommitted"),
      readUncommitted: true,
      maxWaitTimeInMs: 100,
    });
    let uncommitted = 0;
    await dirtyReader.connect();
    await dirtyReader.subscribe({ topic: outTopic, fromBeginning: true });
    await dirtyReader.run({
      eachBatch: async ({ batch }) => {
        uncommitted += batch.messages.length;
      },
    });
    try {
      for (let round = 0; round < 4; round++) {
        engine = await runCli(args);
        await engine.waitForLog((l) => /running on/.test(l.msg ?? ""), 60_000);
        const r = engine.lines.find((l) => /^restored checkpoint/.test(l.msg ?? ""));
        if (r) restored.push(r.checkpoint);
        // Produced while the engine runs; the kill comes at a random moment in the middle of it.
        const producing = produce(kafka, inTopic, chunks[round], 50);
        if (round === 3) {
          await producing;
          break;
        }
        // After this run's first checkpoint with data (so that the restart has one to restore), at a random
        // moment before the next one: outputs of messages read since are in the open transaction, lost with it.
        await engine.waitForLog((l) => /^checkpoint \d+ committed/.test(l.msg ?? "") && l.instances > 0, 60_000);
        await sleep(Math.floor(Math.random() * 100));
        engine.child.kill("SIGKILL");
        await new Promise((r) => engine!.child.once("exit", r));
        await producing;
      }
      // Wait until every key's final count has come out.
      const finalCount = new Map<string, number>();
      for (const r of input) finalCount.set(r.key, (finalCount.get(r.key) ?? 0) + 1);
      const deadline = Date.now() + 90_000;
      for (;;) {
        const max = new Map<string, number>();
        for (const o of output.out) max.set(o.key, Math.max(max.get(o.key) ?? 0, o.count));
        if ([...finalCount].every(([k, n]) => max.get(k) === n)) break;
        if (Date.now() > deadline) throw new Error("final counts did not arrive within 90 s");
        await sleep(200);
      }
      expect((await engine!.stop()).code).toBe(0);
      await sleep(500);
      expect(restored.length).toBe(3); // each restart found a checkpoint
      // Every input appears, and each output's count is its input's position in the key's sequence:
      // a record applied twice to the state (or skipped) would shift every later count of its key.
      // Repeated outputs, described so that a failure says whether they are one checkpoint interval's
      // (the commit window docs/operations.md documents: a contiguous run of input sequence numbers) or scattered.
      const times = new Map<number, number>();
      for (const o of output.out) times.set(o.seq, (times.get(o.seq) ?? 0) + 1);
      const repeated = [...times]
        .filter(([, n]) => n > 1)
        .map(([seq]) => seq)
        .sort((a, b) => a - b);
      if (repeated.length > 0) {
        const gaps = repeated.filter((seq, i) => i > 0 && seq !== repeated[i - 1] + 1).length;
        throw new Error(
          `${repeated.length} inputs were output more than once: seq ${repeated[0]}..${repeated[repeated.length - 1]} ` +
            `in ${gaps + 1} contiguous run(s); restored checkpoints ${restored.join(",")}`,
        );
      }
      checkOutput(input, output.out, false); // each input's output once, in order per key
      expect(output.out.length).toBe(input.length);
      const position = new Map<number, number>();
      const seen = new Map<string, number>();
      for (const r of input) {
        seen.set(r.key, (seen.get(r.key) ?? 0) + 1);
        position.set(r.seq, seen.get(r.key)!);
      }
      const wrong = output.out.filter((o) => position.get(o.seq) !== o.count);
      expect(wrong.slice(0, 5)).toEqual([]);
      const max = new Map<string, number>();
      for (const o of output.out) max.set(o.key, Math.max(max.get(o.key) ?? 0, o.count));
      expect(max).toEqual(finalCount);
      ctx.annotate(
        `${output.out.length} committed output records for ${input.length} inputs; a read_uncommitted consumer saw ${uncommitted} (aborted transactions included); the collector was handed ${output.redelivered()} records again (its own group's rebalances)`,
      );
    } finally {
      if (engine && engine.child.exitCode === null) engine.child.kill("SIGKILL");
      await output.stop();
      await dirtyReader.disconnect().catch(() => {});
      await admin.deleteTopics({ topics: [inTopic, outTopic] }).catch(() => {});
      await admin.disconnect();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
