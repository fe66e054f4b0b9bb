/**
 * Every pipeline of up to three steps drawn from to, toParallel, toStateful and
 * toStatePartition, on 1, 2 and 3 workers, through the real engine (threads, rings,
 * loopback sockets), checked against the single-threaded reference interpreter.
 *
 * On one worker the output must equal the reference exactly, in order. On more,
 * outputs of different state instances interleave freely, so the check is: the
 * same multiset of outputs, where the running count of the FIRST state step is
 * compared exactly (one connection's messages reach it in arrival order), and
 * for later state steps (reached over several workers' paths, so in an order that
 * may differ) distinct messages must have got distinct counts: none applied twice.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { allTopologies, referenceRun } from "../helpers/reference.js";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import type { StepKind } from "../fixtures/combo-app.js";

// The engine runs in this process: keep its info lines out of the test output.
process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication } = await import("../../dist/index.js");

const APP = fileURLToPath(new URL("../fixtures/combo-app.ts", import.meta.url));
const INPUTS = Array.from({ length: 240 }, (_, i) => (i * 37) % 1009);

/**
 * Replaces the counts of state steps after the first one with "#*". For those,
 * returns per state instance the count each distinct message got (identified by
 * its trace up to that step): outputs dropped or duplicated further down hide or
 * repeat counts, so the check is that distinct messages got distinct counts.
 */
function splitCounts(
  kinds: StepKind[],
  lines: string[],
): { normalized: string[]; counts: Map<string, Map<string, number>> } {
  const firstState = kinds.findIndex((k) => k === "stateful" || k === "partition");
  const counts = new Map<string, Map<string, number>>();
  const normalized = lines.map((line) =>
    line.replace(/\.(stf|prt)(\d+)(k\d+)?#(\d+)/g, (all, kind, step, key, n, at: number) => {
      if (Number(step) === firstState) return all;
      const inst = `${kind}${step}${key ?? ""}`;
      if (!counts.has(inst)) counts.set(inst, new Map());
      counts.get(inst)!.set(line.slice(0, at), Number(n));
      return `.${kind}${step}${key ?? ""}#*`;
    }),
  );
  return { normalized, counts };
}

function encodeInputs(): Buffer {
  return frame(
    INPUTS.map((v) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(v);
      return b;
    }),
  );
}

describe.each([1, 2, 3])("every topology up to depth 3 on %i worker(s)", (workers) => {
  it.each(allTopologies(3).map((t) => [t.join(" > "), t] as const))("%s", async (_name, kinds) => {
    const { outputs: expected, seen } = referenceRun(kinds, INPUTS);
    const sink = await startCollector();
    const inPort = await freePort();
    const app = await runApplication({
      module: APP,
      workers,
      statsInterval: 0,
      args: ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${sink.port}`, "--topology", kinds.join(",")],
    });
    try {
      await sendBytes(inPort, encodeInputs());
      await sink.waitForLines(expected.length);
      await app.stop();
      const final = sink.lines();
      expect(final.length).toBe(expected.length);
      if (workers === 1) {
        expect(final).toEqual(expected);
      } else {
        const g = splitCounts(kinds, final);
        const e = splitCounts(kinds, expected);
        expect([...g.normalized].sort()).toEqual([...e.normalized].sort());
        // Same instances; within each, distinct messages got distinct counts, none above the number of messages the instance saw.
        expect([...g.counts.keys()].sort()).toEqual([...e.counts.keys()].sort());
        for (const [inst, byMessage] of g.counts) {
          const counts = [...byMessage.values()];
          expect(new Set(counts).size, `${inst}: two messages got the same count`).toBe(counts.length);
          expect(Math.max(...counts), inst).toBeLessThanOrEqual(seen.get(inst)!);
        }
      }
    } finally {
      await app.stop();
      await sink.close();
    }
  });
});
