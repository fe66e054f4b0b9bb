/**
 * A few hundred thousand lines of examples/word_count/gen.mjs text through the
 * word_count example on two workers (CLI child process, `wallaroo send` child
 * process): the last count of every word equals the count computed here, and
 * every word's outputs arrive with the counts 1, 2, ..., n in that order.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { freePort, startCollector } from "../helpers/net.js";
import { example, send, sleep, startEngine } from "../helpers/engine.js";
import { words } from "../../examples/word_count/reference.js";

const LINES = 200_000;
const dir = mkdtempSync(join(tmpdir(), "wallaroo-wc-large-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it(`word_count: ${LINES} lines on 2 workers, every count exact and in order`, async () => {
  const file = join(dir, "words.txt");
  execFileSync(process.execPath, [
    example("word_count", "gen.mjs"),
    "--lines",
    String(LINES),
    "--seed",
    "7",
    "--out",
    file,
  ]);
  const text = readFileSync(file, "utf8");
  const inputLines = text.split("\n");
  if (inputLines[inputLines.length - 1] === "") inputLines.pop();
  expect(inputLines.length).toBe(LINES);
  const want = new Map<string, number>();
  let total = 0;
  for (const line of inputLines)
    for (const w of words(line)) {
      want.set(w, (want.get(w) ?? 0) + 1);
      total++;
    }

  const sink = await startCollector();
  const inPort = await freePort();
  const engine = await startEngine(example("word_count"), [
    "--in",
    `127.0.0.1:${inPort}`,
    "--out",
    `127.0.0.1:${sink.port}`,
    "--workers",
    "2",
  ]);
  try {
    const s = await send(["--port", String(inPort), "--file", file]);
    expect(s.code, s.stderr).toBe(0);
    await sink.waitForLines(total, 60_000);
    await sleep(200);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });

    const out = sink.bytes().toString("utf8");
    expect(out.endsWith("\n")).toBe(true);
    const last = new Map<string, number>();
    const problems: string[] = [];
    let n = 0;
    for (let start = 0; start < out.length; ) {
      const end = out.indexOf("\n", start);
      const line = out.slice(start, end);
      start = end + 1;
      n++;
      const sep = line.lastIndexOf(" => ");
      const word = line.slice(0, sep);
      const count = Number(line.slice(sep + 4));
      const prev = last.get(word) ?? 0;
      if (count !== prev + 1 && problems.length < 10) problems.push(`${JSON.stringify(word)}: ${count} after ${prev}`);
      last.set(word, count);
    }
    expect(problems).toEqual([]);
    expect(n).toBe(total);
    expect(last.size).toBe(want.size);
    const wrong = [...want].filter(([w, c]) => last.get(w) !== c).slice(0, 10);
    expect(wrong).toEqual([]);
  } finally {
    engine.kill();
    await sink.close();
  }
}, 120_000);
