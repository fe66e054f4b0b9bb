/**
 * With every message timed (WALLAROO_METRICS_SAMPLE_EVERY=1), the sample's start time
 * travels inside the frames between workers: the outputs must be the same as without
 * metrics, in every way a value crosses (the source's raw bytes to a first state step,
 * a packed value to a later one), and every output must be observed once.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { referenceRun } from "../helpers/reference.js";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import type { StepKind } from "../fixtures/combo-app.js";

process.env.WALLAROO_LOG_LEVEL ??= "warn";
process.env.WALLAROO_METRICS_SAMPLE_EVERY = "1"; // before the engine is loaded: its workers inherit it
const { runApplication } = await import("../../dist/index.js");

const APP = fileURLToPath(new URL("../fixtures/combo-app.ts", import.meta.url));
const INPUTS = Array.from({ length: 300 }, (_, i) => (i * 37) % 1009);

function metric(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("timed samples across workers", () => {
  it.each([[["partition", "parallel"]], [["parallel", "partition", "to"]], [["to", "stateful"]]] as StepKind[][][])(
    "%j on 3 workers: same outputs, each one observed",
    async (kinds) => {
      const { outputs: expected } = referenceRun(kinds, INPUTS);
      const sink = await startCollector();
      const inPort = await freePort();
      const app = await runApplication({
        module: APP,
        workers: 3,
        statsInterval: 0,
        metricsPort: 0,
        args: ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${sink.port}`, "--topology", kinds.join(",")],
      });
      try {
        expect(app.metricsPort).toBeGreaterThan(0);
        await sendBytes(
          inPort,
          frame(
            INPUTS.map((v) => {
              const b = Buffer.alloc(4);
              b.writeUInt32BE(v);
              return b;
            }),
          ),
        );
        await sink.waitForLines(expected.length);
        await new Promise((r) => setTimeout(r, 200));
        expect([...sink.lines()].sort()).toEqual([...expected].sort());
        const text = await (await fetch(`http://127.0.0.1:${app.metricsPort}/metrics`)).text();
        expect(metric(text, "wallaroo_source_messages_total")).toBe(INPUTS.length);
        expect(metric(text, "wallaroo_sink_messages_total")).toBe(expected.length);
        // Every message was timed: one latency observation per output, none lost on the way.
        expect(metric(text, "wallaroo_latency_seconds_count")).toBe(expected.length);
        const steps = text.split("\n").filter((l) => l.startsWith("wallaroo_step_processing_seconds_count{"));
        expect(steps.length).toBe(kinds.length);
        const entered = text.split("\n").filter((l) => l.startsWith("wallaroo_step_messages_total{"));
        steps.forEach((l, i) =>
          expect(l.slice(l.lastIndexOf(" "))).toBe(entered[i].slice(entered[i].lastIndexOf(" "))),
        );
      } finally {
        await app.stop();
        await sink.close();
      }
    },
  );
});
