#!/usr/bin/env node
// Two builds of the step runner (src/runtime/executor.ts) compared in one process: like
// executor.bench.mjs (a worker's step runner fed the scenarios' runs in one thread, CPU ns per
// input message), but the rounds of build A and build B alternate (A B B A A B ...), so that both
// see the same load from other processes. For before/after comparisons on a busy machine, where
// two benchmark runs minutes apart are not comparable. Both executors run the same plan and the
// same application module (loaded once, by build A's loader).
//
//   node bench/executor-ab.mjs DIST_A DIST_B [--scenario word_count,alphabet] [--rounds 12] [--seconds 0.5]
//   e.g. git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
//        node bench/executor-ab.mjs /tmp/before/dist dist
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SCENARIOS } from "./scenarios/index.mjs";
import { ROOT } from "./scenarios/data.mjs";
import { sourceRunsOf } from "./lib/source-runs.mjs";
import { readFileSync } from "node:fs";

const argv = process.argv.slice(2);
const val = (f, d) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : d;
};
const dists = argv.slice(0, 2).map((d) => pathToFileURL(`${resolve(d)}/`).href);
if (dists.length < 2 || dists.some((d) => d.includes("--"))) {
  console.error("usage: node bench/executor-ab.mjs DIST_A DIST_B [--scenario S] [--rounds N] [--seconds S]");
  process.exit(2);
}
const names = val("--scenario", "passthrough,word_count,alphabet,market_spread").split(",");
const rounds = Number(val("--rounds", "12"));
const seconds = Number(val("--seconds", "0.5"));
const [A] = dists;
const { loadAppModule, moduleUrl, setupApplication, userModules } = await import(`${A}runtime/loader.js`);
const { compilePlan } = await import(`${A}topology/plan.js`);
const { createSerde } = await import(`${A}transport/serde.js`);
const { SOURCE_FRAMED, tag } = await import(`${A}transport/tags.js`);
const executors = await Promise.all(dists.map(async (d) => (await import(`${d}runtime/executor.js`)).Executor));

const sourceRuns = await sourceRunsOf(A);

const stats = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return { min: s[0], median: s[s.length >> 1] };
};

for (const name of names) {
  const sc = SCENARIOS[name];
  const sources = sc.sources().map((s) => sourceRuns(s.input));
  const url = moduleUrl(new URL(sc.app, `file://${ROOT}/`).pathname);
  const mod = await loadAppModule(url);
  const args = ["--in", sources.map((_, i) => `127.0.0.1:${i + 1}`).join(","), "--out", "127.0.0.1:9"];
  const variants = [];
  for (const Executor of executors) {
    const plan = compilePlan(setupApplication(mod, args, url), 1);
    const serde = createSerde(
      mod,
      plan.states.map((s) => s.spec.stateClass),
      await userModules(),
    );
    const copy = Buffer.allocUnsafe(1 << 20);
    const sink = { buffer: copy, reserve: () => -1, send: (_t, src, s, e) => copy.set(src.subarray(s, e), 0) };
    const errors = [];
    const ex = new Executor(
      plan,
      0,
      serde,
      [null],
      plan.sinks.map(() => sink),
      (where, err) => errors.push(`${where}: ${err}`),
    );
    const handler = ex.handler();
    const ring = Buffer.allocUnsafe(1 << 20);
    let i = 0;
    const step = () => {
      let n = 0;
      for (let s = 0; s < sources.length; s++) {
        const r = sources[s][i % sources[s].length];
        ring.set(r.bytes, 0);
        handler(tag(SOURCE_FRAMED, s), ring, 0, r.bytes.length);
        n += r.n;
      }
      ex.flushSinks();
      i++;
      return n;
    };
    variants.push({ step, errors, ns: [] });
  }
  const once = (step, ms) => {
    let msgs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < ms) msgs += step();
    return msgs;
  };
  for (const v of variants) once(v.step, 1000); // warm-up: optimized code
  for (let r = 0; r < rounds; r++) {
    for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
      const c0 = process.cpuUsage();
      const msgs = once(v.step, seconds * 1000);
      const c = process.cpuUsage(c0);
      v.ns.push(((c.user + c.system) * 1000) / msgs);
    }
  }
  for (const v of variants)
    if (v.errors.length) throw new Error(`${name}: ${v.errors.length} errors, first: ${v.errors[0]}`);
  const [a, b] = variants.map((v) => stats(v.ns));
  const load = readFileSync("/proc/loadavg", "utf8").split(" ")[0];
  console.log(
    `${name.padEnd(14)} A ${a.min.toFixed(0).padStart(6)} ns/msg (median ${a.median.toFixed(0)})   ` +
      `B ${b.min.toFixed(0).padStart(6)} ns/msg (median ${b.median.toFixed(0)})   ` +
      `B/A ${(b.min / a.min).toFixed(3)} (medians ${(b.median / a.median).toFixed(3)})   load ${load}`,
  );
}
