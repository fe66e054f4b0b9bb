/**
 * DeadLetters on its own (real files in a temp dir): records name the pipeline and
 * step from the executor's labels, keep the raw payload or the value, and a file that
 * would pass the limit moves to .1 with a warning that says how many records the
 * replaced .1 held.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import * as wallaroo from "../../src/index.js";
import { compilePlan } from "../../src/topology/plan.js";
import { DeadLetters } from "../../src/runtime/dead-letter.js";
import type { Logger } from "../../src/core/log.js";

function plan() {
  const ab = new wallaroo.ApplicationBuilder("dl");
  ab.newPipeline(
    "p one",
    new wallaroo.TCPSourceConfig(
      "127.0.0.1",
      7000,
      wallaroo.decoder((b: Buffer) => b.toString()),
    ),
  )
    .to(wallaroo.computation("step a", (s: string) => s))
    .toSink(
      new wallaroo.TCPSinkConfig(
        "127.0.0.1",
        7001,
        wallaroo.encoder((s: string) => s),
      ),
    );
  return compilePlan(ab.build(), 2);
}

/** pino's interface as far as DeadLetters uses it, keeping what was logged */
function logger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown>, msg: string) => {
    lines.push({ level, obj, msg });
  };
  return { log: { warn: at("warn"), error: at("error") } as unknown as Logger, lines };
}

it("records pipeline, step, error, stack and payload or value; rotates to .1 at the limit, saying what it discarded", () => {
  const dir = mkdtempSync(join(tmpdir(), "wallaroo-dlu-"));
  try {
    const p = plan();
    const { log, lines } = logger();
    const dl = new DeadLetters(p, 1, { dir, maxBytes: 4000 }, log);
    dl.write('computation "step a" of pipeline "p one"', new Error("boom"), Buffer.from("raw bytes"));
    dl.write(`encoder of sink ${p.sinks[0].label}`, "not an Error", undefined, {
      n: 5n,
      m: new Map([["k", 1]]),
      b: Buffer.from("hi"),
    });
    dl.write("somewhere else", new Error("x"), undefined, undefined);
    const recs = readFileSync(join(dir, "worker-1.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(recs[0]).toMatchObject({
      worker: 1,
      pipeline: "p one",
      step: 'computation "step a"',
      error: "boom",
      payload: Buffer.from("raw bytes").toString("base64"),
    });
    expect(recs[0].stack[0]).toBe("Error: boom");
    expect(recs[1]).toMatchObject({
      pipeline: "p one",
      step: `encoder of sink ${JSON.stringify(p.sinks[0].label)}`,
      error: "not an Error",
      stack: [],
    });
    expect(recs[1].value).toEqual({ n: "5", m: [["k", 1]], b: { base64: Buffer.from("hi").toString("base64") } });
    expect(recs[2]).toMatchObject({ pipeline: null, step: null, where: "somewhere else", value: null });
    expect(lines).toEqual([]);

    // fill past the limit twice: the first rotation replaces no .1; the second discards the first file's records
    let written = 3;
    while (lines.length < 2) {
      dl.write('computation "step a" of pipeline "p one"', new Error("again"), Buffer.alloc(100));
      written++;
    }
    dl.close();
    expect(lines.map((l) => l.level)).toEqual(["warn", "warn"]);
    expect(lines[0].obj.discarded).toBe(0);
    const firstFile = lines[1].obj.discarded as number;
    expect(firstFile).toBeGreaterThan(3);
    expect(lines[1].msg).toContain(
      `discarding what the older ${join(dir, "worker-1.jsonl")}.1 held (${firstFile} records)`,
    );
    for (const f of ["worker-1.jsonl", "worker-1.jsonl.1"])
      expect(statSync(join(dir, f)).size).toBeLessThanOrEqual(4000);
    const kept = ["worker-1.jsonl", "worker-1.jsonl.1"].map(
      (f) => readFileSync(join(dir, f), "utf8").trim().split("\n").length,
    );
    expect(kept[0] + kept[1] + firstFile).toBe(written);
    expect(dl.written).toBe(written);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
