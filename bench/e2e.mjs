#!/usr/bin/env node
// End-to-end benchmarks: for one scenario and one system under test (the engine or a
// baseline), start three kinds of OS processes on loopback -- a counting receiver
// (tools/counter.mjs), the system under test, one load generator per source (tools/loadgen.mjs)
// -- send for warmup + window seconds and measure over the window: messages and bytes in (at the
// senders), messages out (at the receiver), CPU seconds and peak RSS of the system under test
// (from /proc), and latency percentiles when the scenario stamps its messages.
//
// Run alone: node bench/e2e.mjs [--quick] [--scenario passthrough] [--system engine-w2] [--rates R1,R2 (msgs/s per source)]
//   (npm run build first). Prints the results as JSON.
import { fileURLToPath } from "node:url";
import { forkTool, spawnProc, waitForOutput, ask, stop, freePort, procSample, lastLines } from "./lib/procs.mjs";
import { newEpoch } from "./lib/clock.mjs";
import { SCENARIOS, systems } from "./scenarios/index.mjs";
import { ROOT } from "./scenarios/data.mjs";

const HOST = "127.0.0.1";
// extra node flags for the system under test, e.g. WR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof"
const NODE_ARGS = process.env.WR_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * One measured run. `rates`: messages/s per source (0 = as fast as TCP accepts).
 * `generators`: load-generator processes per source, each with `connections` connections (the
 * scaling mode adds processes until no generator is the bottleneck; see bench/scale.mjs).
 * Resolves to the figures, or to { error } when something failed (never rejects).
 */
export async function runOnce(
  scenario,
  system,
  { warmupS, windowS, rates = [], connections = 2, generators = 1, sample = null },
) {
  const procs = [];
  try {
    const epoch = newEpoch();
    const sources = scenario.sources();
    const counter = forkTool(fileURLToPath(new URL("./tools/counter.mjs", import.meta.url)), [
      JSON.stringify({ ...scenario.output, epoch }),
    ]);
    procs.push(counter);
    const outPort = await new Promise((resolve, reject) => {
      counter.once("message", (m) => resolve(m.port));
      counter.once("exit", (c) => reject(new Error(`receiver exited (${c}): ${lastLines(counter.tail)}`)));
    });
    const inPorts = await Promise.all(sources.map(() => freePort()));
    const sut = spawnProc(
      process.execPath,
      [
        ...NODE_ARGS,
        ...system.cmd,
        "--in",
        inPorts.map((p) => `${HOST}:${p}`).join(","),
        "--out",
        `${HOST}:${outPort}`,
        ...system.extra,
      ],
      { cwd: ROOT },
    );
    procs.push(sut);
    await waitForOutput(sut, /running on|^ready$/m, 30000, system.id);
    let sutError = null;
    sut.once("exit", (code, sig) => {
      sutError = `${system.id} exited during the run (code ${code}, signal ${sig}): ${lastLines(sut.tail)}`;
    });

    // generator g of source i is loadgens[i * generators + g]; a paced rate is split between them
    const loadgens = sources.flatMap((src, i) =>
      Array.from({ length: generators }, () => {
        const g = forkTool(fileURLToPath(new URL("./tools/loadgen.mjs", import.meta.url)), [
          JSON.stringify({
            host: HOST,
            port: inPorts[i],
            connections,
            input: src.input,
            rate: (rates[i] ?? 0) / generators,
            stamp: src.stamp ?? null,
            epoch,
          }),
        ]);
        g.on("message", (m) => {
          if (m.op === "error") sutError ??= m.message;
        });
        procs.push(g);
        return g;
      }),
    );
    await Promise.all(loadgens.map((g) => ask(g, { op: "start" })));

    const snap = async () => {
      const [gens, out] = await Promise.all([
        Promise.all(loadgens.map((g) => ask(g, { op: "snap" }))),
        ask(counter, { op: "snap" }),
      ]);
      return {
        gens,
        out,
        proc: procSample(sut.pid),
        t: performance.now(),
        genCpu: loadgens.map((g) => procSample(g.pid).cpu),
        counterCpu: procSample(counter.pid).cpu,
        // `sample(pid)`: an extra reading of the system under test at both ends of the window (bench/threads.mjs)
        extra: sample ? sample(sut.pid) : null,
      };
    };
    await sleep(warmupS * 1000);
    const a = await snap();
    if (scenario.output.stamp) await ask(counter, { op: "reset" });
    let peakRss = a.proc.rss;
    const end = performance.now() + windowS * 1000;
    while (performance.now() < end && !sutError) {
      await sleep(Math.min(200, Math.max(0, end - performance.now())));
      peakRss = Math.max(peakRss, procSample(sut.pid).rss);
    }
    if (sutError) throw new Error(sutError);
    const b = await snap();
    const hist = scenario.output.stamp ? await ask(counter, { op: "hist" }) : null;
    if (sutError) throw new Error(sutError);

    const secs = (b.t - a.t) / 1000;
    const perGen = b.gens.map((g, i) => g.sent - a.gens[i].sent);
    const perSource = sources.map((_, i) =>
      perGen.slice(i * generators, (i + 1) * generators).reduce((x, y) => x + y, 0),
    );
    const sentMsgs = b.gens.reduce((s, g, i) => s + g.sent - a.gens[i].sent, 0);
    const sentBytes = b.gens.reduce((s, g, i) => s + g.bytes - a.gens[i].bytes, 0);
    const outMsgs = b.out.count - a.out.count;
    if (outMsgs === 0) throw new Error(`no output arrived at the receiver in the window: ${lastLines(sut.tail)}`);
    // What the senders wrote overstates what was processed by whatever queued up in socket buffers
    // and rings during the window; scenarios whose output tells how much input it took say so.
    const inMsgs = scenario.inFromOut ? scenario.inFromOut(outMsgs, perSource) : sentMsgs;
    const units = scenario.unitFrom === "out" ? outMsgs : inMsgs;
    return {
      seconds: secs,
      inMsgsPerSec: inMsgs / secs,
      sentMsgsPerSec: sentMsgs / secs,
      perSourceMsgsPerSec: perSource.map((n) => (n * inMsgs) / sentMsgs / secs),
      inMBPerSec: (sentBytes * inMsgs) / sentMsgs / secs / 1e6,
      outMsgsPerSec: outMsgs / secs,
      unitsPerSec: units / secs,
      cpuSecPerMUnits: ((b.proc.cpu - a.proc.cpu) / units) * 1e6,
      cpuUtil: (b.proc.cpu - a.proc.cpu) / secs,
      peakRssMB: Math.max(peakRss, b.proc.hwm) / 2 ** 20,
      // share of one core each helper process used over the window: a generator or the receiver near
      // 1.0 may be what limits the run rather than the system under test
      genCpuUtilMax: Math.max(...b.genCpu.map((c, i) => (c - a.genCpu[i]) / secs)),
      receiverCpuUtil: (b.counterCpu - a.counterCpu) / secs,
      units,
      samples: sample ? [a.extra, b.extra] : null,
      latencyUs:
        hist && hist.samples > 0
          ? {
              samples: hist.samples,
              p50: hist.p50 / 1e3,
              p99: hist.p99 / 1e3,
              p999: hist.p999 / 1e3,
              p9999: hist.p9999 / 1e3,
              max: hist.max / 1e3,
            }
          : null,
    };
  } catch (e) {
    return { error: e.message };
  } finally {
    const [counter, sut, ...gens] = procs;
    await Promise.all(gens.map((g) => stop(g, 1000)));
    await stop(sut, NODE_ARGS.length ? 20000 : 1000); // no need to drain (but let a profiler write its file)
    await stop(counter, 1000);
  }
}

const median = (xs) => {
  const s = [...xs].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** `runs` runs of one configuration: the median of every figure, min and max of the throughput. */
export async function measure(scenario, system, opts, runs, log = () => {}) {
  const ok = [];
  const errors = [];
  for (let i = 0; i < runs; i++) {
    const r = await runOnce(scenario, system, opts);
    if (r.error) {
      errors.push(r.error);
      log(`    run ${i + 1}: FAILED ${r.error}`);
    } else {
      ok.push(r);
      log(
        `    run ${i + 1}: ${fmtM(r.unitsPerSec)} ${scenario.unit}/s, ${r.inMBPerSec.toFixed(1)} MB/s in` +
          (r.latencyUs ? `, p50 ${r.latencyUs.p50.toFixed(0)} us p99.9 ${r.latencyUs.p999.toFixed(0)} us` : "") +
          `, ${r.peakRssMB.toFixed(0)} MB, ${r.cpuSecPerMUnits.toFixed(2)} cpu-s/M`,
      );
    }
  }
  if (ok.length === 0) return { runs: 0, error: errors[0] ?? "no run", errors };
  const med = (f) => median(ok.map(f));
  const lat = ok.every((r) => r.latencyUs)
    ? Object.fromEntries(["samples", "p50", "p99", "p999", "p9999", "max"].map((k) => [k, med((r) => r.latencyUs[k])]))
    : null;
  return {
    runs: ok.length,
    errors,
    unitsPerSec: med((r) => r.unitsPerSec),
    unitsPerSecMin: Math.min(...ok.map((r) => r.unitsPerSec)),
    unitsPerSecMax: Math.max(...ok.map((r) => r.unitsPerSec)),
    inMsgsPerSec: med((r) => r.inMsgsPerSec),
    sentMsgsPerSec: med((r) => r.sentMsgsPerSec),
    perSourceMsgsPerSec: ok[0].perSourceMsgsPerSec.map((_, i) => med((r) => r.perSourceMsgsPerSec[i])),
    inMBPerSec: med((r) => r.inMBPerSec),
    outMsgsPerSec: med((r) => r.outMsgsPerSec),
    cpuSecPerMUnits: med((r) => r.cpuSecPerMUnits),
    cpuUtil: med((r) => r.cpuUtil),
    peakRssMB: med((r) => r.peakRssMB),
    genCpuUtilMax: Math.max(...ok.map((r) => r.genCpuUtilMax)),
    receiverCpuUtil: Math.max(...ok.map((r) => r.receiverCpuUtil)),
    latencyUs: lat,
    all: ok,
  };
}

export function fmtM(x) {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0);
}

/** Profiles: how long and how often. */
export const PROFILES = {
  full: { warmupS: 2, windowS: 5, runs: 3 },
  quick: { warmupS: 0.6, windowS: 1.2, runs: 1 },
};

/** Which systems (and half-load runs) a profile measures for a scenario. */
export function plan(scenario, quick) {
  const all = systems(scenario);
  if (!quick) return { systems: all, halfLoad: scenario.output.stamp ? all.map((s) => s.id) : [] };
  const keep = {
    passthrough: ["engine-w2", "hand-written", "piscina"],
    word_count: ["engine-w2", "engine-w2-metrics", "hand-written"],
    alphabet: ["engine-w2"],
    market_spread: ["engine-w2"],
    windowed_count: ["engine-w1", "hand-written"],
  }[scenario.name];
  return { systems: all.filter((s) => keep.includes(s.id)), halfLoad: scenario.output.stamp ? ["engine-w2"] : [] };
}

/** Every configuration of one scenario: full load, then half load (half of each source's measured rate). */
export async function runScenario(scenario, { quick, only, log }) {
  const prof = quick ? PROFILES.quick : PROFILES.full;
  const { systems: syss, halfLoad } = plan(scenario, quick);
  const results = {};
  for (const sys of syss) {
    if (only && !only.includes(sys.id)) continue;
    log(`  ${scenario.name} / ${sys.id}: full load`);
    const full = await measure(scenario, sys, prof, prof.runs, log);
    let half = null;
    if (halfLoad.includes(sys.id) && !full.error) {
      const rates = full.perSourceMsgsPerSec.map((r) => Math.max(1, Math.round(r / 2)));
      log(`  ${scenario.name} / ${sys.id}: half load (${rates.map(fmtM).join(" + ")} msgs/s)`);
      half = { rates, ...(await measure(scenario, sys, { ...prof, rates }, prof.runs, log)) };
    }
    results[sys.id] = { system: sys.id, kind: sys.kind, workers: sys.workers, full, half };
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const val = (f) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  const names = val("--scenario")?.split(",") ?? Object.keys(SCENARIOS);
  const only = val("--system")?.split(",");
  const log = (s) => process.stderr.write(s + "\n");
  const out = {};
  const rates = val("--rates")?.split(",").map(Number);
  if (rates) {
    // one configuration at fixed per-source rates, e.g. --scenario market_spread --system engine-w2 --rates 5000,5000
    const sc = SCENARIOS[names[0]];
    const sys = systems(sc).find((s) => s.id === (only?.[0] ?? "engine-w2"));
    out[names[0]] = await measure(sc, sys, { ...(quick ? PROFILES.quick : PROFILES.full), rates }, 1, log);
  } else {
    for (const n of names) out[n] = await runScenario(SCENARIOS[n], { quick, only, log });
  }
  process.stdout.write(JSON.stringify(out, null, 2) + "\n");
  process.exit(0);
}
