#!/usr/bin/env node
// The TCP source and sink I/O threads alone: CPU per message of each, without a worker
// running user code. One process: a sender thread writes 64-byte frames (u32 BE length +
// 60 bytes) over loopback to the real TCP source thread (dist/runtime/io-thread.js, as the
// engine starts it); this thread stands in for the worker and moves each run of frames from
// the source ring into the sink ring unchanged (one copy, as a worker's gather does); the real
// TCP sink thread writes them to a receiver thread that counts bytes. CPU per thread from
// /proc/self/task/*/stat over the window (threads named by role), divided by the messages the
// receiver got in it. Fewer threads than an end-to-end run, so less noise on a loaded machine.
//
//   node bench/io-threads.bench.mjs [--seconds 3] [--runs 3] [--root DIR (another build's tree)]
import { Worker } from "node:worker_threads";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import os from "node:os";
import { fileURLToPath, pathToFileURL } from "node:url";

const argv = process.argv.slice(2);
const val = (f, d) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : d;
};
const root = path.resolve(val("--root", fileURLToPath(new URL("..", import.meta.url))));
const seconds = Number(val("--seconds", 3));
const runs = Number(val("--runs", 3));
const dist = (p) => pathToFileURL(path.join(root, "dist", p)).href;
const { createRing, RingReader } = await import(dist("transport/ring.js"));
const { ChannelReader, ChannelWriter } = await import(dist("transport/channel.js"));
const { RingWriter } = await import(dist("transport/ring.js"));
const { Doorbell, createDoorbell } = await import(dist("transport/doorbell.js"));
const FRAME = 64;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const TICK = 100;
function threadCpu() {
  const out = {};
  for (const t of readdirSync("/proc/self/task")) {
    try {
      const comm = readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim();
      const f = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
      const x = f.slice(f.lastIndexOf(")") + 2).split(" ");
      const g = comm === "V8Worker" ? "gc-helpers" : comm;
      out[g] = (out[g] ?? 0) + (Number(x[11]) + Number(x[12])) / TICK;
    } catch {
      /* gone */
    }
  }
  return out;
}

const threadCode = {
  receiver: `
    const { parentPort } = require("node:worker_threads");
    const net = require("node:net");
    let bytes = 0;
    const srv = net.createServer((s) => s.on("data", (d) => { bytes += d.length; }));
    srv.listen(0, "127.0.0.1", () => parentPort.postMessage({ port: srv.address().port }));
    parentPort.on("message", () => parentPort.postMessage({ bytes }));`,
  sender: `
    const { parentPort, workerData } = require("node:worker_threads");
    const net = require("node:net");
    const f = Buffer.alloc(1024 * ${FRAME});
    for (let i = 0; i < f.length; i += ${FRAME}) f.writeUInt32BE(${FRAME - 4}, i);
    for (let k = 0; k < 2; k++) {
      const s = net.connect(workerData.port, "127.0.0.1", () => {
        const go = () => { while (s.write(f)) {} };
        s.on("drain", go);
        go();
      });
      s.on("error", () => {});
    }`,
};

async function runOnce() {
  const ioThread = new URL(dist("runtime/io-thread.js"));
  const receiver = new Worker(threadCode.receiver, { eval: true, name: "receiver" });
  const outPort = await new Promise((r) => receiver.once("message", (m) => r(m.port)));
  const sourceRing = createRing(2 * 1024 * 1024);
  const sinkRing = createRing(2 * 1024 * 1024);
  const workerBell = createDoorbell();
  const sinkBell = createDoorbell();
  const sink = new Worker(ioThread, {
    name: "sink 0",
    workerData: {
      kind: "tcp-sink",
      sinkId: 0,
      label: "bench",
      host: "127.0.0.1",
      port: outPort,
      rings: [sinkRing],
      bell: sinkBell,
      status: new SharedArrayBuffer(16),
      statusSlot: 1,
    },
  });
  const source = new Worker(ioThread, {
    name: "source 0",
    workerData: {
      kind: "tcp-source",
      sourceId: 0,
      pipeline: "bench",
      host: "127.0.0.1",
      port: 0,
      headerLength: 4,
      lengthFmt: ">I",
      maxFrameBytes: 1 << 20,
      rings: [sourceRing],
      workerBells: [workerBell],
    },
  });
  const inPort = await new Promise((r) =>
    source.on("message", (m) => {
      if (m.type === "listening") r(m.port);
    }),
  );
  // this thread: source ring -> sink ring, run by run (one copy), until told to stop
  const out = new ChannelWriter(new RingWriter(sinkRing, new Doorbell(sinkBell)));
  const reader = new ChannelReader(new RingReader(sourceRing), (tag, bytes, off, len) => {
    out.send(1, bytes, off, off + len);
  });
  const bell = new Doorbell(workerBell);
  let moving = true;
  const move = (async () => {
    while (moving) {
      if (out.blocked) {
        out.commit();
        if (!out.flush()) await out.waitForSpace(10);
        continue;
      }
      const n = reader.read(64);
      out.commit();
      if (n === 0) await bell.sleep(() => !reader.hasData(), 10);
      else await new Promise((r) => setImmediate(r));
    }
  })();
  const sender = new Worker(threadCode.sender, { eval: true, name: "sender", workerData: { port: inPort } });
  const received = () =>
    new Promise((r) => {
      receiver.once("message", (m) => r(m.bytes));
      receiver.postMessage(0);
    });
  await sleep(1000);
  const a = threadCpu();
  const b0 = await received();
  const load = os.loadavg()[0];
  await sleep(seconds * 1000);
  const b = threadCpu();
  const b1 = await received();
  moving = false;
  await sender.terminate();
  await move;
  await Promise.all([source.terminate(), sink.terminate(), receiver.terminate()]);
  const msgs = (b1 - b0) / FRAME;
  const ns = {};
  for (const g of ["source 0", "sink 0", "gc-helpers", "MainThread"])
    ns[g] = (((b[g] ?? 0) - (a[g] ?? 0)) / msgs) * 1e9;
  return { msgsPerSec: msgs / seconds, ns, load };
}

const all = [];
for (let i = 0; i < runs; i++) {
  const r = await runOnce();
  all.push(r);
  process.stderr.write(
    `run ${i + 1}: ${(r.msgsPerSec / 1e6).toFixed(2)} M msgs/s, ns/msg ` +
      Object.entries(r.ns)
        .map(([g, v]) => `${g} ${v.toFixed(0)}`)
        .join(", ") +
      ` (load ${r.load.toFixed(1)})\n`,
  );
}
process.stdout.write(JSON.stringify({ root, runs: all }) + "\n");
process.exit(0);
