#!/usr/bin/env node
// Load generator (a child process of bench/e2e.mjs, driven over IPC): frames an input once,
// cuts it into pre-built chunks of whole frames and writes them to one TCP source over
// C connections, as fast as TCP accepts (backpressure) or at a fixed rate. With a stamp spec it
// copies each chunk before writing and stamps every frame with the send time (bench/lib/clock.mjs).
//
// config (JSON in argv[2]): { host, port, connections, input, rate, stamp, epoch, batchBytes }
//   input: { kind: 'lines', file } | { kind: 'records', file, recordSize } | { kind: 'fixed', frameBytes }
//   rate: messages/s in total, 0 = unlimited        stamp: null | { offset, type: 'f64ns'|'u32us' }
// IPC: {op:'start'} -> connects and starts writing, replies {op:'start'}; {op:'snap'} -> {op:'snap', sent, bytes};
//      {op:'stop'} -> stops, replies {op:'stop', sent, bytes} and exits.
import net from "node:net";
import { readFileSync } from "node:fs";
import { frameLines, frameRecords } from "../../dist/cli/send.js";
import { parseLengthFormat } from "../../dist/core/struct.js";
import { setEpoch, nowNs, STAMPS } from "../lib/clock.mjs";

const cfg = JSON.parse(process.argv[2]);
setEpoch(cfg.epoch ?? "0");
const LF = parseLengthFormat(">I");

function buildFrames(input) {
  if (input.kind === "lines") return frameLines(readFileSync(input.file), LF);
  if (input.kind === "records") return frameRecords(readFileSync(input.file), input.recordSize, LF, false);
  // fixed: synthetic frames of frameBytes (header included), payload bytes 0..n-1
  const n = 16384,
    size = input.frameBytes;
  const buf = Buffer.alloc(n * size);
  const offsets = new Float64Array(n + 1);
  for (let i = 0; i <= n; i++) offsets[i] = i * size;
  for (let i = 0; i < n; i++) {
    buf.writeUInt32BE(size - 4, i * size);
    for (let j = 4; j < size; j++) buf[i * size + j] = (i + j) & 0xff;
  }
  return { buf, offsets, count: n };
}

/** Pre-built chunks of whole frames, `perChunk` frames or `batchBytes` bytes each. */
function buildChunks(frames, perChunk, batchBytes) {
  const chunks = [];
  const { offsets, count } = frames;
  for (let i = 0; i < count; ) {
    let j = i + 1;
    while (j < count && j - i < perChunk && offsets[j + 1] - offsets[i] <= batchBytes) j++;
    chunks.push({
      buf: frames.buf.subarray(offsets[i], offsets[j]),
      count: j - i,
      stride: offsets[i + 1] - offsets[i],
    });
    i = j;
  }
  return chunks;
}

const frames = buildFrames(cfg.input);
const rate = cfg.rate || 0;
// at a fixed rate, chunks of ~0.5 ms of traffic keep the pacing smooth
const perChunk = rate ? Math.max(1, Math.min(4096, Math.round(rate / 2000))) : Infinity;
const chunks = buildChunks(frames, perChunk, cfg.batchBytes ?? 65536);
const stamp = cfg.stamp ? STAMPS[cfg.stamp.type] : null;
if (
  stamp &&
  frames.count > 1 &&
  frames.offsets[frames.count] !== frames.count * (frames.offsets[1] - frames.offsets[0])
) {
  throw new Error("latency stamps need frames of one size");
}

let next = 0;
let sent = 0;
let bytes = 0;
let stopped = false;

function take() {
  const c = chunks[next];
  next = next + 1 === chunks.length ? 0 : next + 1;
  sent += c.count;
  bytes += c.buf.length;
  if (!stamp) return c.buf;
  const b = Buffer.from(c.buf); // a copy: the socket may still hold the previous one
  const t = nowNs();
  for (let o = cfg.stamp.offset; o < b.length; o += c.stride) stamp.write(b, o, t);
  return b;
}

function connect() {
  const deadline = Date.now() + 30000;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(cfg.port, cfg.host);
      s.setNoDelay(true);
      s.once("connect", () => {
        s.off("error", retry);
        s.on("error", fail);
        resolve(s);
      });
      const retry = (e) => {
        s.destroy();
        if (Date.now() > deadline) reject(e);
        else setTimeout(attempt, 50);
      };
      s.once("error", retry);
    };
    attempt();
  });
}

function fail(e) {
  if (stopped) return;
  process.send?.({ op: "error", message: `loadgen ${cfg.host}:${cfg.port}: ${e.message}` });
  process.exit(1);
}

async function pump(sock) {
  while (!stopped) {
    if (!sock.write(take())) await new Promise((r) => sock.once("drain", r));
  }
}

function paced(socks) {
  const t0 = performance.now();
  const startSent = sent;
  const blocked = new Set();
  let k = 0;
  const tick = () => {
    if (stopped) return;
    const owed = Math.floor((rate * (performance.now() - t0)) / 1000) - (sent - startSent);
    let budget = owed;
    for (let tries = 0; budget >= chunks[next].count && tries < socks.length * 64; ) {
      const s = socks[k++ % socks.length];
      if (blocked.has(s)) {
        tries++;
        continue;
      }
      budget -= chunks[next].count;
      if (!s.write(take())) {
        blocked.add(s);
        s.once("drain", () => blocked.delete(s));
      }
    }
    setTimeout(tick, 1);
  };
  tick();
}

let socks = [];
process.on("message", async (m) => {
  if (m.op === "start") {
    try {
      socks = await Promise.all(Array.from({ length: cfg.connections }, connect));
    } catch (e) {
      fail(e);
    }
    process.send({ op: "start" });
    if (rate) paced(socks);
    else for (const s of socks) pump(s).catch(fail);
  } else if (m.op === "snap") {
    process.send({ op: "snap", sent, bytes, t: nowNs() });
  } else if (m.op === "stop") {
    stopped = true;
    for (const s of socks) s.destroy();
    process.send({ op: "stop", sent, bytes }, () => process.exit(0));
  }
});
process.on("disconnect", () => process.exit(0));
