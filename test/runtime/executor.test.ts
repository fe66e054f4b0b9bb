/**
 * The step runner on its own, fed frames as a worker's rings would feed it, its
 * outputs written to in-memory outboxes: what --fail-fast relies on (halt()
 * stops the rest of the batch, which an engine-level test cannot show without a
 * race against the coordinator's kill), and that a TCP source's run of messages
 * is decoded message by message.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadAppModule, setupApplication } from "../../dist/runtime/loader.js";
import { compilePlan } from "../../dist/topology/plan.js";
import { createSerde } from "../../dist/transport/serde.js";
import { Executor } from "../../dist/runtime/executor.js";
import { MemoryOutbox } from "../../dist/engine/outbox.js";
import { SOURCE_FRAMED, tag } from "../../dist/transport/tags.js";
import { frame } from "../helpers/net.js";

const APP = fileURLToPath(new URL("../fixtures/e2e-app.ts", import.meta.url));

async function faultyExecutor(onError: (e: Executor, where: string, err: unknown) => void) {
  const url = pathToFileURL(APP).href;
  const mod = await loadAppModule(url);
  const plan = compilePlan(
    setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2", "--mode", "faulty"], url),
    1,
  );
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
  );
  const sink = new MemoryOutbox();
  const executor: Executor = new Executor(plan, 0, serde, [null], [sink], (where, err) =>
    onError(executor, where, err),
  );
  const outputs = () => {
    executor.flushSinks();
    const out: string[] = [];
    sink.drain((_t, bytes, off, len) => {
      out.push(
        ...Buffer.from(bytes.subarray(off, off + len))
          .toString("utf8")
          .split("\n")
          .filter(Boolean),
      );
    });
    return out;
  };
  return { executor, handler: executor.handler(), outputs };
}

describe("Executor", () => {
  const run = frame(["ok 0 k0", "ok 1 k1", "bad-compute 2 k2", "ok 3 k0", "ok 4 k1"]);

  it("without --fail-fast: the failing message is dropped and reported, the rest of the run goes on", async () => {
    const errors: string[] = [];
    const { executor, handler, outputs } = await faultyExecutor((_e, where, err) =>
      errors.push(`${where}: ${(err as Error).message}`),
    );
    handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    expect(outputs()).toEqual(["ok 0 k0 #1", "ok 1 k1 #1", "ok 3 k0 #2", "ok 4 k1 #2"]);
    expect(errors).toEqual(['computation "faulty compute" of pipeline "faulty": computation refuses bad-compute 2 k2']);
    expect(executor.errorCount).toBe(1);
  });

  it("halt() from the error report (what the worker does under --fail-fast): nothing after the failing message is processed", async () => {
    const { executor, handler, outputs } = await faultyExecutor((e) => e.halt());
    handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    // a later frame of the same batch is not processed either
    const more = frame(["ok 5 k0"]);
    handler(tag(SOURCE_FRAMED, 0), more, 0, more.length);
    expect(outputs()).toEqual(["ok 0 k0 #1", "ok 1 k1 #1"]);
    expect(executor.halted).toBe(true);
  });
});
