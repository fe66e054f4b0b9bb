// Worker script for test/transport/ring.test.ts (runs the compiled dist/ code on a real thread).
// Roles: 'producer', 'consumer', 'pingpong-a', 'pingpong-b'. Posts one result object at the end.
import { parentPort, workerData } from "node:worker_threads";
import { RingWriter, RingReader } from "../../dist/transport/ring.js";
import { Doorbell } from "../../dist/transport/doorbell.js";

/** Deterministic per-frame 32-bit value derived from the seed and the sequence number. */
export function frameHash(seed, i) {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 0x632be5ab, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b);
  h ^= h >>> 16;
  return h >>> 0;
}
const GOLDEN = 0x9e3779b1;

function frameLen(x, maxLen) {
  // Mix of sizes: mostly 0..maxLen uniform, some exact edge sizes.
  const m = x & 63;
  if (m === 0) return 0;
  if (m === 1) return maxLen;
  return (x >>> 6) % (maxLen + 1);
}
const frameTag = (x, i) => ((x ^ i) & 0x7fffffff) >>> 0;

function fill(u32, bytes, off, len, x) {
  const w0 = off >>> 2;
  const nw = len >>> 2;
  for (let k = 0; k < nw; k++) u32[w0 + k] = (x + Math.imul(k, GOLDEN)) >>> 0;
  const rest = len & 3;
  if (rest !== 0) {
    const last = (x + Math.imul(nw, GOLDEN)) >>> 0;
    const b0 = off + (nw << 2);
    for (let j = 0; j < rest; j++) bytes[b0 + j] = (last >>> (8 * j)) & 255;
  }
}

function verify(u32, bytes, off, len, x) {
  const w0 = off >>> 2;
  const nw = len >>> 2;
  for (let k = 0; k < nw; k++) if (u32[w0 + k] !== (x + Math.imul(k, GOLDEN)) >>> 0) return false;
  const rest = len & 3;
  if (rest !== 0) {
    const last = (x + Math.imul(nw, GOLDEN)) >>> 0;
    const b0 = off + (nw << 2);
    for (let j = 0; j < rest; j++) if (bytes[b0 + j] !== ((last >>> (8 * j)) & 255)) return false;
  }
  return true;
}

function busy(iters) {
  let s = 0;
  for (let i = 0; i < iters; i++) s = (s + Math.imul(i, 31)) | 0;
  return s;
}
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function producer(d) {
  const bell = d.bellSab ? new Doorbell(d.bellSab) : undefined;
  const w = new RingWriter(d.ringSab, bell);
  const bytes = w.bytes;
  const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, w.capacity >>> 2);
  const maxLen = Math.min(d.maxLen, w.maxPayload);
  let i = 0;
  let waits = 0;
  let waitTimeouts = 0;
  let maxWaitMs = 0;
  const t0 = performance.now();
  while (i < d.n) {
    let k = 0;
    while (i < d.n && k < d.batch) {
      const x = frameHash(d.seed, i);
      const len = frameLen(x, maxLen);
      const off = w.reserve(frameTag(x, i), len);
      if (off < 0) break;
      fill(u32, bytes, off, len, x);
      i++;
      k++;
    }
    w.commit();
    if (k < d.batch && i < d.n) {
      waits++;
      const ts = performance.now();
      await w.waitForSpace(d.timeoutMs);
      const dt = performance.now() - ts;
      if (dt > maxWaitMs) maxWaitMs = dt;
      if (dt >= d.timeoutMs * 0.9) waitTimeouts++;
    }
  }
  w.commit();
  return { frames: i, waits, waitTimeouts, maxWaitMs, ms: performance.now() - t0, committed: w.committedPosition() };
}

async function consumer(d) {
  const bell = new Doorbell(d.bellSab);
  if (d.spinChecks !== undefined) bell.spinChecks = d.spinChecks;
  if (d.syncParkMs !== undefined) bell.syncParkMs = d.syncParkMs;
  const r = new RingReader(d.ringSab);
  const bytes = r.bytes;
  const u32 = new Uint32Array(bytes.buffer, bytes.byteOffset, r.capacity >>> 2);
  const maxLen = Math.min(d.maxLen, (r.capacity >>> 1) - 8);
  let expected = 0;
  let payloadBytes = 0;
  let error = null;
  const onFrame = (tag, off, len) => {
    const i = expected;
    const x = frameHash(d.seed, i);
    const wantLen = frameLen(x, maxLen);
    if (len !== wantLen || tag !== frameTag(x, i) || (off & 7) !== 0 || !verify(u32, bytes, off, len, x)) {
      error = `frame ${i}: len ${len} (want ${wantLen}) tag ${tag} (want ${frameTag(x, i)}) off ${off}`;
      throw new Error(error);
    }
    payloadBytes += len;
    expected = i + 1;
  };
  const stillEmpty = () => !r.hasData();
  let sleeps = 0;
  let sleepTimeouts = 0;
  let reads = 0;
  const t0 = performance.now();
  while (expected < d.n) {
    const got = r.read(onFrame, d.maxFrames);
    if (got === 0) {
      sleeps++;
      const ts = performance.now();
      await bell.sleep(stillEmpty, d.timeoutMs);
      if (performance.now() - ts >= d.timeoutMs * 0.9) sleepTimeouts++; // producer never pauses that long: a lost wakeup
    } else {
      reads++;
      if (d.slowBusy) busy(d.slowBusy);
      if (d.slowDelayEvery && reads % d.slowDelayEvery === 0) await delay(1);
    }
  }
  return {
    frames: expected,
    payloadBytes,
    sleeps,
    sleepTimeouts,
    reads,
    error,
    ms: performance.now() - t0,
    empty: r.isEmpty(),
    readPosition: r.readPosition(),
  };
}

// Lost-wakeup stress: A publishes i then rings B; B waits for i, publishes i and rings A; A waits.
async function pingpong(d, me) {
  const flags = new Int32Array(d.flagsSab);
  const myBell = new Doorbell(me === 0 ? d.bellA : d.bellB);
  const peerBell = new Doorbell(me === 0 ? d.bellB : d.bellA);
  myBell.spinChecks = d.spinChecks ?? 0;
  myBell.syncParkMs = d.syncParkMs ?? 0;
  const mine = me;
  const peer = 1 - me;
  let timeouts = 0;
  let sleeps = 0;
  let cur = 0;
  const stillEmpty = () => Atomics.load(flags, peer) !== cur;
  let rnd = 12345 + me;
  const t0 = performance.now();
  for (let i = 1; i <= d.cycles; i++) {
    if (me === 0) {
      if (d.jitter) {
        rnd = (Math.imul(rnd, 1103515245) + 12345) | 0;
        busy((rnd >>> 8) % d.jitter);
      }
      Atomics.store(flags, mine, i);
      peerBell.ring();
    }
    cur = i;
    if (me === 0 && d.spinA) {
      // Busy-poll instead of sleeping, so A's next publish+ring lands within nanoseconds of B
      // deciding to sleep: this is what exercises the sleep/ring race window.
      const deadline = performance.now() + d.timeoutMs;
      while (Atomics.load(flags, peer) !== i) {
        if (performance.now() > deadline) {
          timeouts++;
          break;
        }
      }
    }
    while (Atomics.load(flags, peer) !== i) {
      sleeps++;
      const ts = performance.now();
      await myBell.sleep(stillEmpty, d.timeoutMs);
      if (performance.now() - ts >= d.timeoutMs * 0.9) timeouts++; // the peer answers within microseconds: a lost wakeup
    }
    if (me === 1) {
      if (d.jitter) {
        rnd = (Math.imul(rnd, 1103515245) + 12345) | 0;
        busy((rnd >>> 8) % d.jitter);
      }
      Atomics.store(flags, mine, i);
      peerBell.ring();
    }
  }
  return { cycles: d.cycles, sleeps, timeouts, ms: performance.now() - t0 };
}

const roles = {
  producer: () => producer(workerData),
  consumer: () => consumer(workerData),
  "pingpong-a": () => pingpong(workerData, 0),
  "pingpong-b": () => pingpong(workerData, 1),
};

if (parentPort && workerData && workerData.role) {
  roles[workerData.role]().then(
    (result) => parentPort.postMessage({ ok: true, result }),
    (err) => parentPort.postMessage({ ok: false, error: String(err && err.stack ? err.stack : err) }),
  );
}
