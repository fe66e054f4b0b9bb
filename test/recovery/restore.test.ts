/**
 * What a checkpoint holds, through the library API (runApplication, stop, run
 * again on the same directory): a toStateful instance with a Map inside comes
 * back with its prototype and its Map; instances whose computation returned
 * saveState = false are not saved; with resilience off nothing is written.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runApplication } from "../../dist/index.js";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { ROOT as REPO } from "../helpers/engine.js";

const APP = path.join(REPO, "test/fixtures/resil-mixed.ts");
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-restore-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function runOnce(inPort: number, outPort: number, lines: string[], resilienceDir?: string): Promise<string[]> {
  const out = await startCollector(outPort);
  const app = await runApplication({
    module: APP,
    workers: 2,
    statsInterval: 0,
    resilienceDir,
    checkpointInterval: 0.2,
    args: ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${out.port}`],
  });
  try {
    await sendBytes(inPort, frame(lines));
    // the toStateful total orders them; the "seen" step on two workers may not
    return (await out.waitForLines(lines.length, 20_000)).sort(
      (x, y) => Number(x.split(" ")[1]) - Number(y.split(" ")[1]),
    );
  } finally {
    await app.stop();
    await out.close();
  }
}

describe("restore", () => {
  it("restores saved instances (prototype and Map included) and not the ones saveState = false left out", async () => {
    const inPort = await freePort();
    const outPort = await freePort();
    expect(await runOnce(inPort, outPort, ["a:1", "b:2", "a:3"], dir)).toEqual(["a 1 1", "b 3 1", "a 6 2"]);
    // total continues from 6; "seen" starts again from 0 (never saved)
    expect(await runOnce(inPort, outPort, ["a:10", "c:1"], dir)).toEqual(["a 16 1", "c 17 1"]);
    expect(await runOnce(inPort, outPort, ["b:1"], dir)).toEqual(["b 18 1"]);
  }, 60_000);

  it("writes nothing without a resilience dir", async () => {
    const inPort = await freePort();
    const outPort = await freePort();
    expect(await runOnce(inPort, outPort, ["a:1"])).toEqual(["a 1 1"]);
    expect(await runOnce(inPort, outPort, ["a:1"])).toEqual(["a 1 1"]);
    expect(fs.readdirSync(dir)).toEqual([]);
  }, 60_000);
});
