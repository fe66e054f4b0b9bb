/**
 * What a checkpoint can hold, through the library API on real files: cycles, the
 * structured-clone types and helper-module classes survive a checkpoint and a
 * restart; a Symbol or an instance of an unexported class stops the engine at the
 * next checkpoint with an error naming the state, the key and the field; a state
 * class with #private members is refused at start when resilience is on.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { runApplication } from "../../dist/index.js";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { ROOT as REPO } from "../helpers/engine.js";

const APP = path.join(REPO, "test/fixtures/resil-values.ts");
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-values-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

async function start(
  inPort: number,
  outPort: number,
  opts: { resilienceDir?: string; variant?: string; module?: string } = {},
) {
  return runApplication({
    module: opts.module ?? APP,
    workers: 2,
    statsInterval: 0,
    resilienceDir: opts.resilienceDir,
    checkpointInterval: 0.2,
    args: [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${outPort}`,
      ...(opts.variant ? ["--variant", opts.variant] : []),
    ],
  });
}

async function runOnce(inPort: number, lines: string[], resilienceDir?: string, module?: string): Promise<string[]> {
  const out = await startCollector();
  const app = await start(inPort, out.port, { resilienceDir, module });
  try {
    await sendBytes(inPort, frame(lines));
    return (await out.waitForLines(lines.length, 20_000)).sort();
  } finally {
    await app.stop();
    await out.close();
  }
}

const RICH = (key: string) =>
  `${key} Box saved=1 true true true p+q 2020-02-02T00:00:00.000Z x+y/m bigint 42 ${2n ** 80n} 1,2,3 1.5,-2 -5,7 42 st#3`;

describe("checkpointed values", () => {
  it("cycles, Map, Set, Date, RegExp, bigint, typed arrays and helper-module classes survive a restart", async () => {
    const inPort = await freePort();
    const keys = ["a", "b", "c", "d", "e", "f"];
    expect(
      await runOnce(
        inPort,
        keys.map((k) => `rich:${k}`),
        dir,
      ),
    ).toEqual(keys.map((k) => `${k} ok`));
    // what came back from the store, in both workers
    expect(
      await runOnce(
        inPort,
        keys.map((k) => `show:${k}`),
        dir,
      ),
    ).toEqual(keys.map(RICH));
  }, 60_000);

  it("a checkpoint is read back by the next version of the application, whose classes have other type codes", async () => {
    const inPort = await freePort();
    const keys = ["a", "b", "c"];
    expect(
      await runOnce(
        inPort,
        keys.map((k) => `rich:${k}`),
        dir,
      ),
    ).toEqual(keys.map((k) => `${k} ok`));
    expect(
      await runOnce(
        inPort,
        keys.map((k) => `show:${k}`),
        dir,
        path.join(REPO, "test/fixtures/resil-values-v2.ts"),
      ),
    ).toEqual(keys.map(RICH));
  }, 60_000);

  for (const [kind, field] of [
    [
      "symbol",
      /state "box" key "k1" \(class Box\): cannot serialize field \.items\.deep\.tag: a Symbol \(Symbol\(oops\)\)/,
    ],
    [
      "local",
      /state "box" key "k1" \(class Box\): cannot serialize field \.items\.thing: an instance of class Local, which the engine cannot restore; export class Local from its module/,
    ],
  ] as const) {
    it(`a ${kind} in state stops the engine at the next checkpoint, naming state, key and field`, async () => {
      const inPort = await freePort();
      const out = await startCollector();
      const app = await start(inPort, out.port, { resilienceDir: dir });
      const done = app.done.then(
        () => null,
        (err: Error) => err,
      );
      try {
        await sendBytes(inPort, frame([`${kind}:k1`]));
        const err = await done;
        expect(err?.message).toMatch(/serializing state for a checkpoint: state "box" key "k1" \(class Box\): /);
        expect(err?.message).toMatch(field);
      } finally {
        await app.stop().catch(() => {});
        await out.close();
      }
    }, 60_000);
  }

  it("a state class with #private members is refused at start with resilience, and runs without", async () => {
    const inPort = await freePort();
    const out = await startCollector();
    try {
      await expect(start(inPort, out.port, { resilienceDir: dir, variant: "private" })).rejects.toThrow(
        /state "box": class PrivateBox has private member\(s\) #count, which a checkpoint cannot save .*make them ordinary properties of PrivateBox/,
      );
      const app = await start(inPort, out.port, { variant: "private" });
      await sendBytes(inPort, frame(["x:a", "x:b"]));
      expect((await out.waitForLines(2, 20_000)).sort()).toEqual(["a private", "b private"]);
      await app.stop();
    } finally {
      await out.close();
    }
  }, 60_000);
});
