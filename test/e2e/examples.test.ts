/**
 * Every example through the CLI as a child process (`wallaroo run`), fed by
 * `wallaroo send` (also a child process), its sink output collected on a
 * loopback socket and compared with the example's reference: exactly on one
 * worker, as a multiset plus per-key order on two (see each example's README).
 * Then SIGTERM, and the engine must exit 0 without writing anything more.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { freePort, startCollector, type Collector } from "../helpers/net.js";
import {
  example,
  groupBy,
  lines,
  records,
  send,
  sleep,
  splitFramed,
  startEngine,
  type Engine,
} from "../helpers/engine.js";
import * as wordCount from "../../examples/word_count/reference.js";
import * as alphabet from "../../examples/alphabet/reference.js";
import * as reverse from "../../examples/reverse/reference.js";
import * as celsius from "../../examples/celsius/reference.js";
import * as market from "../../examples/market_spread/reference.js";
import * as sensorWindows from "../../examples/sensor_windows/reference.js";
import * as pageViewSessions from "../../examples/page_view_sessions/reference.js";

const WORKERS = [1, 2];

async function withEngine(
  name: string,
  workers: number,
  extra: string[],
  body: (e: Engine, sink: Collector, inPorts: number[]) => Promise<void>,
  sources = 1,
): Promise<void> {
  const sink = await startCollector();
  const inPorts: number[] = [];
  for (let i = 0; i < sources; i++) inPorts.push(await freePort());
  const engine = await startEngine(example(name), [
    "--in",
    inPorts.map((p) => `127.0.0.1:${p}`).join(","),
    "--out",
    `127.0.0.1:${sink.port}`,
    "--workers",
    String(workers),
    ...extra,
  ]);
  try {
    await body(engine, sink, inPorts);
    const before = sink.bytes().length;
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    // Nothing more arrives after the expected output (no duplicates at shutdown).
    expect(sink.bytes().length).toBe(before);
    expect(engine.stderr()).toMatch(/"msg":"stopped"/);
  } finally {
    engine.kill();
    await sink.close();
  }
}

/** Per-key order: the subsequence of `got` for each key equals that of `want`. */
function expectPerKeyOrder<T>(got: T[], want: T[], key: (t: T) => string, show: (t: T) => string): void {
  const g = groupBy(got, key);
  const w = groupBy(want, key);
  expect([...g.keys()].sort()).toEqual([...w.keys()].sort());
  for (const [k, items] of w) expect(g.get(k)!.map(show), `key ${k}`).toEqual(items.map(show));
}

describe.each(WORKERS)("examples through the CLI on %i worker(s)", (workers) => {
  it("word_count", async () => {
    const input = lines(example("word_count", "data.txt"));
    const want = wordCount.expected(input).map((l) => l.slice(0, -1));
    expect(want.length).toBe(5590);
    await withEngine("word_count", workers, [], async (_e, sink, [port]) => {
      const s = await send(["--port", String(port), "--file", example("word_count", "data.txt")]);
      expect(s.code, s.stderr).toBe(0);
      await sink.waitForLines(want.length);
      await sleep(200);
      const got = sink.lines();
      if (workers === 1) expect(got).toEqual(want);
      else expect([...got].sort()).toEqual([...want].sort());
      const word = (l: string) => l.slice(0, l.lastIndexOf(" => "));
      expectPerKeyOrder(got, want, word, (l) => l);
    });
  });

  it("alphabet (binary, exact bytes)", async () => {
    const input = records(example("alphabet", "votes.bin"), 5);
    const want = alphabet.expected(input);
    expect(Buffer.concat(want)).toEqual(readExpected("alphabet", "expected.bin"));
    await withEngine("alphabet", workers, [], async (_e, sink, [port]) => {
      const s = await send([
        "--port",
        String(port),
        "--binary",
        example("alphabet", "votes.bin"),
        "--record-size",
        "5",
      ]);
      expect(s.code, s.stderr).toBe(0);
      await sink.waitFor((b) => b.length >= want.length * 13);
      await sleep(200);
      const bytes = sink.bytes();
      expect(bytes.length).toBe(want.length * 13);
      if (workers === 1) expect(bytes.equals(Buffer.concat(want))).toBe(true);
      const got = splitFramed(bytes);
      const hex = (b: Buffer) => b.toString("hex");
      expect(got.map(hex).sort()).toEqual(want.map(hex).sort());
      expectPerKeyOrder(got, want, (r) => String.fromCharCode(r[4]), hex);
    });
  });

  it("reverse", async () => {
    const input = lines(example("reverse", "data.txt"));
    const want = reverse.expected(input).map((l) => l.replace(/\n$/, ""));
    expect(want.length).toBe(29);
    await withEngine("reverse", workers, [], async (_e, sink, [port]) => {
      const s = await send(["--port", String(port), "--file", example("reverse", "data.txt")]);
      expect(s.code, s.stderr).toBe(0);
      await sink.waitForLines(want.length);
      await sleep(200);
      const got = sink.lines();
      // `to` after the source runs where the connection's messages are: one worker, input order.
      expect(got).toEqual(want);
      expect(sink.bytes().toString("utf8")).toBe(readExpected("reverse", "expected.txt").toString("utf8"));
    });
  });

  it("celsius", async () => {
    const input = records(example("celsius", "celsius.bin"), 4);
    const want = celsius.expected(input).map((l) => l.replace(/\n$/, ""));
    expect(want.length).toBe(200);
    await withEngine("celsius", workers, [], async (_e, sink, [port]) => {
      const s = await send([
        "--port",
        String(port),
        "--binary",
        example("celsius", "celsius.bin"),
        "--record-size",
        "4",
      ]);
      expect(s.code, s.stderr).toBe(0);
      await sink.waitForLines(want.length);
      await sleep(200);
      const got = sink.lines();
      if (workers === 1) expect(got).toEqual(want);
      else expect([...got].sort()).toEqual([...want].sort());
      expect([...got].sort()).toEqual(
        readExpected("celsius", "expected.txt").toString("utf8").split("\n").filter(Boolean).sort(),
      );
    });
  });

  // The windows examples: the windows their data closes come out; the last ones would close only
  // once the input has been idle (--idle-timeout, set long here so that none does during the test: the
  // test driver tests in examples/ close them with advanceTime), and are counted as open at the stop.
  it.each([
    ["sensor_windows", sensorWindows, 4],
    ["page_view_sessions", pageViewSessions, 6],
  ] as const)("%s (event-time windows closed by the data; the rest open at the stop)", async (name, ref, keys) => {
    const input = lines(example(name, "data.txt"));
    const want = ref.closedBy(input).map((l) => l.replace(/\n$/, ""));
    const open = ref.expected(input).length - want.length;
    expect(open).toBeGreaterThan(0);
    let engine: Engine | null = null;
    await withEngine(name, workers, ["--idle-timeout", "600"], async (e, sink, [port]) => {
      engine = e;
      const s = await send(["--port", String(port), "--file", example(name, "data.txt")]);
      expect(s.code, s.stderr).toBe(0);
      await sink.waitForLines(want.length);
      await sleep(200);
      const got = sink.lines();
      expect([...got].sort()).toEqual([...want].sort());
      expectPerKeyOrder(
        got,
        want,
        (l) => l.slice(0, l.indexOf(" ")),
        (l) => l,
      );
    });
    const stop = (engine as Engine | null)!.lines.find((l) => /still open at the stop/.test(String(l.msg)));
    expect(stop, "the stop reports the windows still open").toBeDefined();
    expect((stop as { keys: number }).keys).toBeLessThanOrEqual(keys);
  });

  it("market_spread (nbbo first, then orders; --zero-timestamps, exact bytes)", async () => {
    const nbbo = records(example("market_spread", "nbbo.bin"), 42);
    const orders = records(example("market_spread", "orders.bin"), 53);
    const want = market.expectedFor(nbbo, orders);
    expect(want.length).toBe(62);
    expect(Buffer.concat(want)).toEqual(readExpected("market_spread", "expected.bin"));
    await withEngine(
      "market_spread",
      workers,
      ["--zero-timestamps", "--stats-interval", "1"],
      async (e, sink, [ordersPort, nbboPort]) => {
        const s1 = await send([
          "--port",
          String(nbboPort),
          "--binary",
          example("market_spread", "nbbo.bin"),
          "--record-size",
          "42",
        ]);
        expect(s1.code, s1.stderr).toBe(0);
        // The market data pipeline has no sink: wait until the engine reports every NBBO message
        // decoded (pipeline 1 of the stats), then a moment more for the state updates behind it.
        await e.waitForLog((l) => (l.stats as { in?: number[] } | undefined)?.in?.[1] === nbbo.length, 15_000);
        await sleep(500);
        const s2 = await send([
          "--port",
          String(ordersPort),
          "--binary",
          example("market_spread", "orders.bin"),
          "--record-size",
          "53",
        ]);
        expect(s2.code, s2.stderr).toBe(0);
        await sink.waitFor((b) => b.length >= want.length * market.RECORD_SIZE);
        await sleep(200);
        const bytes = sink.bytes();
        expect(bytes.length).toBe(want.length * market.RECORD_SIZE);
        if (workers === 1) expect(bytes.equals(Buffer.concat(want))).toBe(true);
        const got = splitFramed(bytes);
        const hex = (b: Buffer) => b.toString("hex");
        expect(got.map(hex).sort()).toEqual(want.map(hex).sort());
        expectPerKeyOrder(got, want, (r) => r.toString("latin1", 15, 19), hex);
      },
      2,
    );
  });
});

function readExpected(name: string, file: string): Buffer {
  return readFileSync(example(name, file));
}
