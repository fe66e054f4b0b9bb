#!/usr/bin/env node
/**
 * npm run demo: word count end to end on this machine. Generates text, starts a
 * receiver, runs the engine (`wallaroo run examples/word_count/app.ts`) as its own
 * process, sends the text with `wallaroo send`, waits for every output, then prints
 * the top words, checks every final count against a count made here, and prints
 * the throughput. Options: --lines N (default 200000), --workers N (default: cores).
 */
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { tsImport } from "tsx/esm/api";
import { startReceiver } from "../dist/cli/receive.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const { values } = parseArgs({ options: { lines: { type: "string" }, workers: { type: "string" } } });
const lines = Number(values.lines ?? 200_000);
const workers = Number(values.workers ?? availableParallelism());
const dir = mkdtempSync(join(tmpdir(), "wallaroo-demo-"));
const input = join(dir, "words.txt");
const output = join(dir, "counts.txt");
const say = (s) => process.stdout.write(`${s}\n`);

say(`generating ${lines} lines of text`);
execFileSync(process.execPath, [join(root, "examples/word_count/gen.mjs"), "--lines", String(lines), "--out", input]);
// The exact expected counts, computed single-threaded by the example's reference.
const reference = await tsImport(join(root, "examples/word_count/reference.ts"), import.meta.url);
const expected = reference.finalCounts([readFileSync(input)]);
let totalWords = 0;
for (const n of expected.values()) totalWords += n;

const receiver = await startReceiver({ port: 0, output });
say(`receiver listening on 127.0.0.1:${receiver.port}; ${totalWords} words to count`);
const inPort = 17000 + Math.floor(Math.random() * 2000);
const engine = spawn(
  process.execPath,
  [
    join(root, "bin/wallaroo.js"),
    "run",
    join(root, "examples/word_count/app.ts"),
    "--in",
    `127.0.0.1:${inPort}`,
    "--out",
    `127.0.0.1:${receiver.port}`,
    "--workers",
    String(workers),
    "--stats-interval",
    "2",
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
engine.stderr.on("data", (d) => {
  for (const line of d.toString().split("\n")) {
    const m = /"msg":"([^"]*)"/.exec(line);
    if (m && /level":(40|50|60)|in .*\/s/.test(line)) say(`  engine: ${m[1]}`);
  }
});
say(`engine: wallaroo run examples/word_count/app.ts --workers ${workers}`);

const t0 = performance.now();
const sender = spawn(
  process.execPath,
  [join(root, "bin/wallaroo.js"), "send", "--port", String(inPort), "--file", input, "--no-progress"],
  { stdio: ["ignore", "inherit", "inherit"] },
);
const sent = new Promise((resolve) => sender.on("exit", resolve));
await receiver.until(totalWords);
const secs = (performance.now() - t0) / 1000;
await sent;
engine.kill("SIGTERM");
const engineExit = await new Promise((resolve) => engine.on("exit", resolve));
await receiver.close();

// Final count of each word = its last (largest) running count in the output.
const finalCounts = new Map();
for (const line of readFileSync(output, "utf8").split("\n")) {
  const i = line.lastIndexOf(" => ");
  if (i < 0) continue;
  const w = line.slice(0, i);
  const n = Number(line.slice(i + 4));
  if (n > (finalCounts.get(w) ?? 0)) finalCounts.set(w, n);
}
let mismatches = 0;
for (const [w, n] of expected) if (finalCounts.get(w) !== n) mismatches++;
if (finalCounts.size !== expected.size) mismatches += Math.abs(finalCounts.size - expected.size);

say("\ntop words:");
for (const [w, n] of [...finalCounts].sort((a, b) => b[1] - a[1]).slice(0, 10)) say(`  ${w.padEnd(12)} ${n}`);
say(
  `\n${totalWords} words from ${lines} lines in ${secs.toFixed(2)} s (sender start to last output): ` +
    `${(totalWords / secs / 1e6).toFixed(2)} M words/s, ${(lines / secs / 1e3).toFixed(0)} k lines/s on ${workers} worker(s)`,
);
say(
  mismatches === 0
    ? `every final count is exact (${expected.size} distinct words)`
    : `MISMATCH: ${mismatches} words have a wrong final count`,
);
say(`engine exit code ${engineExit}`);
rmSync(dir, { recursive: true, force: true });
process.exitCode = mismatches === 0 && engineExit === 0 ? 0 : 1;
