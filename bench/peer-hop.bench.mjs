#!/usr/bin/env node
// What a worker-to-worker hop costs, measured on one thread so that other processes on the
// machine change little: examples/market_spread's step runners (src/runtime/executor.ts) fed
// the bench's order and NBBO records in runs of whole frames (what a TCP source thread hands
// a worker), their sink output written to memory and dropped. "1 worker": one executor
// runs everything. "2 workers": two executors of a 2-worker plan, each fed every other run
// (a connection per worker), the messages one sends to the other delivered to it after every
// run, as the rings would: about half the messages cross (the symbols are dealt to the
// workers round robin), each crossing costing the sender the hand-over and the owner a
// second decode. CPU time (process.cpuUsage) per message, best of --trials.
//
// usage: npm run build && node bench/peer-hop.bench.mjs [--messages N] [--trials N]
import { fileURLToPath, pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAppModule, setupApplication } from "../dist/runtime/loader.js";
import { compilePlan } from "../dist/topology/plan.js";
import { createSerde } from "../dist/transport/serde.js";
import { Executor } from "../dist/runtime/executor.js";
import { MemoryOutbox } from "../dist/engine/outbox.js";
import * as tags from "../dist/transport/tags.js";
const { SOURCE_FRAMED, tag, kindOf } = tags;
import { generate } from "./scenarios/data.mjs";
import { DATA_DIR } from "./scenarios/data.mjs";

const argv = process.argv.slice(2);
const opt = (name, d) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : d;
};
const MESSAGES = opt("--messages", 400_000);
const TRIALS = opt("--trials", 5);
const RUN_BYTES = 64 * 1024;

// the same data the end-to-end bench sends (generated once)
generate(
  "market_spread",
  ["orders-500k.bin", "nbbo-500k.bin"],
  ["--orders", "500000", "--nbbo", "500000", "--reject-every", "10", "--orders-out", 0, "--nbbo-out", 1],
);
/** runs of whole frames (4-byte BE length + record), RUN_BYTES at most */
function runsOf(file, recordSize, limit) {
  const data = readFileSync(join(DATA_DIR, file));
  const n = Math.min(limit, Math.floor(data.length / recordSize));
  const perRun = Math.floor(RUN_BYTES / (recordSize + 4));
  const runs = [];
  for (let i = 0; i < n; i += perRun) {
    const k = Math.min(perRun, n - i);
    const run = Buffer.allocUnsafe(k * (recordSize + 4));
    for (let j = 0; j < k; j++) {
      run.writeUInt32BE(recordSize, j * (recordSize + 4));
      data.copy(run, j * (recordSize + 4) + 4, (i + j) * recordSize, (i + j + 1) * recordSize);
    }
    runs.push({ source: runs.length % 2 === 0 ? 0 : 1, run, count: k });
  }
  return runs;
}
const orders = runsOf("orders-500k.bin", 53, MESSAGES / 2).map((r) => ({ ...r, source: 0 }));
const nbbo = runsOf("nbbo-500k.bin", 42, MESSAGES / 2).map((r) => ({ ...r, source: 1 }));
const runs = [];
for (let i = 0; i < Math.max(orders.length, nbbo.length); i++) {
  if (i < nbbo.length) runs.push(nbbo[i]);
  if (i < orders.length) runs.push(orders[i]);
}
const total = runs.reduce((s, r) => s + r.count, 0);

const appUrl = pathToFileURL(fileURLToPath(new URL("../examples/market_spread/app.ts", import.meta.url))).href;
const mod = await loadAppModule(appUrl);
const args = ["--in", "127.0.0.1:1,127.0.0.1:2", "--out", "127.0.0.1:3"];

function setup(workers) {
  const plan = compilePlan(setupApplication(mod, args, appUrl), workers);
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
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
      for (let p = 0; p < len; p += 8 + bytes.readUInt32LE(off + p + 4)) crossed++;
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

measure(1); // warm-up (JIT)
const one = measure(1);
const two = measure(2);
const out = {
  messages: total,
  crossing,
  nsPerMessage1Worker: Math.round(one),
  nsPerMessage2Workers: Math.round(two),
  nsPerCrossingMessage: Math.round(((two - one) * total) / crossing),
};
console.log(JSON.stringify(out));
