/**
 * Engine lifecycle end to end (CLI as a child process, real sockets, real
 * threads): every stop ends within --drain-timeout, a thread that dies or hangs
 * stops the engine with its error and a non-zero exit code, user code that throws
 * from a timer or leaves a promise rejected is logged (never a raw crash), the exit
 * code says whether output was lost, SIGHUP drains like SIGTERM, --workers is
 * bounded. Exit codes: 0 ok, 2 usage, 3 engine failed, 4 stopped with loss.
 */
import net from "node:net";
import { availableParallelism } from "node:os";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import {
  BIN,
  fixture,
  ROOT,
  sleep,
  startEngine,
  taggedMessages,
  type Engine,
  type LogLine,
} from "../helpers/engine.js";

const HOSTILE = fixture("hostile-app.ts");
const APP = fixture("e2e-app.ts");
const msgOf = (l: LogLine) => (typeof l.msg === "string" ? l.msg : "");
const errOf = (l: LogLine) => (l.err ?? {}) as { message?: string; stack?: string };

/** Waits for the engine to exit on its own (bounded); null if it did not. */
async function exitWithin(engine: Engine, ms: number) {
  return Promise.race([engine.exited, sleep(ms).then(() => null)]);
}

async function hostile(sinkPort: number, extra: string[] = [], env: Record<string, string> = {}) {
  const inPort = await freePort();
  const engine = await startEngine(
    HOSTILE,
    ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${sinkPort}`, "--workers", "2", ...extra],
    { env },
  );
  return { engine, inPort };
}

describe("stop is bounded by --drain-timeout", () => {
  it("SIGTERM with a receiver that never reads: exits within the drain timeout, code 4, undelivered counted per sink", async () => {
    const sink = await startCollector(0, { keep: false });
    sink.pause();
    const inPort = await freePort();
    const engine = await startEngine(APP, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "2",
      "--mode",
      "passthrough",
      "--ring-bytes",
      "65536",
      "--drain-timeout",
      "3",
    ]);
    const socket = net.connect(inPort, "127.0.0.1");
    socket.on("error", () => {});
    try {
      // Writes until the sender is blocked (no 'drain' for 1.5 s): the engine has read until every
      // buffer on its way is full, and its source holds input that does not fit in its ring
      // (before the fix, a stop waited for that input to fit: forever).
      const chunk = frame(Array.from({ length: 64 }, () => Buffer.alloc(4096, 0x61)));
      const until = Date.now() + 40_000;
      let blocked = false;
      while (!blocked && Date.now() < until) {
        if (!socket.write(chunk)) {
          blocked = !(await Promise.race([
            new Promise<boolean>((r) => socket.once("drain", () => r(true))),
            sleep(1500).then(() => false),
          ]));
        }
      }
      expect(blocked, "the sender never blocked").toBe(true);
      const t0 = Date.now();
      const exit = await engine.stop("SIGTERM", 25_000);
      const took = Date.now() - t0;
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 4, signal: null });
      expect(took).toBeLessThan(20_000); // generous: the bound is 3 s + at most 5 s for the sinks; before the fix it never ended
      const stopped = engine.logs().find((l) => /^stopped; LOST/.test(msgOf(l)));
      expect(stopped, engine.stderr().slice(-3000)).toBeDefined();
      const report = stopped!.report as { lost: boolean; undelivered: Record<string, number>; drained: boolean };
      expect(report.lost).toBe(true);
      expect(report.drained).toBe(false);
      const perSink = Object.values(report.undelivered);
      expect(perSink.length).toBe(1);
      expect(perSink[0]).toBeGreaterThan(0);
      expect(engine.stderr()).toMatch(
        /stopped, but lost: .*output\(s\) \(\d+ bytes\) not delivered to sink passthrough/,
      );
      console.log(`stop with a receiver that never reads, --drain-timeout 3: exited after ${took} ms`);
    } finally {
      socket.destroy();
      engine.kill();
      await sink.close();
    }
  }, 60_000);

  it("SIGHUP drains like SIGTERM: everything read arrives, exit 0", async () => {
    const N = 3000;
    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(APP, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "2",
      "--mode",
      "slow",
      "--slow-us",
      "300",
    ]);
    try {
      await sendBytes(inPort, frame(taggedMessages("h", 0, N, 4)));
      await engine.waitForLog((l) => /^connection \S+ closed after \d+ messages$/.test(msgOf(l)));
      const exit = await engine.stop("SIGHUP", 30_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
      expect(engine.stderr()).toContain("SIGHUP: draining");
      expect(sink.lines().length).toBe(N);
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);
});

describe("user code outside any step", () => {
  it("an exception thrown from a timer is logged as an error of the step that scheduled it, with its stack; the engine keeps running, exit 0", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await hostile(sink.port);
    try {
      await sendBytes(inPort, frame(["a", "timer-throw", "b"]));
      const err = await engine.waitForLog((l) => /thrown from a timer of user code/.test(msgOf(l)));
      expect(err.level).toBe(50);
      expect(err.userCode).toBe(true);
      // the step that scheduled the timer is named
      expect(err.where).toBe('a timer scheduled by computation "hostile" of pipeline "hostile"');
      expect(errOf(err).stack).toContain("hostile-app.ts");
      await sendBytes(inPort, frame(["c"]));
      await sink.waitForLines(4);
      const exit = await engine.stop("SIGTERM", 30_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);

  it("an unhandled rejection with --fail-fast stops the engine: exit 3, the user's error with its stack, the reason named", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await hostile(sink.port, ["--fail-fast"]);
    try {
      await sendBytes(inPort, frame(["a", "reject"]));
      const exit = await exitWithin(engine, 20_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
      const fatal = engine.logs().find((l) => l.level === 60);
      expect(fatal, engine.stderr()).toBeDefined();
      expect(fatal!.reason).toBe("unhandled-rejection");
      expect(errOf(fatal!).stack).toContain("hostile-app.ts");
      expect(msgOf(fatal!)).toContain("a promise of user code rejected");
      expect(engine.stderr()).not.toMatch(/node:internal\/process\/promises/); // no raw crash
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);
});

describe("a thread that dies or hangs", () => {
  it("user code calling process.exit(): detected, logged with the caller's stack, exit 3", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await hostile(sink.port);
    try {
      await sendBytes(inPort, frame(["a", "exit"]));
      const exit = await exitWithin(engine, 20_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
      const fatal = engine.logs().find((l) => l.level === 60);
      expect(fatal!.reason).toBe("process-exit");
      expect(errOf(fatal!).stack).toContain("hostile-app.ts");
      expect(msgOf(fatal!)).toContain("process.exit(7)");
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);

  it("a worker stuck in an infinite loop is detected by the heartbeat: exit 3 with the stalled worker named", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await hostile(sink.port, ["--stall-timeout", "2", "--drain-timeout", "3"]);
    try {
      await sendBytes(inPort, frame(["loop"]));
      const exit = await exitWithin(engine, 25_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
      const fatal = engine.logs().find((l) => l.level === 60);
      expect(fatal!.reason).toBe("thread-stalled");
      expect(msgOf(fatal!)).toMatch(/worker \d has not responded for \d+ s/);
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);

  it("a worker out of heap: the engine (not the process) reports it, stops the rest, exit 3", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await hostile(sink.port, [], { WALLAROO_WORKER_HEAP_MB: "48" });
    try {
      await sendBytes(inPort, frame(["oom"]));
      const exit = await exitWithin(engine, 40_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
      const fatal = engine.logs().find((l) => l.level === 60);
      expect(fatal!.reason).toBe("out-of-memory");
      expect(engine.logs().some((l) => msgOf(l) === "stopped" || /^stopped; LOST/.test(msgOf(l)))).toBe(true);
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);
});

describe("--workers bound", () => {
  it("refuses more than 4 per core (exit 2) and warns above one per core", async () => {
    const r = spawnSync(process.execPath, [BIN, "run", HOSTILE, "--workers", "10000"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 20_000,
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--workers 10000 is more than this machine can use: at most \d+/);
    const cores = availableParallelism();
    // The warning needs one worker more than the cores: cheap on a small machine only.
    if (cores > 8) return;
    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(HOSTILE, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      String(cores + 1),
    ]);
    try {
      const warn = engine.logs().find((l) => /workers beyond one per core compete/.test(msgOf(l)));
      expect(warn?.level).toBe(40);
      expect((await engine.stop("SIGTERM", 30_000)).code).toBe(0);
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);
});

/** A fresh checkpoint-store directory and a receiver for `fn`, both gone afterwards. */
async function withStoreAndSink(fn: (dir: string, sink: Collector) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "wallaroo-lifecycle-"));
  const sink = await startCollector();
  try {
    await fn(dir, sink);
  } finally {
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("state and failures (--resilience-dir)", () => {
  it("after a worker failure there is no final checkpoint, and a restart resumes from the last periodic one", async () => {
    await withStoreAndSink(async (dir, sink) => {
      const { engine, inPort } = await hostile(sink.port, [
        "--resilience-dir",
        dir,
        "--checkpoint-interval",
        "0.2",
        "--workers",
        "1",
      ]);
      try {
        await sendBytes(inPort, frame(["a", "b", "c"]));
        await sink.waitForLines(3);
        await engine.waitForLog((l) => /^checkpoint \d+ committed: 1 state instance/.test(msgOf(l)));
        await sendBytes(inPort, frame(["exit"]));
        const exit = await exitWithin(engine, 20_000);
        expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
        expect(engine.stderr()).toContain("no final checkpoint (the engine failed)");
      } finally {
        engine.kill();
      }
      const { engine: again, inPort: inPort2 } = await hostile(sink.port, ["--resilience-dir", dir, "--workers", "1"]);
      try {
        await again.waitForLog((l) => /^restored checkpoint \d+/.test(msgOf(l)), 1000);
        await sendBytes(inPort2, frame(["d"]));
        await sink.waitForLines(4);
        expect(sink.lines()).toEqual(["a #1", "b #2", "c #3", "d #4"]);
        expect((await again.stop("SIGTERM", 30_000)).code).toBe(0);
      } finally {
        again.kill();
      }
    });
  }, 90_000);

  it("state that cannot be serialized for a checkpoint stops the engine with that reason (not --fail-fast), exit 3", async () => {
    await withStoreAndSink(async (dir, sink) => {
      const { engine, inPort } = await hostile(sink.port, ["--resilience-dir", dir, "--checkpoint-interval", "0.2"]);
      try {
        await sendBytes(inPort, frame(["unserializable"]));
        const exit = await exitWithin(engine, 20_000);
        expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
        const fatal = engine.logs().find((l) => l.level === 60)!;
        expect(fatal.reason).toBe("checkpoint-serialization");
        // the message names the state (and its class) whose serialization failed, then the error
        expect(msgOf(fatal)).toMatch(
          /serializing state for a checkpoint: state "total" \(class Total\): this state cannot be read/,
        );
        expect(engine.stderr()).not.toContain("--fail-fast");
      } finally {
        engine.kill();
      }
    });
  }, 60_000);

  it("a final checkpoint that cannot be written (the store's directory refuses the write) exits 4, not 0", async () => {
    await withStoreAndSink(async (dir, sink) => {
      // No periodic checkpoint within the test: only the final one writes.
      const { engine, inPort } = await hostile(sink.port, ["--resilience-dir", dir, "--checkpoint-interval", "3600"]);
      try {
        await sendBytes(inPort, frame(["a", "b"]));
        await sink.waitForLines(2);
        // The store writes MANIFEST.tmp and renames it: a directory in its place makes that write
        // fail (EISDIR), as a full disk would (ENOSPC), even for root.
        mkdirSync(join(dir, "MANIFEST.tmp"));
        const exit = await engine.stop("SIGTERM", 30_000);
        expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 4, signal: null });
        const failed = engine.logs().find((l) => /^final checkpoint failed/.test(msgOf(l)));
        expect(failed?.level).toBe(50);
        expect(engine.stderr()).toMatch(/stopped, but lost: .*the final checkpoint failed/);
      } finally {
        engine.kill();
      }
    });
  }, 60_000);
});

describe("--fail-fast", () => {
  it("names what happened and keeps the user's stack: reason user-code-error, not a flattened string", async () => {
    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(APP, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "2",
      "--mode",
      "faulty",
      "--fail-fast",
    ]);
    try {
      await sendBytes(inPort, frame(["ok 0 k0", "bad-compute 1 k1"]));
      const exit = await exitWithin(engine, 20_000);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 3, signal: null });
      const fatal = engine.logs().find((l) => l.level === 60)!;
      expect(fatal.reason).toBe("user-code-error");
      expect(fatal.where).toBe('computation "faulty compute" of pipeline "faulty"');
      expect(errOf(fatal).stack).toMatch(/computation refuses bad-compute 1 k1\n\s+at .*e2e-app\.ts/);
      // the exit path prints it too
      expect(engine.stderr()).toMatch(/\nError: computation refuses bad-compute 1 k1\n\s+at .*e2e-app\.ts/);
    } finally {
      engine.kill();
      await sink.close();
    }
  }, 60_000);
});
