#!/usr/bin/env node
// Scaling mode: throughput, CPU per unit and RSS of the engine per worker count, against one
// hand-written thread measured in the same invocation.
//
//   npm run bench -- --scale 1,2,4,8            (writes bench/results/scale.json, re-renders BENCHMARKS.md)
//   node bench/scale.mjs --workers 1,2 [--scenario word_count,alphabet] [--quick] [--json]
//
// The load generators must never be the limit, or the table would measure them: every
// configuration starts with one generator process per 4 workers and source, and is measured
// again with twice the generators while a generator process used more than GEN_BUSY of a core
// (up to MAX_GENERATORS per source). A run that is still generator-bound, or whose receiver
// was busy, is marked so in the table instead of being reported as the engine's figure.
// Worker counts above the machine's cores are left out (they only measure time-sharing).
import os from "node:os";
import { fileURLToPath } from "node:url";
import { measure, PROFILES, fmtM } from "./e2e.mjs";
import { SCENARIOS } from "./scenarios/index.mjs";

/** a helper process this busy (share of one core) is taken to be the bottleneck */
export const GEN_BUSY = 0.85;
const MAX_GENERATORS = 8;

const engine = (scenario, workers) => ({
  id: `engine-w${workers}`,
  kind: "engine",
  workers,
  cmd: ["bin/wallaroo.js", "run", scenario.app],
  extra: ["--workers", String(workers), "--stats-interval", "0"],
});
const handWritten = (scenario) => ({
  id: "hand-written",
  kind: "baseline",
  workers: 1,
  cmd: [`bench/baselines/handwritten-${scenario.name}.mjs`],
  extra: [],
});

/**
 * Measures one system, adding generator processes while one of them is saturated.
 * Returns the last measurement with `generators`, `connections` and `limitedBy` (null when
 * neither the generators nor the receiver were saturated).
 */
async function unbounded(scenario, system, prof, log) {
  const workers = system.workers;
  let generators = Math.max(1, Math.ceil(workers / 4));
  for (;;) {
    // the engine binds each connection to one worker: at least one connection per worker and source
    const connections = Math.max(2, Math.ceil(workers / generators));
    log(`  ${scenario.name} / ${system.id}: ${generators} generator(s) x ${connections} connection(s) per source`);
    const r = await measure(scenario, system, { ...prof, generators, connections }, prof.runs, log);
    if (r.error) return { ...r, generators, connections };
    const genBound = r.genCpuUtilMax > GEN_BUSY;
    if (genBound && generators < MAX_GENERATORS) {
      log(`    a generator used ${(r.genCpuUtilMax * 100).toFixed(0)}% of a core: measuring again with more`);
      generators *= 2;
      continue;
    }
    const limitedBy = genBound ? "generators" : r.receiverCpuUtil > GEN_BUSY ? "receiver" : null;
    return { ...r, generators, connections, limitedBy };
  }
}

function summarize(point, w1, base) {
  return {
    workers: point.workers,
    unitsPerSec: point.unitsPerSec,
    unitsPerSecMin: point.unitsPerSecMin,
    unitsPerSecMax: point.unitsPerSecMax,
    speedup: w1 ? point.unitsPerSec / w1.unitsPerSec : null,
    efficiency: w1 ? point.unitsPerSec / (point.workers * w1.unitsPerSec) : null,
    vsHandWritten: base?.unitsPerSec ? point.unitsPerSec / base.unitsPerSec : null,
    cpuSecPerMUnits: point.cpuSecPerMUnits,
    cpuVsHandWritten: base?.cpuSecPerMUnits ? point.cpuSecPerMUnits / base.cpuSecPerMUnits : null,
    peakRssMB: point.peakRssMB,
    rssPerAddedWorkerMB: w1 && point.workers > 1 ? (point.peakRssMB - w1.peakRssMB) / (point.workers - 1) : null,
    generators: point.generators,
    connections: point.connections,
    genCpuUtilMax: point.genCpuUtilMax,
    receiverCpuUtil: point.receiverCpuUtil,
    limitedBy: point.limitedBy,
  };
}

/**
 * counts: worker counts; returns { cores, counts, skippedCounts, scenarios: { name: { handWritten, points } } }.
 */
export async function runScale({
  counts,
  scenarios = ["word_count", "alphabet", "market_spread", "passthrough"],
  quick = false,
  log = () => {},
}) {
  const cores = os.availableParallelism();
  const usable = counts.filter((n) => n <= cores);
  const skippedCounts = counts.filter((n) => n > cores);
  if (skippedCounts.length) log(`scale: leaving out ${skippedCounts.join(", ")} workers (${cores} cores here)`);
  const prof = quick ? PROFILES.quick : { ...PROFILES.full, runs: 2 };
  const out = { cores, counts: usable, skippedCounts, profile: prof, scenarios: {} };
  for (const name of scenarios) {
    const scenario = SCENARIOS[name];
    if (!scenario) throw new Error(`scale: no scenario ${name} (${Object.keys(SCENARIOS).join(", ")})`);
    log(`== scale ${name}`);
    const base = await unbounded(scenario, handWritten(scenario), prof, log);
    const raw = [];
    for (const n of usable) raw.push({ workers: n, ...(await unbounded(scenario, engine(scenario, n), prof, log)) });
    const w1 = raw.find((p) => p.workers === 1 && !p.error);
    out.scenarios[name] = {
      unit: scenario.unit,
      handWritten: base.error ? { error: base.error } : summarize({ ...base, workers: 1 }, null, null),
      points: raw.map((p) =>
        p.error ? { workers: p.workers, error: p.error } : summarize(p, w1, base.error ? null : base),
      ),
    };
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const val = (f) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const counts = (val("--workers") ?? "1,2").split(",").map(Number);
  const log = (s) => process.stderr.write(s + "\n");
  const res = await runScale({
    counts,
    scenarios: val("--scenario")?.split(","),
    quick: argv.includes("--quick"),
    log,
  });
  if (argv.includes("--json")) process.stdout.write(JSON.stringify(res, null, 2) + "\n");
  else {
    for (const [name, s] of Object.entries(res.scenarios)) {
      log(`${name}: hand-written ${s.handWritten.error ?? fmtM(s.handWritten.unitsPerSec)}`);
      for (const p of s.points)
        log(
          `  w${p.workers}: ${p.error ?? `${fmtM(p.unitsPerSec)} ${s.unit}/s, efficiency ${(p.efficiency * 100).toFixed(0)}%, ${p.cpuSecPerMUnits.toFixed(2)} cpu-s/M${p.limitedBy ? ` (limited by the ${p.limitedBy})` : ""}`}`,
        );
    }
  }
  process.exit(0);
}
