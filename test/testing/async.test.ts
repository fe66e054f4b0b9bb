/**
 * Async steps in the test driver (the engine's own step runner): pipeInput awaits the
 * Promises computations return; results go on in input order (or as they complete with
 * unordered); a state step runs one call per key at a time; a rejected or timed-out call
 * drops its message alone, with an error; a Promise from a decoder, partition function
 * or encoder is an error that says so. Fixture: test/fixtures/async-app.ts.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { createTestDriver, UserCodeError } from "wallaroo/testing";
import * as wallaroo from "wallaroo";

const APP = fileURLToPath(new URL("../fixtures/async-app.ts", import.meta.url));
const ARGS = ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"];
const KEYS = ["a", "b", "c", "d", "e"];
const input = (n: number) => Array.from({ length: n }, (_, i) => `${i} ${KEYS[i % KEYS.length]}`);
const parse = (b: Buffer) => {
  const [seq, key, n, max] = b.toString("utf8").trim().split(" ");
  return { seq: Number(seq), key, n: Number(n), max: Number(max) };
};

async function run(args: string[], workers: number, lines: string[]) {
  const d = await createTestDriver({ module: APP, args: [...ARGS, ...args], workers });
  try {
    let error: unknown = null;
    try {
      await d.pipeInput("lookups", ...lines);
    } catch (e) {
      error = e;
    }
    return { out: d.readOutput().map(parse), error };
  } finally {
    await d.close();
  }
}

describe("async steps in the test driver", () => {
  for (const workers of [1, 2])
    for (const concurrency of [1, 8, 64])
      it(`keeps input order per key, counts exact, in-flight <= ${concurrency} (${workers} worker(s))`, async () => {
        const { out, error } = await run(["--concurrency", String(concurrency)], workers, input(200));
        expect(error).toBeNull();
        expect(out.length).toBe(200);
        // Per key: in input order, and each count once (a lost update would repeat a count).
        for (const k of KEYS) {
          const mine = out.filter((o) => o.key === k);
          expect(mine.map((o) => o.seq)).toEqual([...mine.map((o) => o.seq)].sort((x, y) => x - y));
          expect(mine.map((o) => o.n)).toEqual(mine.map((_, i) => i + 1));
        }
        // One worker: the whole output in input order (ordered mode).
        if (workers === 1) expect(out.map((o) => o.seq)).toEqual(out.map((_, i) => i));
        // The simulated workers share one thread, and the fixture's counter: the limit is per worker.
        expect(Math.max(...out.map((o) => o.max))).toBeLessThanOrEqual(concurrency * workers);
        if (concurrency > 1) expect(Math.max(...out.map((o) => o.max))).toBeGreaterThan(1);
      });

  it("unordered: every result once, per-key order and counts still exact", async () => {
    const { out, error } = await run(["--concurrency", "16", "--unordered", "--max-delay", "5"], 1, input(200));
    expect(error).toBeNull();
    expect(out.map((o) => o.seq).sort((x, y) => x - y)).toEqual(input(200).map((_, i) => i));
    for (const k of KEYS) {
      const mine = out.filter((o) => o.key === k);
      expect(mine.map((o) => o.n)).toEqual(mine.map((_, i) => i + 1));
    }
  });

  it("a rejected call drops its message alone, as an error of the step", async () => {
    const { out, error } = await run([], 1, ["0 a", "1 fail", "2 b"]);
    expect(out.map((o) => o.seq)).toEqual([0, 2]);
    expect(error).toBeInstanceOf(UserCodeError);
    expect((error as UserCodeError).message).toMatch(/computation "lookup".*lookup refuses 1/s);
  });

  it("a call past its timeout drops its message alone; the others go on", async () => {
    const { out, error } = await run(["--timeout", "50"], 1, ["0 a", "1 hang", "2 b"]);
    expect(out.map((o) => o.seq)).toEqual([0, 2]);
    expect((error as Error).message).toMatch(/did not settle within its timeout of 50 ms/);
  });

  for (const [mode, what] of [
    ["bad-decoder", "a decoder"],
    ["bad-partition", "a partition function"],
    ["bad-encoder", "an encoder"],
  ] as const)
    it(`a Promise from ${what} is an error that says so, never "[object Promise]"`, async () => {
      const { out, error } = await run(["--mode", mode], 1, ["0 a"]);
      expect(out).toEqual([]);
      expect((error as Error).message).toContain(`${what} returned a Promise; only computations may be async`);
    });

  it("a Promise inside a result (an element of a multi computation's array) is an error that says so", async () => {
    const app = new URL("../fixtures/async-multi-app.ts", import.meta.url);
    const d = await createTestDriver({ module: app });
    try {
      await expect(d.pipeInput("words", "a b")).rejects.toThrow(/a Promise inside its result/);
      expect(d.readOutput()).toEqual([]);
    } finally {
      await d.close();
    }
  });

  it("wrapper options are checked at definition", () => {
    expect(() => wallaroo.computation("x", async (v: number) => v, { concurrency: 0 })).toThrow(
      /concurrency must be an integer >= 1/,
    );
    expect(() => wallaroo.computation("x", (v: number) => v, { timeout: -1 })).toThrow(/timeout must be/);
    expect(() => wallaroo.computation("x", (v: number) => v, { ordered: true } as never)).toThrow(
      /unknown option "ordered"/,
    );
  });
});
