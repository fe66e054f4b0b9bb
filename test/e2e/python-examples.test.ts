/**
 * Wallaroo 0.5.4's own Python examples, vendored unchanged (test/fixtures/wallaroo-python,
 * Apache-2.0), run by `wallaroo run APP.py` on 1 and 2 workers with the example's folder as
 * the working directory (market_spread opens symbols.txt relative to it). Each output is
 * compared with what the same file produces under CPython with the single-threaded
 * reference of the API (test/helpers/wallaroo_reference.py) over the same inputs: as a
 * multiset of records, and each key's records in the reference's order. word_count's
 * empty words raise IndexError in its partition function: those messages alone are
 * dropped, counted as errors, in both.
 */
import { spawnSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { example, fixture, groupBy, send, sleep, splitFramed, startEngine } from "../helpers/engine.js";
import { freePort, startCollector } from "../helpers/net.js";

/** an interpreter per thread starts slowly on a loaded machine (bench/ANALYSIS.md, "Python applications") */
const PY_START_MS = 90_000;

const REFERENCE = fixture("../helpers/wallaroo_reference.py");
const dir = (name: string) => fixture(join("wallaroo-python", name));

interface Feed {
  /** pipeline index (declaration order) */
  pipeline: number;
  /** file relative to the example's folder, or absolute */
  file: string;
  /** how `wallaroo send` sends it, and how the reference reads it */
  kind: "lines" | "framed" | { records: number };
}

interface Case {
  name: string;
  feeds: Feed[];
  sources?: number;
  /** the output records, from the sink's bytes */
  split: (b: Buffer) => string[];
  /** the key whose records must stay in order; null: a stateless app (multiset only) */
  key: ((r: string) => string) | null;
}

const textLines = (b: Buffer) => {
  const ls = b.toString("utf8").split("\n");
  ls.pop();
  return ls;
};
const beforeArrow = (l: string) => l.slice(0, l.lastIndexOf(" => "));
/** market_spread's records, hex, with the timestamp (time.time(), the last 8 bytes) masked */
const marketRecords = (b: Buffer) => splitFramed(b).map((r) => `${r.subarray(0, r.length - 8).toString("hex")}`);

const CASES: Case[] = [
  {
    name: "word_count",
    feeds: [{ pipeline: 0, file: "count_this.txt", kind: "lines" }],
    split: textLines,
    key: beforeArrow,
  },
  {
    name: "word_count_with_dynamic_keys",
    feeds: [{ pipeline: 0, file: "count_this.txt", kind: "lines" }],
    split: textLines,
    key: beforeArrow,
  },
  { name: "alphabet", feeds: [{ pipeline: 0, file: "votes.msg", kind: "framed" }], split: textLines, key: beforeArrow },
  {
    name: "alphabet_partitioned",
    feeds: [{ pipeline: 0, file: "votes.msg", kind: "framed" }],
    split: textLines,
    key: beforeArrow,
  },
  { name: "celsius", feeds: [{ pipeline: 0, file: "celsius.msg", kind: "framed" }], split: textLines, key: null },
  { name: "reverse", feeds: [{ pipeline: 0, file: "words.txt", kind: "lines" }], split: textLines, key: null },
  {
    name: "market_spread",
    sources: 2,
    // NBBO first (it primes every symbol's state; that pipeline has no sink), then the orders
    feeds: [
      { pipeline: 1, file: example("market_spread", "nbbo.bin"), kind: { records: 42 } },
      { pipeline: 0, file: example("market_spread", "orders.bin"), kind: { records: 53 } },
    ],
    split: marketRecords,
    // the symbol: bytes 15..18 of the record (header 4, side 1, account 4, order id 6)
    key: (hex) => hex.slice(30, 38),
  },
];

function reference(c: Case, args: string[]): { out: Buffer; errors: number } {
  const feedArgs = c.feeds.flatMap((f) => [
    "--feed",
    `${f.pipeline}:${typeof f.kind === "string" ? f.kind : `records=${f.kind.records}`}:${f.file}`,
  ]);
  const r = spawnSync("python3", [REFERENCE, `${c.name}.py`, ...feedArgs, "--", ...args], {
    cwd: dir(c.name),
    maxBuffer: 64 * 1024 * 1024,
  });
  const stderr = r.stderr.toString();
  if (r.status !== 0) throw new Error(`the CPython reference failed (${r.status}): ${stderr.slice(-2000)}`);
  return { out: r.stdout, errors: Number(/errors (\d+)\s*$/.exec(stderr)?.[1] ?? "-1") };
}

function sendArgs(f: Feed, port: number, cwd: string): string[] {
  const file = f.file.startsWith("/") ? f.file : join(cwd, f.file);
  if (f.kind === "lines") return ["--port", String(port), "--file", file];
  if (f.kind === "framed") {
    // Giles .msg files: fixed-size frames, header included (alphabet 4+5, celsius 4+4)
    return ["--port", String(port), "--binary", file, "--record-size", String(recordSizeOf(file)), "--pre-framed"];
  }
  return ["--port", String(port), "--binary", file, "--record-size", String(f.kind.records)];
}

function recordSizeOf(file: string): number {
  return /votes\.msg$/.test(file) ? 9 : 8;
}

describe.each([1, 2])("Wallaroo 0.5.4 Python examples, unchanged, on %i worker(s)", (workers) => {
  for (const c of CASES) {
    it(c.name, { timeout: 200_000 }, async () => {
      const sink = await startCollector();
      const inPorts: number[] = [];
      for (let i = 0; i < (c.sources ?? 1); i++) inPorts.push(await freePort());
      const args = ["--in", inPorts.map((p) => `127.0.0.1:${p}`).join(","), "--out", `127.0.0.1:${sink.port}`];
      const want = reference(c, args);
      expect(want.out.length).toBeGreaterThan(0);
      const engine = await startEngine(
        join(dir(c.name), `${c.name}.py`),
        [...args, "--workers", String(workers), "--stats-interval", "1"],
        { cwd: dir(c.name), runningTimeoutMs: PY_START_MS },
      );
      try {
        for (const f of c.feeds) {
          const before = engine.lines.length;
          const s = await send(sendArgs(f, inPorts[f.pipeline], dir(c.name)));
          expect(s.code, s.stderr).toBe(0);
          if (c.feeds.length > 1 && f !== c.feeds[c.feeds.length - 1]) {
            // a pipeline without a sink: wait until the engine reports every message of this feed taken
            const n = statSync(f.file).size / (f.kind as { records: number }).records;
            await engine.waitForLog(
              (l) => (l.stats as { in?: number[] } | undefined)?.in?.[f.pipeline] === n,
              30_000,
              before,
            );
            await sleep(500);
          }
        }
        await sink.waitFor((b) => b.length >= want.out.length, 60_000);
        await sleep(300);
        const got = c.split(sink.bytes());
        const expected = c.split(want.out);
        expect(got.length).toBe(expected.length);
        expect([...got].sort()).toEqual([...expected].sort());
        if (c.key !== null) {
          const g = groupBy(got, c.key);
          for (const [k, items] of groupBy(expected, c.key)) expect(g.get(k), `key ${k}`).toEqual(items);
        }
        if (c.name === "word_count") {
          // the empty words: each raised IndexError in the partition function, was counted and dropped alone
          expect(want.errors).toBe(9);
          const last = await engine.waitForLog(
            (l) => (l.stats as { errors?: number } | undefined)?.errors === 9,
            10_000,
          );
          expect(last).toBeTruthy();
          expect(engine.stderr()).toMatch(/word_count\.py\\", line \d+, in partition/);
          expect(engine.stderr()).toMatch(/IndexError: string index out of range/);
        }
        const exit = await engine.stop("SIGTERM");
        expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
      } finally {
        engine.kill();
        await sink.close();
      }
    });
  }
});
