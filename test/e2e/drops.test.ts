/**
 * No silent drops (engine as a CLI child process, its pino log read from
 * stderr): a decoder or encoder that returns nothing, one element of a multi
 * computation's output that fails, and --fail-fast with messages after the
 * failing one in the same batch. Every drop is logged with where it happened and
 * counted in the stats' errors; nothing after the failure arrives with --fail-fast.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import { fixture, sleep, startEngine, type Engine, type LogLine } from "../helpers/engine.js";

const msgOf = (l: LogLine) => (typeof l.msg === "string" ? l.msg : "");

describe("user code that returns nothing, or fails for one element of a multi output", () => {
  let sink: Collector;
  let engine: Engine;
  let lines: string[] = [];
  let stats: { in: number[]; out: number[]; errors: number };

  beforeAll(async () => {
    sink = await startCollector();
    const inPort = await freePort();
    engine = await startEngine(fixture("drops-app.ts"), [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "1",
      "--stats-interval",
      "1",
    ]);
    await sendBytes(inPort, frame(["a b", "skip me", "c d! e", "mute f", "g"]));
    await sink.waitFor((b) => b.toString("utf8").includes("g\n")); // the last one
    await sleep(300);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
    lines = sink.lines();
    const last = engine
      .logs()
      .filter((l) => l.stats !== undefined)
      .pop();
    expect(last, engine.stderr().slice(-3000)).toBeDefined();
    stats = last!.stats as typeof stats;
  });

  afterAll(async () => {
    engine?.kill();
    await sink?.close();
  });

  const errorAt = (where: RegExp) =>
    engine.logs().filter((l) => l.level === 50 && typeof l.where === "string" && where.test(l.where));

  it("every output that was not dropped arrives, including the elements after a failing one", () => {
    expect(lines).toEqual(["a", "b", "c", "e", "f", "g"]);
  });

  it("a decoder returning nothing is an error: logged with where, counted, not counted as in", () => {
    const logged = errorAt(/^decoder of pipeline "drops"/);
    expect(logged.length).toBe(1);
    expect(msgOf(logged[0])).toContain("a decoder must return a value, got undefined; the message is dropped");
    expect(stats.in).toEqual([4]);
  });

  it("one element of a multi output failing drops that element only, logged once", () => {
    const logged = errorAt(/^computation "check" of pipeline "drops"/);
    expect(logged.length).toBe(1);
    expect(msgOf(logged[0])).toContain("check refuses d!");
  });

  it("an encoder returning nothing is an error: logged, counted, not counted as out", () => {
    const logged = errorAt(/^encoder of sink drops -> tcp /);
    expect(logged.length).toBe(1);
    expect(msgOf(logged[0])).toContain(
      "an encoder for a TCP sink must return a Buffer, Uint8Array or string, got undefined; the output is dropped",
    );
    expect(stats.out).toEqual([6]);
    expect(stats.errors).toBe(3);
  });
});

describe("--fail-fast", () => {
  // Also covered without the race below (the coordinator may kill the worker before the rest of its
  // batch would have been delivered) by test/runtime/executor.test.ts.
  it("no message after the failing one reaches a sink, not even from the same batch", async () => {
    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(fixture("e2e-app.ts"), [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "1",
      "--mode",
      "faulty",
      "--fail-fast",
    ]);
    try {
      // one write: the worker gets these in one run of messages
      const after = Array.from({ length: 500 }, (_, i) => `ok ${i + 2} k${i % 3}`);
      await sendBytes(inPort, frame(["ok 0 k0", "bad-compute 1 k1", ...after]));
      const exit = await Promise.race([engine.exited, sleep(20_000).then(() => null)]);
      expect(exit, "the engine did not stop on its own").not.toBeNull();
      expect(exit!.code).toBe(3); // EXIT.FAILED
      expect(engine.stderr()).toContain("computation refuses bad-compute 1 k1");
      // what arrived (the engine is gone: nothing more can) is at most the message before the failure
      const got = sink.lines();
      expect(
        got.filter((l) => l !== "ok 0 k0 #1"),
        `arrived after the failure: ${got.slice(0, 5).join(" | ")}`,
      ).toEqual([]);
    } finally {
      engine.kill();
      await sink.close();
    }
  });
});
