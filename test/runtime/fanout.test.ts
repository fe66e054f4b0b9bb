/**
 * The step runner's fan-out (Executor.run / fanOut): each element of a multi step's
 * output is a message of its own from there on. One that fails in a later step (its
 * partition function, a state computation, a computation after the state step, the
 * encoder) is dropped alone, reported with the step it failed in and its value, and
 * counted in that step's error counter; the elements after it go on; --fail-fast
 * (halt) stops at the failing element. Also: messages per step, dirty tracking.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadAppModule, setupApplication } from "../../dist/runtime/loader.js";
import { compilePlan } from "../../dist/topology/plan.js";
import { createSerde } from "../../dist/transport/serde.js";
import { Executor } from "../../dist/runtime/executor.js";
import { MemoryOutbox } from "../../dist/engine/outbox.js";
import { SOURCE_FRAMED, tag } from "../../dist/transport/tags.js";
import { HIST_SLOTS, SAMPLE_EVERY } from "../../dist/metrics/layout.js";
import { frame } from "../helpers/net.js";

const APP = fileURLToPath(new URL("../fixtures/fanout-app.ts", import.meta.url));

interface Report {
  where: string;
  message: string;
  value: unknown;
  payload: string | undefined;
}

async function fanout(onError?: (e: Executor) => void, metrics = false) {
  const url = pathToFileURL(APP).href;
  const mod = await loadAppModule(url);
  const plan = compilePlan(setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"], url), 1);
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
  );
  const sink = new MemoryOutbox();
  const reports: Report[] = [];
  const executor: Executor = new Executor(
    plan,
    0,
    serde,
    [null],
    [sink],
    (where, err, payload, value) => {
      reports.push({
        where,
        message: (err as Error).message,
        value,
        payload: payload ? Buffer.from(payload).toString("utf8") : undefined,
      });
      onError?.(executor);
    },
    metrics ? new SharedArrayBuffer(1 << 16) : undefined,
  );
  const handler = executor.handler();
  const send = (...lines: string[]) => {
    const run = frame(lines);
    handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
  };
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
  const stepId = (name: string) => plan.steps.find((s) => s.name === name)!.id;
  const counters = () => {
    const l = executor.layout;
    const s = executor.slots;
    const per = (base: number) => Object.fromEntries(plan.steps.map((st) => [st.name, s[base + st.id]]));
    return {
      messages: per(l.stepMessages),
      stepErrors: per(l.stepErrors),
      decodeErrors: s[l.decodeErrors],
      encodeErrors: s[l.encodeErrors],
    };
  };
  return { executor, send, outputs, reports, stepId, counters };
}

const STATE = 'state "tallies" (pipeline "words")';
const PIPE = 'of pipeline "words"';

describe("fan-out of a multi step", () => {
  it("a failing element is dropped alone, reported where it failed with its value, and counted there", async () => {
    const { executor, send, outputs, reports, counters } = await fanout();
    send("a  ?x b boom c", "nope a skip enc b", "nosave c");
    expect(outputs()).toEqual(["<a:1>", "<b:1>", "<c:1>", "<a:2>", "<b:3>", "<nosave:2>", "<c:2>"]);
    expect(reports).toEqual([
      { where: `partition function of ${STATE}`, message: "no partition for ?x", value: "?x", payload: undefined },
      { where: `computation "count" ${PIPE}`, message: "count refuses boom", value: "boom", payload: undefined },
      { where: `computation "tag" ${PIPE}`, message: "tag refuses nope:1", value: "nope", payload: undefined },
      {
        where: "encoder of sink words -> tcp 127.0.0.1:2",
        message: "encoder refuses <enc:1>",
        value: "enc",
        payload: undefined,
      },
    ]);
    expect(executor.errorCount).toBe(4);
    const c = counters();
    // the partition function's errors count as its state step's
    expect(c.stepErrors).toEqual({ split: 0, count: 2, tag: 1 });
    expect(c.encodeErrors).toBe(1);
    expect(c.decodeErrors).toBe(0);
    // every element that reached a step counts as a message of that step ("?x" never reached count)
    expect(c.messages).toEqual({ split: 3, count: 11, tag: 10 });
    expect(executor.inCount[0]).toBe(3);
    expect(executor.takenCount[0]).toBe(3);
    expect(executor.outCount[0]).toBe(7);
  });

  it("halt() in the error report (--fail-fast): the elements after the failing one are not run, nor later messages", async () => {
    const { executor, send, outputs, reports } = await fanout((e) => e.halt());
    send("a b boom c a", "b c");
    expect(outputs()).toEqual(["<a:1>", "<b:1>"]);
    expect(reports.map((r) => r.value)).toEqual(["boom"]);
    expect((executor.peekInstance(0, "c") as { n: number } | undefined)?.n).toBeUndefined();
    expect((executor.peekInstance(0, "a") as { n: number }).n).toBe(1);
  });

  it("dirty tracking marks the keys whose computation said saveState, per element", async () => {
    const { executor, send, outputs } = await fanout();
    executor.trackDirty();
    send("a nosave b", "nosave");
    expect(outputs()).toEqual(["<a:1>", "<nosave:1>", "<b:1>", "<nosave:2>"]);
    const dirty: string[] = [];
    executor.takeDirty((_id, key) => dirty.push(String(key)));
    expect(dirty.sort()).toEqual(["a", "b"]);
    send("nosave");
    executor.takeDirty((_id, key) => dirty.push(String(key)));
    expect(dirty.sort()).toEqual(["a", "b"]);
  });

  it("with metrics on, sampled elements time every step they pass and their latency to the sink", async () => {
    const { executor, send, outputs, stepId } = await fanout(undefined, true);
    // more than SAMPLE_EVERY lines of 4 words: at least one line is a timed sample
    const lines = Array.from({ length: SAMPLE_EVERY + 100 }, (_, i) => `a${i} b${i} c${i} d${i}`);
    for (let i = 0; i < lines.length; i += 500) send(...lines.slice(i, i + 500));
    expect(outputs().length).toBe(4 * lines.length);
    const l = executor.layout;
    const s = executor.slots;
    const sampled = (base: number) => {
      let n = 0;
      for (let b = 0; b < HIST_SLOTS - 1; b++) n += s[base + b];
      return n;
    };
    const lineSamples = sampled(l.stepHist + stepId("split") * HIST_SLOTS);
    expect(lineSamples).toBeGreaterThan(0);
    // each word of a sampled line is timed in the steps after the fan-out, and at the sink
    expect(sampled(l.stepHist + stepId("count") * HIST_SLOTS)).toBe(4 * lineSamples);
    expect(sampled(l.stepHist + stepId("tag") * HIST_SLOTS)).toBe(4 * lineSamples);
    expect(sampled(l.e2eHist)).toBe(4 * lineSamples);
  });
});
