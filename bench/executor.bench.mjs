#!/usr/bin/env node
// The step runner alone (src/runtime/executor.ts): CPU nanoseconds per input message of one
// worker's work on the scenarios' data, without threads, rings or sockets, next to the same
// scenario's hand-written logic (bench/baselines/logic.mjs) run the same way. The source's runs
// (<= 64 KiB of whole frames, as the TCP source hands them over) are copied into a buffer standing
// for the ring and handed to the executor's frame handler; TCP output is gathered as in the engine
// and handed to an outbox that only copies it. CPU time of this one thread (process.cpuUsage), so
// other processes on the machine slow it down less than they do the end-to-end figures; the
// minimum of the rounds is the figure least disturbed by them.
//
//   node bench/executor.bench.mjs [--scenario word_count,alphabet] [--seconds 1] [--rounds 7] [--json]
//   (npm run build first)
import { SCENARIOS } from "./scenarios/index.mjs";
import { ROOT } from "./scenarios/data.mjs";
import { sourceRunsOf } from "./lib/source-runs.mjs";
import * as L from "./baselines/logic.mjs";

const argv = process.argv.slice(2);
const val = (f, d) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : d;
};
const names = val("--scenario", "passthrough,word_count,alphabet,market_spread").split(",");
const seconds = Number(val("--seconds", "1"));
const rounds = Number(val("--rounds", "7"));
const dist = new URL("../dist/", import.meta.url).href;
const { loadAppModule, moduleUrl, setupApplication, userModules } = await import(`${dist}runtime/loader.js`);
const { compilePlan } = await import(`${dist}topology/plan.js`);
const { createSerde } = await import(`${dist}transport/serde.js`);
const { Executor } = await import(`${dist}runtime/executor.js`);
const { SOURCE_FRAMED, tag } = await import(`${dist}transport/tags.js`);

const sourceRuns = await sourceRunsOf(dist);

/** the hand-written logic per source: bytes of whole frames in, output out */
function handWritten(name) {
  const totals = new Map();
  const votes = new Float64Array(256);
  const symbols = new Map();
  return {
    passthrough: [(b, e) => L.passthroughEncode(b, e)],
    // the baseline writes the string to its socket: encoding it is part of the work
    word_count: [(b, e) => Buffer.from(L.countWords(L.splitFrames(b, e, []), totals))],
    alphabet: [(b, e) => L.addVotes(L.decodeVotes(b, e), votes)],
    market_spread: [
      (b, e) => L.checkOrders(L.decodeOrders(b, e), symbols),
      (b, e) => L.applyNbbo(L.decodeNbbo(b, e), symbols),
    ],
    // as bench/baselines/handwritten-windowed_count.mjs: a count per letter (windows close on a timer)
    windowed_count: [
      (b, e) => {
        for (let o = 0; o < e; o += 4 + b.readUInt32BE(o)) votes[b[o + 4]]++;
      },
    ],
  }[name];
}

/** ns of CPU per input message: the minimum and the median of the rounds */
function measure(step) {
  const ms = seconds * 1000;
  const once = (limit) => {
    let msgs = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < limit) msgs += step();
    return msgs;
  };
  once(Math.max(1000, ms)); // warm-up: optimized code
  const ns = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    const msgs = once(ms);
    const c = process.cpuUsage(c0);
    ns.push(((c.user + c.system) * 1000) / msgs);
  }
  ns.sort((a, b) => a - b);
  return { min: ns[0], median: ns[ns.length >> 1] };
}

const results = {};
for (const name of names) {
  const sc = SCENARIOS[name];
  const sources = sc.sources().map((s) => sourceRuns(s.input));
  const url = moduleUrl(new URL(sc.app, `file://${ROOT}/`).pathname);
  const mod = await loadAppModule(url);
  const args = ["--in", sources.map((_, i) => `127.0.0.1:${i + 1}`).join(","), "--out", "127.0.0.1:9"];
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
  const engine = measure(() => {
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
  });
  if (errors.length) throw new Error(`${name}: ${errors.length} errors, first: ${errors[0]}`);
  const hw = handWritten(name);
  let j = 0;
  const hand = measure(() => {
    let n = 0;
    for (let s = 0; s < sources.length; s++) {
      const r = sources[s][j % sources[s].length];
      hw[s](r.bytes, r.bytes.length);
      n += r.n;
    }
    j++;
    return n;
  });
  results[name] = { engineNs: engine, handWrittenNs: hand };
  if (!argv.includes("--json")) {
    console.log(
      `${name.padEnd(14)} executor ${engine.min.toFixed(0).padStart(6)} ns/msg (median ${engine.median.toFixed(0)})   ` +
        `hand-written logic ${hand.min.toFixed(0).padStart(6)} ns/msg (median ${hand.median.toFixed(0)})   ` +
        `ratio ${(engine.min / hand.min).toFixed(2)}x`,
    );
  }
}
if (argv.includes("--json")) console.log(JSON.stringify(results, null, 2));
