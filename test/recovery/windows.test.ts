/**
 * Windows with --resilience-dir across kill -9 (real processes, sockets and files): the
 * open windows and their accumulators are in the checkpoint, restored on another worker
 * count, and each event is counted exactly once over both runs; windows that fired before
 * the checkpoint do not fire again.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import { fixture, sleep, startEngine, type Engine, type LogLine } from "../helpers/engine.js";

let dir: string;
const engines: Engine[] = [];
const collectors: Collector[] = [];
afterEach(async () => {
  for (const e of engines) e.kill();
  for (const c of collectors) await c.close();
  engines.length = 0;
  collectors.length = 0;
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

async function run(inPort: number, outPort: number, workers: number, idle: string): Promise<Engine> {
  const e = await startEngine(
    fixture("windows-app.ts"),
    [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${outPort}`,
      "--workers",
      String(workers),
      "--resilience-dir",
      dir,
      "--checkpoint-interval",
      "0.2",
      "--stats-interval",
      "0.2",
      "--idle-timeout",
      idle,
    ],
    { waitRunning: false, env: { WALLAROO_LOG_LEVEL: "info" } },
  );
  engines.push(e);
  await e.waitForLog((l) => /running on/.test(l.msg ?? ""), 20_000);
  return e;
}

const inTotal = (l: LogLine) => ((l.stats as { in?: number[] } | undefined)?.in ?? []).reduce((a, b) => a + b, 0);

it("open windows survive kill -9 and a restart on another worker count; each event counted once", async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-winres-"));
  const out = await startCollector();
  collectors.push(out);
  const inPort = await freePort();
  const keys = ["a", "b", "c", "d", "e"];
  const first = Array.from({ length: 300 }, (_, i) => `${keys[i % 5]} ${i * 10} ${i}`); // event times 0..2990
  const second = Array.from({ length: 100 }, (_, i) => `${keys[i % 5]} ${3000 + i * 10} ${300 + i}`);

  // Run 1: no input goes idle (60 s), so [2000, 3000) stays open; [0, 1000) and [1000, 2000) close.
  const e1 = await run(inPort, out.port, 2, "60");
  await sendBytes(inPort, frame(first));
  await out.waitForLines(2 * keys.length);
  await e1.waitForLog((l) => inTotal(l) === first.length);
  // A checkpoint commits only when an instance changed: once everything was taken and fired,
  // the next commit (every 0.2 s) holds it all, and none follows. Five intervals are ample.
  await sleep(1000);
  expect(e1.lines.some((l) => /^checkpoint \d+ committed/.test(l.msg ?? ""))).toBe(true);
  await e1.kill9();
  expect(out.lines()).toHaveLength(2 * keys.length);

  // Run 2, on 3 workers: the restored [2000, 3000) windows close with the new events, [3000, 4000) by idleness.
  const e2 = await run(inPort, out.port, 3, "0.3");
  await e2.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? ""));
  await sendBytes(inPort, frame(second));
  const lines = await out.waitForLines(4 * keys.length);
  const outs = lines.map((l) => l.split(" "));
  const counted = outs.flatMap((o) => o[3]!.split(",").map(Number)).sort((x, y) => x - y);
  expect(counted).toEqual(Array.from({ length: 400 }, (_, i) => i));
  for (const k of keys) {
    expect(outs.filter((o) => o[0] === k).map((o) => Number(o[2]))).toEqual([1000, 2000, 3000, 4000]);
  }
  expect((await e2.stop()).code).toBe(0);
}, 90_000);
