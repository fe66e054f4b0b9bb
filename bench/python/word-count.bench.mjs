#!/usr/bin/env node
// Wallaroo 0.5.4's word_count.py under `wallaroo run` on 1 and 2 workers, against the same
// functions in a hand-written CPython single-thread loop over the same sockets
// (cpython_word_count.py, the Machida analogue) and against the TypeScript word count
// (examples/word_count/app.ts). Each system gets the same input, sent as fast as it takes it
// (`wallaroo send --file`); measured: the time from the first message sent until the last
// output line arrives, CPU seconds of the system's process tree over that time, its RSS at
// the end. Results in bench/ANALYSIS.md, "Python applications".
//
//   npm run build && node bench/python/word-count.bench.mjs [--reps 400] [--only py-w1,...]
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, procSample, spawnProc, stop, waitForOutput } from "../lib/procs.mjs";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "bin/wallaroo.js");
const WC = join(ROOT, "test/fixtures/wallaroo-python/word_count");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const reps = Number(arg("--reps", "400"));
const only = arg("--only", "")?.split(",").filter(Boolean);

// The input: word_count's own count_this.txt, repeated.
const lines = readFileSync(join(WC, "count_this.txt"), "utf8").split("\n");
if (lines.at(-1) === "") lines.pop();
const dir = mkdtempSync(join(tmpdir(), "wallaroo-pybench-"));
const input = join(dir, "input.txt");
writeFileSync(input, `${Array.from({ length: reps }, () => lines.join("\n")).join("\n")}\n`);
const messages = lines.length * reps;
// One output line per non-empty word (empty words raise IndexError and are dropped): from the CPython reference.
const ref = spawnSync(
  "python3",
  [
    join(ROOT, "test/helpers/wallaroo_reference.py"),
    "word_count.py",
    "--feed",
    `0:lines:${join(WC, "count_this.txt")}`,
    "--",
    "--in",
    "x:1",
    "--out",
    "x:2",
  ],
  { cwd: WC, maxBuffer: 1 << 26 },
);
const perRep = ref.stdout.toString().split("\n").length - 1;
const expected = perRep * reps;

const SYSTEMS = [
  {
    id: "py-w1",
    label: "word_count.py, engine, 1 worker",
    cmd: [process.execPath, BIN, "run", "word_count.py", "--workers", "1"],
    ready: /running on/,
  },
  {
    id: "py-w2",
    label: "word_count.py, engine, 2 workers",
    cmd: [process.execPath, BIN, "run", "word_count.py", "--workers", "2"],
    ready: /running on/,
  },
  {
    id: "cpython",
    label: "CPython loop, 1 thread",
    cmd: ["python3", join(ROOT, "bench/python/cpython_word_count.py")],
    ready: /^ready$/m,
  },
  {
    id: "ts-w1",
    label: "TypeScript word count, 1 worker",
    cmd: [process.execPath, BIN, "run", join(ROOT, "examples/word_count/app.ts"), "--workers", "1"],
    ready: /running on/,
  },
  {
    id: "ts-w2",
    label: "TypeScript word count, 2 workers",
    cmd: [process.execPath, BIN, "run", join(ROOT, "examples/word_count/app.ts"), "--workers", "2"],
    ready: /running on/,
  },
];

async function measure(sys) {
  let newlines = 0;
  let done = null;
  const finished = new Promise((r) => (done = r));
  const srv = net.createServer((s) =>
    s.on("data", (d) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) newlines++;
      if (newlines >= expected) done(performance.now());
    }),
  );
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const outPort = srv.address().port;
  const inPort = await freePort();
  const [cmd, ...args] = sys.cmd;
  const child = spawnProc(cmd, [...args, "--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${outPort}`], { cwd: WC });
  try {
    await waitForOutput(child, sys.ready, 120_000, sys.id);
    const before = procSample(child.pid);
    const t0 = performance.now();
    const sender = spawnProc(process.execPath, [BIN, "send", "--port", String(inPort), "--file", input]);
    const senderExit = new Promise((r) => sender.once("exit", r));
    const timeout = new Promise((r) => setTimeout(() => r(null), Number(arg("--timeout", "300")) * 1000));
    const t1 = await Promise.race([finished, timeout]);
    const after = procSample(child.pid);
    await senderExit;
    if (t1 === null) return { id: sys.id, error: `timed out with ${newlines}/${expected} lines` };
    const s = (t1 - t0) / 1000;
    return {
      id: sys.id,
      label: sys.label,
      seconds: +s.toFixed(2),
      msgsPerS: Math.round(messages / s),
      wordsPerS: Math.round(expected / s),
      cpuUsPerMsg: +(((after.cpu - before.cpu) / messages) * 1e6).toFixed(1),
      rssMB: Math.round(after.rss / 1048576),
    };
  } finally {
    await stop(child);
    srv.close();
  }
}

console.error(`input: ${messages} lines (${reps} x count_this.txt), ${expected} output lines expected`);
const results = [];
for (const sys of SYSTEMS) {
  if (only.length > 0 && !only.includes(sys.id)) continue;
  const r = await measure(sys);
  console.error(JSON.stringify(r));
  results.push(r);
}
console.log(JSON.stringify({ messages, expected, results }, null, 2));
process.exit(0);
