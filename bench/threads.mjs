#!/usr/bin/env node
// CPU per unit (message, word) of each thread of the engine, from an end-to-end run
// (bench/e2e.mjs's runOnce: receiver, engine, load generators on loopback): utime+stime of
// every task in /proc/PID/task at both ends of the measured window, grouped by the thread's
// name (/proc/PID/task/TID/comm; the engine names its threads "worker N", "source N",
// "sink N", V8 names its GC/compiler helpers "V8Worker"). Ticks are 10 ms, so use windows
// of a few seconds: at 1 M msgs/s a 3 s window resolves ~3 ns per message.
//
//   node bench/threads.mjs [--scenario passthrough] [--system engine-w1] [--runs 3]
//                          [--warmup 1.5] [--window 3] [--rate R] [--root DIR (another build's tree)]
//
// Prints one line per run (ns per unit per thread group, with the load average) and the
// medians, then the medians as JSON on stdout.
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { fileURLToPath } from "node:url";
import { runOnce } from "./e2e.mjs";
import { SCENARIOS, systems } from "./scenarios/index.mjs";

const argv = process.argv.slice(2);
const val = (f, d) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : d;
};
const scenario = SCENARIOS[val("--scenario", "passthrough")];
const base = systems(scenario).find((s) => s.id === val("--system", "engine-w1"));
if (!scenario || !base || base.kind !== "engine") throw new Error("--scenario and an engine --system please");
const root = val("--root", null);
const system = root ? { ...base, cmd: [path.resolve(root, "bin/wallaroo.js"), ...base.cmd.slice(1)] } : base;
const runs = Number(val("--runs", 3));
const warmupS = Number(val("--warmup", 1.5));
const windowS = Number(val("--window", 3));
// --rate R: R messages/s per source (paced) instead of as fast as TCP takes them. Per-message CPU
// depends on the rate reached (batches are larger when busier), so comparing two builds on a
// loaded machine is fairer at a rate both reach.
const rates = val("--rate", null) === null ? [] : scenario.sources().map(() => Number(val("--rate")));

const TICK = 100; // USER_HZ
const children = (pid) => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** seconds of CPU per thread group of `pid` and its descendants */
function threadCpu(pid) {
  const out = {};
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) pids.push(...children(pids[i]));
  for (const p of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      continue;
    }
    for (const t of tids) {
      try {
        const comm = readFileSync(`/proc/${p}/task/${t}/comm`, "utf8").trim();
        const stat = readFileSync(`/proc/${p}/task/${t}/stat`, "utf8");
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        const user = Number(f[11]) / TICK;
        const sys = Number(f[12]) / TICK;
        const cpu = user + sys;
        const group = /^(worker|source|sink) \d+$/.test(comm)
          ? comm.split(" ")[0]
          : comm === "V8Worker"
            ? "gc-helpers"
            : comm === "MainThread"
              ? "main"
              : "other";
        out[group] = (out[group] ?? 0) + cpu;
        out[`${group}.sys`] = (out[`${group}.sys`] ?? 0) + sys;
      } catch {
        /* gone */
      }
    }
  }
  return out;
}

const GROUPS = ["worker", "source", "sink", "gc-helpers", "main", "other"];
const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const log = (s) => process.stderr.write(`${s}\n`);
const results = [];
for (let i = 0; i < runs; i++) {
  const load = os.loadavg()[0];
  const r = await runOnce(scenario, system, { warmupS, windowS, rates, sample: threadCpu });
  if (r.error) {
    log(`run ${i + 1}: FAILED ${r.error}`);
    continue;
  }
  const [a, b] = r.samples;
  const ns = {};
  for (const g of GROUPS) {
    ns[g] = (((b[g] ?? 0) - (a[g] ?? 0)) / r.units) * 1e9;
    ns[`${g}.sys`] = (((b[`${g}.sys`] ?? 0) - (a[`${g}.sys`] ?? 0)) / r.units) * 1e9;
  }
  ns.total = GROUPS.reduce((s, g) => s + ns[g], 0);
  results.push({ ns, load, rate: r.unitsPerSec, peakRssMB: r.peakRssMB });
  log(
    `run ${i + 1}: ${(r.unitsPerSec / 1e6).toFixed(2)} M ${scenario.unit}/s, ns/unit ` +
      GROUPS.map((g) => `${g} ${ns[g].toFixed(0)} (sys ${ns[`${g}.sys`].toFixed(0)})`).join(", ") +
      `, total ${ns.total.toFixed(0)}, peak RSS ${r.peakRssMB.toFixed(0)} MB (load ${load.toFixed(1)})`,
  );
}
if (results.length === 0) process.exit(1);
const med = Object.fromEntries(Object.keys(results[0].ns).map((g) => [g, median(results.map((r) => r.ns[g]))]));
log(
  `median of ${results.length}: ` +
    Object.entries(med)
      .map(([g, v]) => `${g} ${v.toFixed(0)}`)
      .join(", "),
);
process.stdout.write(
  JSON.stringify({
    scenario: scenario.name,
    system: system.id,
    root: root ?? fileURLToPath(new URL("..", import.meta.url)),
    median: med,
    runs: results,
  }) + "\n",
);
process.exit(0);
