#!/usr/bin/env node
// Resilience costs, on loopback with real processes (npm run build first):
//  1. throughput of examples/word_count (TCP, 2 workers, unlimited sender) with resilience off
//     and on (--checkpoint-interval 1), alternating, in the same run;
//  2. the checkpoints taken during the "on" runs: pause (sources paused -> resumed), bytes, instances;
//  3. recovery: bench/apps/keyed_count.ts with N distinct keys (N state instances) checkpointed,
//     then the time a restart takes to read the store and restore them into the workers.
// node bench/resilience.bench.mjs [--quick] [--runs N] [--window S] [--keys N1,N2]   Prints a summary and JSON.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { forkTool, spawnProc, waitForOutput, ask, stop, freePort, procSample } from "./lib/procs.mjs";
import { SCENARIOS } from "./scenarios/index.mjs";
import { ROOT } from "./scenarios/data.mjs";

const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : dflt;
};
const quick = argv.includes("--quick");
const RUNS = Number(opt("runs", quick ? 1 : 3));
const WINDOW_S = Number(opt("window", quick ? 4 : 10));
const WARMUP_S = quick ? 2 : 3;
const KEYS = opt("keys", quick ? "10000,100000" : "10000,100000,1000000")
  .split(",")
  .map(Number);
const HOST = "127.0.0.1";
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tool = (f) => fileURLToPath(new URL(`./tools/${f}`, import.meta.url));

function jsonLines(child, into) {
  let rest = "";
  child.stderr.on("data", (d) => {
    const parts = (rest + d.toString()).split("\n");
    rest = parts.pop();
    for (const p of parts) {
      try {
        into.push(JSON.parse(p));
      } catch {
        /* not JSON */
      }
    }
  });
}

/** One word_count run; resilience on when `dir` is set. Words/s out over the window, checkpoint log lines in it. */
async function wordCountRun(dir, ringBytes) {
  const scenario = SCENARIOS.word_count;
  const [src] = scenario.sources();
  const procs = [];
  try {
    const counter = forkTool(tool("counter.mjs"), [JSON.stringify({ mode: "lines", stamp: null })]);
    procs.push(counter);
    const outPort = await new Promise((r) => counter.once("message", (m) => r(m.port)));
    const inPort = await freePort();
    const extra = [
      ...(dir ? ["--resilience-dir", dir, "--checkpoint-interval", "1"] : []),
      ...(ringBytes ? ["--ring-bytes", String(ringBytes)] : []),
    ];
    const sut = spawnProc(
      process.execPath,
      [
        "bin/wallaroo.js",
        "run",
        scenario.app,
        "--in",
        `${HOST}:${inPort}`,
        "--out",
        `${HOST}:${outPort}`,
        "--workers",
        "2",
        "--stats-interval",
        "0",
        ...extra,
      ],
      { cwd: ROOT, env: { ...process.env, WALLAROO_LOG_LEVEL: "info" } },
    );
    procs.push(sut);
    const lines = [];
    jsonLines(sut, lines);
    await waitForOutput(sut, /running on/, 30000, "engine");
    const gen = forkTool(tool("loadgen.mjs"), [
      JSON.stringify({ host: HOST, port: inPort, connections: 2, input: src.input, rate: 0, stamp: null }),
    ]);
    procs.push(gen);
    await ask(gen, { op: "start" });
    await sleep(WARMUP_S * 1000);
    const a = await ask(counter, { op: "snap" });
    const t0 = performance.now();
    const from = lines.length;
    const cpu0 = procSample(sut.pid).cpu;
    await sleep(WINDOW_S * 1000);
    const b = await ask(counter, { op: "snap" });
    const secs = (performance.now() - t0) / 1000;
    const cpu = procSample(sut.pid).cpu - cpu0;
    const cps = lines.slice(from).filter((l) => /^checkpoint \d+ committed/.test(l.msg ?? ""));
    const abandoned = lines.slice(from).filter((l) => /^checkpoint abandoned/.test(l.msg ?? "")).length;
    return { wordsPerSec: (b.count - a.count) / secs, cpuUtil: cpu / secs, checkpoints: cps, abandoned };
  } finally {
    for (const p of procs.reverse()) await stop(p, 1000);
  }
}

const pct = (xs, p) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN;
};
const median = (xs) => pct(xs, 0.5);

/** Sends N distinct keys to keyed_count with resilience, stops (final checkpoint), restarts and times the restore. */
async function recovery(n) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-bench-recovery-"));
  const procs = [];
  try {
    const counter = forkTool(tool("counter.mjs"), [JSON.stringify({ mode: "lines", stamp: null })]);
    procs.push(counter);
    const outPort = await new Promise((r) => counter.once("message", (m) => r(m.port)));
    const inPort = await freePort();
    const start = () => {
      const p = spawnProc(
        process.execPath,
        [
          "bin/wallaroo.js",
          "run",
          "bench/apps/keyed_count.ts",
          "--in",
          `${HOST}:${inPort}`,
          "--out",
          `${HOST}:${outPort}`,
          "--workers",
          "2",
          "--stats-interval",
          "0",
          "--resilience-dir",
          dir,
          "--checkpoint-interval",
          "1",
        ],
        { cwd: ROOT, env: { ...process.env, WALLAROO_LOG_LEVEL: "info" } },
      );
      const lines = [];
      jsonLines(p, lines);
      return { p, lines };
    };
    const first = start();
    procs.push(first.p);
    await waitForOutput(first.p, /running on/, 30000, "engine");
    const frames = Buffer.concat(
      Array.from({ length: n }, (_, i) => {
        const k = Buffer.from(`key-${i}`);
        const h = Buffer.alloc(4);
        h.writeUInt32BE(k.length);
        return Buffer.concat([h, k]);
      }),
    );
    await new Promise((resolve, reject) => {
      const s = net.connect(inPort, HOST);
      s.on("error", reject);
      s.on("connect", () => s.end(frames, resolve));
    });
    while ((await ask(counter, { op: "snap" })).count < n) await sleep(100);
    await sleep(1500); // a periodic checkpoint under no load
    const t0 = performance.now();
    first.p.kill("SIGTERM");
    await new Promise((r) => first.p.once("exit", r));
    const stopMs = performance.now() - t0;
    const cps = first.lines.filter((l) => /checkpoint \d+ committed/.test(l.msg ?? ""));
    const storeBytes = fs.readdirSync(dir).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
    const t1 = performance.now();
    const second = start();
    procs.push(second.p);
    await waitForOutput(second.p, /running on/, 120000, "engine");
    const startMs = performance.now() - t1;
    const restored = second.lines.find((l) => /^restored checkpoint/.test(l.msg ?? ""));
    const biggest = cps.reduce((m, l) => (l.instances > (m?.instances ?? -1) ? l : m), null);
    return {
      keys: n,
      instancesRestored: restored?.instances,
      restoreMs: restored?.ms,
      restartToRunningMs: startMs,
      stopWithFinalCheckpointMs: stopMs,
      storeBytes,
      biggestCheckpoint: biggest && { instances: biggest.instances, bytes: biggest.bytes, pauseMs: biggest.pauseMs },
    };
  } finally {
    for (const p of procs.reverse()) await stop(p, 1000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const results = {
  machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
  runs: [],
  recovery: [],
};
// The pause of a stop-and-drain checkpoint is the time to process what is buffered in the rings,
// so the "on" configuration is also measured with 256 KiB rings (and "off" with the same rings).
const CONFIGS = [
  [false, 0],
  [true, 0],
  [false, 262144],
  [true, 262144],
];
for (let i = 0; i < RUNS; i++) {
  for (const [on, ringBytes] of CONFIGS) {
    const dir = on ? fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-bench-resil-")) : null;
    const r = await wordCountRun(dir, ringBytes);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    const pauses = r.checkpoints.map((l) => l.pauseMs);
    const row = {
      resilience: on,
      ringBytes: ringBytes || 2097152,
      wordsPerSec: r.wordsPerSec,
      cpuUtil: r.cpuUtil,
      checkpoints: r.checkpoints.length,
      abandoned: r.abandoned,
      pauseMsP50: median(pauses),
      pauseMsMax: pauses.length ? Math.max(...pauses) : NaN,
      bytesPerCheckpoint: median(r.checkpoints.map((l) => l.bytes)),
      instancesPerCheckpoint: median(r.checkpoints.map((l) => l.instances)),
    };
    results.runs.push(row);
    console.error(
      `word_count resilience ${on ? "on " : "off"}, rings ${row.ringBytes / 1024} KiB: ${(r.wordsPerSec / 1e6).toFixed(2)}M words/s` +
        (on
          ? `, ${row.checkpoints} checkpoints, pause p50 ${row.pauseMsP50?.toFixed(1)} ms max ${row.pauseMsMax?.toFixed(1)} ms, ${row.bytesPerCheckpoint} bytes / ${row.instancesPerCheckpoint} instances each, ${row.abandoned} abandoned`
          : ""),
    );
  }
}
for (const n of KEYS) {
  const r = await recovery(n);
  results.recovery.push(r);
  console.error(
    `recovery of ${n} keys: restored ${r.instancesRestored} instances in ${r.restoreMs} ms (restart to running ${r.restartToRunningMs.toFixed(0)} ms), store ${(r.storeBytes / 1e6).toFixed(1)} MB, biggest checkpoint ${JSON.stringify(r.biggestCheckpoint)}`,
  );
}
results.summary = CONFIGS.map(([on, ringBytes]) => {
  const rows = results.runs.filter((r) => r.resilience === on && r.ringBytes === (ringBytes || 2097152));
  const s = {
    resilience: on,
    ringBytes: ringBytes || 2097152,
    wordsPerSec: median(rows.map((r) => r.wordsPerSec)),
    pauseMsP50: median(rows.map((r) => r.pauseMsP50)),
  };
  console.error(
    `median: resilience ${on ? "on " : "off"}, rings ${s.ringBytes / 1024} KiB: ${(s.wordsPerSec / 1e6).toFixed(2)}M words/s${on ? `, checkpoint pause p50 ${s.pauseMsP50.toFixed(0)} ms` : ""}`,
  );
  return s;
});
console.log(JSON.stringify(results, null, 2));
