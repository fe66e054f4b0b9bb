#!/usr/bin/env node
// What a worker-to-worker hop costs, measured on one thread so that other processes on the
// machine change little: a scenario's step runners (src/runtime/executor.ts) fed the bench's
// input in runs of whole frames (<= 64 KiB, what a TCP source thread hands a worker), their
// sink output gathered as in the engine and dropped. "1 worker": one executor runs everything.
// "2 workers": two executors of a 2-worker plan, each fed every other run (a connection per
// worker), the messages one sends to the other delivered to it after every run, as the rings
// would: about half the keyed messages cross (declared keys are dealt to the workers round
// robin), each crossing costing the sender the hand-over and the owner its side of it
// (market_spread, alphabet: a second decode of the raw payload; word_count: the word as
// UTF-8). CPU time (process.cpuUsage) per input message, best of --trials; "per crossing
// message" is the difference spread over the messages that crossed (word_count: words).
//
// usage: npm run build && node bench/peer-hop.bench.mjs [--scenario market_spread|alphabet|word_count] [--messages N] [--trials N]
//   --only 1|2: that configuration alone (to profile it: node --cpu-prof ... --only 2)
import { readFileSync } from "node:fs";
import { loadAppModule, moduleUrl, setupApplication, userModules } from "../dist/runtime/loader.js";
import { compilePlan } from "../dist/topology/plan.js";
import { createSerde } from "../dist/transport/serde.js";
import { Executor } from "../dist/runtime/executor.js";
import { MemoryOutbox } from "../dist/engine/outbox.js";
import { frameLines, frameRecords } from "../dist/cli/send.js";
import { parseLengthFormat } from "../dist/core/struct.js";
import * as tags from "../dist/transport/tags.js";
import { SCENARIOS } from "./scenarios/index.mjs";
import { ROOT } from "./scenarios/data.mjs";
const { SOURCE_FRAMED, tag, kindOf } = tags;

const argv = process.argv.slice(2);
const opt = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : d;
};
const SCENARIO = opt("--scenario", "market_spread");
const MESSAGES = Number(opt("--messages", SCENARIO === "word_count" ? 40_000 : 400_000));
const TRIALS = Number(opt("--trials", 5));
const RUN_BYTES = 64 * 1024;
const LF = parseLengthFormat(">I");

const sc = SCENARIOS[SCENARIO];
if (!sc || sc.name === "passthrough") throw new Error(`--scenario: one of market_spread, alphabet, word_count`);
/** the frames of one source's input (as bench/tools/loadgen.mjs builds them), the first `limit` of them */
function frames(input, limit) {
  const f =
    input.kind === "lines"
      ? frameLines(readFileSync(input.file), LF)
      : frameRecords(readFileSync(input.file), input.recordSize, LF, false);
  return { ...f, count: Math.min(f.count, limit) };
}
/** runs of whole frames of at most RUN_BYTES, each a copy of its own */
function runsOf(f, source) {
  const out = [];
  for (let i = 0; i < f.count; ) {
    let j = i + 1;
    while (j < f.count && f.offsets[j + 1] - f.offsets[i] <= RUN_BYTES) j++;
    out.push({ source, run: Buffer.from(f.buf.subarray(f.offsets[i], f.offsets[j])), count: j - i });
    i = j;
  }
  return out;
}
const inputs = sc.sources().map((s, i) => runsOf(frames(s.input, MESSAGES / sc.sources().length), i));
/** the sources' runs interleaved (market_spread: NBBO first, as before) */
const runs = [];
const order = inputs.length === 2 ? [1, 0] : [0];
for (let i = 0; i < Math.max(...inputs.map((r) => r.length)); i++)
  for (const s of order) if (i < inputs[s].length) runs.push(inputs[s][i]);
const total = runs.reduce((s, r) => s + r.count, 0);

const appUrl = moduleUrl(new URL(sc.app, `file://${ROOT}/`).pathname);
const mod = await loadAppModule(appUrl);
const args = ["--in", inputs.map((_, i) => `127.0.0.1:${i + 1}`).join(","), "--out", "127.0.0.1:9"];
const modules = await userModules();

function setup(workers) {
  const plan = compilePlan(setupApplication(mod, args, appUrl), workers);
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
    modules,
  );
  const peerOut = Array.from({ length: workers }, (_, u) =>
    Array.from({ length: workers }, (_, v) => (u === v ? null : new MemoryOutbox())),
  );
  const sinks = Array.from({ length: workers }, () => new MemoryOutbox());
  const onError = (where, err) => {
    throw new Error(`${where}: ${err}`);
  };
  const ex = Array.from(
    { length: workers },
    (_, w) => new Executor(plan, w, serde, peerOut[w], [sinks[w]], onError, undefined, true),
  );
  let crossed = 0;
  /** counts the messages in a frame for another worker: one, or a batch's entries */
  const counting = (h) => (t, bytes, off, len) => {
    if (kindOf(t) === tags.STEP_BATCH) {
      // [entries' end u32 LE][entries: step id, record length, record][text]
      const end = off + bytes.readUInt32LE(off);
      for (let p = off + 4; p < end; p += 8 + bytes.readUInt32LE(p + 4)) crossed++;
    } else crossed++;
    h(t, bytes, off, len);
  };
  const fromPeer = ex.map((_, v) => ex.map((e, u) => (u === v ? null : counting(ex[v].handler()))));
  const fromSource = ex.map((e) => e.handler());
  const drop = () => {};
  return () => {
    for (let i = 0; i < runs.length; i++) {
      const w = i % workers;
      const r = runs[i];
      fromSource[w](tag(SOURCE_FRAMED, r.source), r.run, 0, r.run.length);
      for (let u = 0; u < workers; u++) {
        ex[u].flushPeers?.();
        for (let v = 0; v < workers; v++) if (peerOut[u][v] !== null) peerOut[u][v].drain(fromPeer[v][u]);
      }
      for (let u = 0; u < workers; u++) {
        ex[u].flushSinks();
        sinks[u].drain(drop);
      }
    }
    return crossed;
  };
}

let crossing = 0;
function measure(workers) {
  let best = Infinity;
  for (let t = 0; t < TRIALS; t++) {
    const pass = setup(workers);
    const c0 = process.cpuUsage();
    crossing = pass();
    const c = process.cpuUsage(c0);
    best = Math.min(best, ((c.user + c.system) * 1000) / total);
  }
  return best;
}

const ONLY = Number(opt("--only", 0));
if (ONLY) {
  // one configuration alone (e.g. under --cpu-prof, to compare the two profiles)
  measure(ONLY);
  console.log(
    JSON.stringify({ scenario: SCENARIO, workers: ONLY, messages: total, nsPerMessage: Math.round(measure(ONLY)) }),
  );
  process.exit(0);
}
measure(1); // warm-up (JIT)
const one = measure(1);
const two = measure(2);
const out = {
  scenario: SCENARIO,
  messages: total,
  crossing,
  nsPerMessage1Worker: Math.round(one),
  nsPerMessage2Workers: Math.round(two),
  nsPerCrossingMessage: Math.round(((two - one) * total) / crossing),
};
console.log(JSON.stringify(out));
