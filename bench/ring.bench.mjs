#!/usr/bin/env node
// Inter-thread channel microbenchmark: moves 64 B and 512 B frames from the main thread to a
// worker thread through
//   (a)  our SPSC ring (dist/transport/ring.js), batched commit (256 frames), producer parks on
//        waitForSpace() and consumer on the Doorbell (the engine's real mode)
//   (a') same ring, both sides busy-poll instead of parking (only meaningful on an idle machine
//        with >= 2 free cores; collapses when the two threads are not co-scheduled)
//   (b)  ringbuf.js RingBuffer<Uint8Array>: u32 length prefix + payload staged and pushed in
//        batches of 256 frames, consumer pops into a buffer and parses. The library has no
//        waiting primitive, so both sides park on our Doorbell (same strategy as (a))
//   (c)  postMessage, one message (a Uint8Array) per frame, windowed acks for flow control
//   (d)  postMessage of batches of 256 length-prefixed frames (transferred ArrayBuffer)
// plus single-thread per-frame cost (tinybench) and a doorbell ping-pong latency sweep over
// Doorbell.spinChecks.
//
// usage: npm run build && node bench/ring.bench.mjs [--quick] [--json] [--only=ours,ringbuf,...]
//   --quick  ~10 s instead of ~60 s      --json  print results as JSON on stdout (progress on stderr)
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { Bench } from "tinybench";
import { RingBuffer } from "ringbuf.js";
import { createRing, RingWriter, RingReader } from "../dist/transport/ring.js";
import { createDoorbell, Doorbell } from "../dist/transport/doorbell.js";

const BATCH = 256;
// Every channel gets ~the same buffering: a 4 MiB ring, or a postMessage window of ~4 MiB in flight.
const RING_BYTES = Number(process.env.WR_RING_BYTES ?? 4 * 1024 * 1024);
const CONSUMER_SPIN = Number(process.env.WR_SPIN ?? 0);
const CONSUMER_MAXF = Number(process.env.WR_MAXF ?? 0x7fffffff);
const PARK_TIMEOUT_MS = 1000;

// ---------------------------------------------------------------- consumer (worker) side
function consumerMain() {
  const d = workerData;
  const port = parentPort;
  let count = 0;
  let sum = 0;
  let target = 0;
  let ackEvery = 1;

  if (d.kind === "ours" || d.kind === "ours-spin") {
    const reader = new RingReader(d.ringSab);
    const bell = new Doorbell(d.bellSab);
    bell.spinChecks = CONSUMER_SPIN;
    const bytes = reader.bytes;
    // one bound handler for the whole run: no per-read allocation
    const onFrame = (tag, off, len) => {
      sum = (sum + bytes[off] + len) | 0;
      count++;
    };
    const stillEmpty = () => !reader.hasData();
    port.on("message", async (m) => {
      target = m.n;
      sum = 0;
      count = 0;
      if (d.kind === "ours-spin") {
        while (count < target) reader.read(onFrame);
      } else {
        while (count < target) {
          if (reader.read(onFrame, CONSUMER_MAXF) === 0) await bell.sleep(stillEmpty, PARK_TIMEOUT_MS);
        }
      }
      port.postMessage({ done: true, count, sum });
    });
  } else if (d.kind === "ringbuf") {
    const rb = new RingBuffer(d.ringSab, Uint8Array);
    const bell = new Doorbell(d.bellSab); // we sleep on it when empty
    const spaceBell = new Doorbell(d.spaceBellSab); // the producer sleeps on it when full
    const buf = new Uint8Array(64 * 1024);
    const dv = new DataView(buf.buffer);
    const stillEmpty = () => rb.empty();
    port.on("message", async (m) => {
      target = m.n;
      sum = 0;
      count = 0;
      let have = 0;
      while (count < target) {
        const got = rb.pop(buf, buf.length - have, have);
        if (got === 0) {
          await bell.sleep(stillEmpty, PARK_TIMEOUT_MS);
          continue;
        }
        spaceBell.ring();
        have += got;
        let p = 0;
        while (have - p >= 4) {
          const len = dv.getUint32(p, true);
          if (have - p < 4 + len) break;
          sum = (sum + buf[p + 4] + len) | 0;
          count++;
          p += 4 + len;
        }
        if (p > 0) {
          buf.copyWithin(0, p, have);
          have -= p;
        }
      }
      port.postMessage({ done: true, count, sum });
    });
  } else if (d.kind === "pm1") {
    port.on("message", (m) => {
      if (m instanceof Uint8Array) {
        sum = (sum + m[0] + m.length) | 0;
        count++;
        if (count % ackEvery === 0) port.postMessage({ ack: count });
        if (count === target) port.postMessage({ done: true, count, sum });
      } else {
        target = m.n;
        sum = 0;
        count = 0;
        port.postMessage({ ready: true });
      }
    });
  } else if (d.kind === "pmb") {
    port.on("message", (m) => {
      if (m instanceof Uint8Array) {
        const dv = new DataView(m.buffer, m.byteOffset, m.byteLength);
        let p = 0;
        while (p < m.length) {
          const len = dv.getUint32(p, true);
          sum = (sum + m[p + 4] + len) | 0;
          count++;
          p += 4 + len;
        }
        if (count % ackEvery < BATCH) port.postMessage({ ack: count });
        if (count === target) port.postMessage({ done: true, count, sum });
      } else {
        target = m.n;
        sum = 0;
        count = 0;
        port.postMessage({ ready: true });
      }
    });
  } else if (d.kind === "pingpong") {
    const flags = new Int32Array(d.flagsSab);
    const mine = new Doorbell(d.bellB);
    const peer = new Doorbell(d.bellA);
    port.on("message", async (m) => {
      mine.spinChecks = m.spinChecks;
      mine.syncParkMs = m.syncParkMs;
      let cur = 0;
      const stillEmpty = () => Atomics.load(flags, 0) === cur;
      for (let i = 1; i <= m.cycles; i++) {
        cur = i - 1;
        while (Atomics.load(flags, 0) !== i) await mine.sleep(stillEmpty, PARK_TIMEOUT_MS);
        Atomics.store(flags, 1, i);
        peer.ring();
      }
      port.postMessage({ done: true });
    });
  }
}

// ---------------------------------------------------------------- producer (main) side
function nextMessage(worker, pred) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (pred(m)) {
        worker.off("message", onMsg);
        worker.off("error", reject);
        resolve(m);
      }
    };
    worker.on("message", onMsg);
    worker.once("error", reject);
  });
}

function makePayload(size) {
  const src = new Uint8Array(size); // own ArrayBuffer of exactly `size` bytes (postMessage clones the whole buffer)
  for (let i = 0; i < size; i++) src[i] = (i * 7 + 1) & 255;
  return src;
}

function setupCase(kind, size) {
  const data = { kind, size };
  const window = Math.max(4 * BATCH, Math.floor(RING_BYTES / (4 + size) / BATCH) * BATCH);
  const ctx = {
    kind,
    size,
    src: makePayload(size),
    window,
    ackEvery: Math.max(BATCH, Math.floor(window / 8 / BATCH) * BATCH),
  };
  if (kind === "ours" || kind === "ours-spin") {
    data.ringSab = createRing(RING_BYTES);
    data.bellSab = createDoorbell();
    ctx.writer = new RingWriter(data.ringSab, new Doorbell(data.bellSab));
  } else if (kind === "ringbuf") {
    data.ringSab = RingBuffer.getStorageForCapacity(RING_BYTES, Uint8Array);
    data.bellSab = createDoorbell();
    data.spaceBellSab = createDoorbell();
    ctx.rb = new RingBuffer(data.ringSab, Uint8Array);
    ctx.bell = new Doorbell(data.bellSab);
    ctx.spaceBell = new Doorbell(data.spaceBellSab);
    ctx.stage = new Uint8Array(BATCH * (4 + size));
    ctx.stageDv = new DataView(ctx.stage.buffer);
    ctx.stageFull = ctx.stage; // exactly BATCH frames long
  }
  ctx.worker = new Worker(new URL(import.meta.url), { workerData: data });
  return ctx;
}

async function produceOurs(ctx, n, spin) {
  const w = ctx.writer;
  const src = ctx.src;
  let i = 0;
  while (i < n) {
    const end = Math.min(n, i + BATCH);
    for (; i < end; i++) {
      if (!w.tryWrite(1, src)) break;
    }
    w.commit();
    if (i < end) {
      if (spin)
        while (!w.tryWrite(1, src)); // busy-poll for space
      else {
        await w.waitForSpace(PARK_TIMEOUT_MS);
        continue;
      }
      i++;
    }
  }
  w.commit();
}

async function produceRingbuf(ctx, n) {
  const { rb, src, stage, stageDv, size, bell, spaceBell } = ctx;
  let need = 0;
  const stillFull = () => rb.availableWrite() < need;
  const frame = 4 + size;
  let i = 0;
  while (i < n) {
    const k = Math.min(BATCH, n - i);
    let p = 0;
    for (let j = 0; j < k; j++) {
      stageDv.setUint32(p, size, true);
      stage.set(src, p + 4);
      p += frame;
    }
    // Wait until the whole batch fits, then push it as one exact-length array: that is the
    // library's TypedArray#set fast path (it copies element by element for partial/offset pushes).
    const batch = k === BATCH ? ctx.stageFull : stage.subarray(0, p);
    need = p;
    while (rb.availableWrite() < p) await spaceBell.sleep(stillFull, PARK_TIMEOUT_MS);
    const wrote = rb.push(batch);
    if (wrote !== p) throw new Error(`ringbuf.js short push ${wrote} of ${p}`);
    bell.ring();
    i += k;
  }
}

async function producePm1(ctx, n) {
  const { worker, src, window: WINDOW } = ctx;
  let acked = 0;
  const onAck = (m) => {
    if (m.ack !== undefined) acked = m.ack;
  };
  worker.on("message", onAck);
  try {
    for (let i = 0; i < n; i++) {
      if (i - acked >= WINDOW) await nextMessage(worker, (m) => m.ack !== undefined && i - m.ack < WINDOW);
      worker.postMessage(src);
    }
  } finally {
    worker.off("message", onAck);
  }
}

async function producePmb(ctx, n) {
  const { worker, src, size, window: WINDOW } = ctx;
  const frame = 4 + size;
  let acked = 0;
  const onAck = (m) => {
    if (m.ack !== undefined) acked = m.ack;
  };
  worker.on("message", onAck);
  try {
    for (let i = 0; i < n; ) {
      if (i - acked >= WINDOW) await nextMessage(worker, (m) => m.ack !== undefined && i - m.ack < WINDOW);
      const k = Math.min(BATCH, n - i);
      const buf = new Uint8Array(k * frame);
      const dv = new DataView(buf.buffer);
      for (let j = 0, p = 0; j < k; j++, p += frame) {
        dv.setUint32(p, size, true);
        buf.set(src, p + 4);
      }
      worker.postMessage(buf, [buf.buffer]);
      i += k;
    }
  } finally {
    worker.off("message", onAck);
  }
}

async function trial(ctx, n) {
  const { worker, kind } = ctx;
  const done = nextMessage(worker, (m) => m.done === true);
  let ready;
  if (kind === "pm1" || kind === "pmb") ready = nextMessage(worker, (m) => m.ready === true);
  const t0 = performance.now();
  worker.postMessage({ n, ackEvery: ctx.ackEvery });
  if (ready) await ready;
  if (kind === "ours") await produceOurs(ctx, n, false);
  else if (kind === "ours-spin") await produceOurs(ctx, n, true);
  else if (kind === "ringbuf") await produceRingbuf(ctx, n);
  else if (kind === "pm1") await producePm1(ctx, n);
  else await producePmb(ctx, n);
  const res = await done;
  const s = (performance.now() - t0) / 1000;
  if (res.count !== n) throw new Error(`${kind}: consumer saw ${res.count} of ${n} frames`);
  const expectSum = Number(BigInt.asIntN(32, BigInt(n) * BigInt(ctx.src[0] + ctx.size)));
  if (res.sum !== expectSum) throw new Error(`${kind}: checksum ${res.sum} != ${expectSum}`);
  return n / s;
}

async function runCase(kind, size, opts) {
  const ctx = setupCase(kind, size);
  await new Promise((r) => ctx.worker.once("online", r));
  // calibration / warm-up: grow n until a trial takes >= 1/8 of the target, then size the
  // measured trials to ~opts.trialSec each
  let n = 4 * BATCH;
  let rate = await trial(ctx, n);
  while (n / rate < opts.trialSec / 8) {
    n *= 4;
    rate = await trial(ctx, n);
  }
  n = Math.max(4 * BATCH, Math.round((rate * opts.trialSec) / BATCH) * BATCH);
  const rates = [];
  for (let t = 0; t < opts.trials; t++) rates.push(await trial(ctx, n));
  await ctx.worker.terminate();
  rates.sort((a, b) => a - b);
  rate = rates[rates.length >> 1];
  return { kind, size, framesPerSec: rate, mbPerSec: (rate * size) / 1e6, trials: rates.length, framesPerTrial: n };
}

/**
 * Round trips between the main thread and a worker through two doorbells; also the CPU
 * time of both threads together per round trip (process.cpuUsage), which is what a
 * wake-up costs. `syncParkMs`: the doorbells' blocking phase (Doorbell.syncParkMs).
 */
async function pingPong(spinChecks, opts, syncParkMs = 0) {
  const data = {
    kind: "pingpong",
    flagsSab: new SharedArrayBuffer(8),
    bellA: createDoorbell(),
    bellB: createDoorbell(),
  };
  const worker = new Worker(new URL(import.meta.url), { workerData: data });
  await new Promise((r) => worker.once("online", r));
  const flags = new Int32Array(data.flagsSab);
  const mine = new Doorbell(data.bellA);
  const peer = new Doorbell(data.bellB);
  mine.spinChecks = spinChecks;
  mine.syncParkMs = syncParkMs;
  let cpuUs = 0;
  const run = async (cycles) => {
    Atomics.store(flags, 0, 0);
    Atomics.store(flags, 1, 0);
    const done = nextMessage(worker, (m) => m.done === true);
    worker.postMessage({ cycles, spinChecks, syncParkMs });
    let cur = 0;
    const stillEmpty = () => Atomics.load(flags, 1) === cur;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 1; i <= cycles; i++) {
      Atomics.store(flags, 0, i);
      peer.ring();
      cur = i - 1;
      while (Atomics.load(flags, 1) !== i) await mine.sleep(stillEmpty, PARK_TIMEOUT_MS);
    }
    const us = ((performance.now() - t0) * 1000) / cycles;
    const c = process.cpuUsage(c0);
    cpuUs = (c.user + c.system) / cycles;
    await done;
    return us;
  };
  await run(2000);
  const us = await run(opts.pingCycles);
  await worker.terminate();
  return { spinChecks, syncParkMs, roundTripUs: us, cpuUsPerRoundTrip: cpuUs };
}

function singleThreadBench(opts) {
  const bench = new Bench({ time: opts.tinyMs, warmupTime: Math.min(100, opts.tinyMs) });
  for (const size of [64, 512]) {
    const src = makePayload(size);
    const sab = createRing(RING_BYTES);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    let sink = 0;
    const onFrame = (tag, off, len) => {
      sink = (sink + r.bytes[off] + len) | 0;
    };
    bench.add(`ours ${size} B: ${BATCH} x tryWrite + commit + read`, () => {
      for (let j = 0; j < BATCH; j++) w.tryWrite(1, src);
      w.commit();
      r.read(onFrame);
    });
    const rb = new RingBuffer(RingBuffer.getStorageForCapacity(RING_BYTES, Uint8Array), Uint8Array);
    const stage = new Uint8Array(BATCH * (4 + size));
    const dv = new DataView(stage.buffer);
    const out = new Uint8Array(stage.length);
    const odv = new DataView(out.buffer);
    bench.add(`ringbuf.js ${size} B: stage ${BATCH} + push + pop + parse`, () => {
      let p = 0;
      for (let j = 0; j < BATCH; j++) {
        dv.setUint32(p, size, true);
        stage.set(src, p + 4);
        p += 4 + size;
      }
      rb.push(stage, p);
      const got = rb.pop(out, p);
      for (let q = 0; q < got; ) {
        const len = odv.getUint32(q, true);
        sink = (sink + out[q + 4] + len) | 0;
        q += 4 + len;
      }
    });
  }
  return bench;
}

const LABELS = {
  ours: "(a) ours: ring, batched commit, park on doorbell/waitForSpace",
  "ours-spin": "(a') ours: ring, batched commit, busy-poll",
  ringbuf: "(b) ringbuf.js: len prefix + payload, batched push, park on our Doorbell",
  pm1: "(c) postMessage, 1 frame per message",
  pmb: `(d) postMessage, ${BATCH} frames per message (transferred)`,
};

async function main() {
  const args = new Set(process.argv.slice(2));
  const quick = args.has("--quick");
  const json = args.has("--json");
  const opts = quick
    ? { trials: 1, trialSec: 0.25, pingCycles: 5000, tinyMs: 150 }
    : { trials: 3, trialSec: 0.9, pingCycles: 30000, tinyMs: 500 };
  const log = (s) => process.stderr.write(s + "\n");
  const t0 = performance.now();
  const results = [];
  const only = [...args]
    .find((a) => a.startsWith("--only="))
    ?.slice(7)
    .split(",");
  for (const size of [64, 512]) {
    for (const kind of ["ours", "ours-spin", "ringbuf", "pm1", "pmb"]) {
      if (only && !only.includes(kind)) continue;
      const r = await runCase(kind, size, opts);
      log(`  ${kind} ${size} B: ${(r.framesPerSec / 1e6).toFixed(2)} M frames/s`);
      results.push(r);
    }
  }
  for (const r of results) {
    const ours = results.find((x) => x.kind === "ours" && x.size === r.size);
    r.vsOurs = ours ? r.framesPerSec / ours.framesPerSec : null;
  }
  const ping = [];
  for (const [spin, syncParkMs] of [
    [0, 0],
    [100, 0],
    [1000, 0],
    [10000, 0],
    [0, 1],
  ]) {
    const p = await pingPong(spin, opts, syncParkMs);
    log(
      `  doorbell ping-pong spinChecks=${spin} syncParkMs=${syncParkMs}: ${p.roundTripUs.toFixed(1)} us/round trip, ` +
        `${p.cpuUsPerRoundTrip.toFixed(1)} us CPU/round trip`,
    );
    ping.push(p);
  }
  const bench = singleThreadBench(opts);
  await bench.run();
  const single = bench.tasks.map((t) => {
    const mean = t.result.latency?.mean ?? t.result.mean; // ms per iteration (BATCH frames)
    return { name: t.name, nsPerFrame: (mean * 1e6) / BATCH };
  });
  const totalSec = (performance.now() - t0) / 1000;
  const meta = {
    node: process.version,
    cpus: (await import("node:os")).availableParallelism?.() ?? null,
    quick,
    batch: BATCH,
    ringBytes: RING_BYTES,
    totalSec,
  };

  if (json) {
    process.stdout.write(
      JSON.stringify({ meta, throughput: results, doorbellPingPong: ping, singleThread: single }, null, 2) + "\n",
    );
    return;
  }
  const out = [];
  out.push(
    `## Inter-thread frame throughput (main thread -> worker, Node ${meta.node}, ${meta.cpus} cpus${quick ? ", --quick" : ""})`,
  );
  out.push("");
  out.push("| channel | frame | frames/s | MB/s (payload) | vs ours (a) |");
  out.push("|---|---:|---:|---:|---:|");
  for (const r of results) {
    out.push(
      `| ${LABELS[r.kind]} | ${r.size} B | ${(r.framesPerSec / 1e6).toFixed(2)} M | ${r.mbPerSec.toFixed(0)} | ${r.vsOurs === null ? "-" : r.vsOurs.toFixed(2) + "x"} |`,
    );
  }
  out.push("");
  out.push("## Doorbell ping-pong (round trip = 2 wake-ups)");
  out.push("");
  out.push("| spinChecks | syncParkMs | round trip | CPU per round trip (both threads) |");
  out.push("|---:|---:|---:|---:|");
  for (const p of ping)
    out.push(
      `| ${p.spinChecks} | ${p.syncParkMs} | ${p.roundTripUs.toFixed(1)} us | ${p.cpuUsPerRoundTrip.toFixed(1)} us |`,
    );
  out.push("");
  out.push("## Single-thread cost per frame (tinybench)");
  out.push("");
  out.push("| task | ns/frame |");
  out.push("|---|---:|");
  for (const s of single) out.push(`| ${s.name} | ${s.nsPerFrame.toFixed(1)} |`);
  out.push("");
  out.push(`total ${totalSec.toFixed(1)} s`);
  process.stdout.write(out.join("\n") + "\n");
}

if (isMainThread) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  consumerMain();
}
