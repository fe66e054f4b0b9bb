// Tests for the SPSC frame ring and the doorbell. Imports the compiled dist/ code (the worker
// threads need it anyway; `npm test` runs tsc first).
import { describe, expect, it } from "vitest";
import { Worker } from "node:worker_threads";
import {
  createRing,
  RingWriter,
  RingReader,
  RING_HEADER_BYTES,
  FRAME_HEADER_BYTES,
  RING_WRITE_POS_WORD,
  RING_READ_POS_WORD,
  WRAP_TAG,
} from "../../dist/transport/ring.js";
import { createDoorbell, Doorbell } from "../../dist/transport/doorbell.js";

const WORKER_URL = new URL("./ring-worker.mjs", import.meta.url);

type Frame = { tag: number; len: number; data: number[] };

/** Read everything committed; copies payloads so they can be inspected after the call. */
function drain(r: RingReader, maxFrames?: number): Frame[] {
  const out: Frame[] = [];
  r.read((tag, off, len) => {
    out.push({ tag, len, data: Array.from(r.bytes.subarray(off, off + len)) });
  }, maxFrames);
  return out;
}

function presetPositions(sab: SharedArrayBuffer, pos: number): void {
  const hdr = new Uint32Array(sab, 0, RING_HEADER_BYTES >> 2);
  hdr[RING_WRITE_POS_WORD] = pos >>> 0;
  hdr[RING_READ_POS_WORD] = pos >>> 0;
}

function pattern(seed: number, len: number): Uint8Array {
  const a = new Uint8Array(len);
  for (let i = 0; i < len; i++) a[i] = (seed * 31 + i * 7) & 255;
  return a;
}

function runWorker(data: Record<string, unknown>): { done: Promise<any>; worker: Worker } {
  const worker = new Worker(WORKER_URL, { workerData: data });
  const done = new Promise<any>((resolve, reject) => {
    worker.once("message", (m: any) => (m.ok ? resolve(m.result) : reject(new Error(m.error))));
    worker.once("error", reject);
    worker.once("exit", (code) =>
      reject(new Error(`worker ${String(data.role)} exited with ${code} before reporting`)),
    );
  });
  return { done, worker };
}

describe("ring: layout and sizing", () => {
  it("rounds capacity up to a power of two >= 4096", () => {
    expect(createRing(1).byteLength).toBe(RING_HEADER_BYTES + 4096);
    expect(createRing(4096).byteLength).toBe(RING_HEADER_BYTES + 4096);
    expect(createRing(4097).byteLength).toBe(RING_HEADER_BYTES + 8192);
    expect(createRing(65536).byteLength).toBe(RING_HEADER_BYTES + 65536);
    const w = new RingWriter(createRing(100_000));
    expect(w.capacity).toBe(131072);
    expect(w.bytes.length).toBe(131072);
    expect(w.maxPayload).toBe(65536 - FRAME_HEADER_BYTES);
    expect(() => createRing(0)).toThrow(RangeError);
    expect(() => new RingWriter(new SharedArrayBuffer(RING_HEADER_BYTES + 5000))).toThrow(TypeError);
  });

  it("frameSize is header + payload padded to 8", () => {
    expect(RingWriter.frameSize(0)).toBe(8);
    expect(RingWriter.frameSize(1)).toBe(16);
    expect(RingWriter.frameSize(8)).toBe(16);
    expect(RingWriter.frameSize(9)).toBe(24);
    expect(RingWriter.frameSize(56)).toBe(64);
  });
});

describe("ring: single-thread edge cases", () => {
  it("frames are invisible until commit, then read in order with tags", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    expect(r.hasData()).toBe(false);
    expect(r.isEmpty()).toBe(true);
    expect(w.tryWrite(7, pattern(1, 10))).toBe(true);
    const off = w.reserve(9, 3);
    expect(off % 8).toBe(0);
    w.bytes.set([1, 2, 3], off);
    expect(r.hasData()).toBe(false);
    expect(drain(r)).toEqual([]);
    w.commit();
    expect(r.hasData()).toBe(true);
    expect(r.isEmpty()).toBe(false);
    const frames = drain(r);
    expect(frames).toEqual([
      { tag: 7, len: 10, data: Array.from(pattern(1, 10)) },
      { tag: 9, len: 3, data: [1, 2, 3] },
    ]);
    expect(r.hasData()).toBe(false);
    expect(r.isEmpty()).toBe(true);
    expect(w.committedPosition()).toBe(RingWriter.frameSize(10) + RingWriter.frameSize(3));
    expect(w.releasedPosition()).toBe(w.committedPosition());
  });

  it("exact fill: capacity is fully usable and the next reserve is refused", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    for (let i = 0; i < 64; i++) expect(w.tryWrite(i, pattern(i, 56))).toBe(true); // 64 * 64 = 4096
    expect(w.reserve(100, 0)).toBe(-1);
    expect(w.tryWrite(100, new Uint8Array(0))).toBe(false);
    w.commit();
    expect(w.reserve(100, 0)).toBe(-1);
    const frames = drain(r, 10);
    expect(frames.length).toBe(10);
    frames.forEach((f, i) => expect(f).toEqual({ tag: i, len: 56, data: Array.from(pattern(i, 56)) }));
    // 640 bytes freed: exactly 10 more 64-byte frames fit (at the start of the data region).
    for (let i = 64; i < 74; i++) expect(w.tryWrite(i, pattern(i, 56))).toBe(true);
    expect(w.reserve(200, 0)).toBe(-1);
    w.commit();
    const rest = drain(r);
    expect(rest.map((f) => f.tag)).toEqual(Array.from({ length: 64 }, (_, i) => i + 10));
    rest.forEach((f) => expect(f.data).toEqual(Array.from(pattern(f.tag, 56))));
    expect(r.isEmpty()).toBe(true);
  });

  it("zero-length frames take 8 bytes each and are delivered", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 512; i++) expect(w.reserve(i, 0)).toBeGreaterThanOrEqual(0);
      expect(w.reserve(1, 0)).toBe(-1);
      w.commit();
      const seen: number[] = [];
      expect(
        r.read((tag, off, len) => {
          expect(len).toBe(0);
          expect(off % 8).toBe(0);
          seen.push(tag);
        }),
      ).toBe(512);
      expect(seen).toEqual(Array.from({ length: 512 }, (_, i) => i));
    }
  });

  it("writes a wrap marker when a frame would not fit before the end", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    // 62 frames of 64 bytes -> write index 3968, 128 bytes to the end.
    for (let i = 0; i < 62; i++) w.tryWrite(i, pattern(i, 56));
    w.commit();
    expect(drain(r).length).toBe(62);
    // A 200-byte payload (frame 208) needs to wrap.
    const before = w.reservedPosition();
    const off = w.reserve(77, 200);
    expect(off).toBe(FRAME_HEADER_BYTES);
    const hdr = new Uint32Array(sab, RING_HEADER_BYTES, 1024);
    expect(hdr[3968 >> 2]).toBe(128 - FRAME_HEADER_BYTES);
    expect(hdr[(3968 >> 2) + 1]).toBe(WRAP_TAG);
    expect(w.reservedPosition()).toBe(before + 128 + 208);
    w.bytes.set(pattern(77, 200), off);
    w.commit();
    const frames = drain(r);
    expect(frames).toEqual([{ tag: 77, len: 200, data: Array.from(pattern(77, 200)) }]);
    expect(r.isEmpty()).toBe(true);
  });

  it("refuses a wrapping frame without writing a marker when there is no room after the wrap", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    for (let i = 0; i < 62; i++) w.tryWrite(i, pattern(i, 56)); // index 3968
    w.commit();
    expect(drain(r, 1).length).toBe(1); // only 64 bytes released at the start
    const before = w.reservedPosition();
    expect(w.reserve(5, 200)).toBe(-1); // needs 128 (tail) + 208
    expect(w.reservedPosition()).toBe(before);
    expect(w.reserve(5, 56)).toBe(3968 + 8); // fits before the end
    expect(w.reserve(6, 56)).toBe(4032 + 8); // exactly reaches the end
    // write index is now 4096 & mask = 0: the first 64 bytes are free, no marker needed
    expect(w.reserve(7, 56)).toBe(FRAME_HEADER_BYTES);
    expect(w.reserve(8, 0)).toBe(-1);
    w.commit();
    const frames = drain(r);
    expect(frames.map((f) => f.tag)).toEqual([...Array.from({ length: 61 }, (_, i) => i + 1), 5, 6, 7]);
  });

  it("a frame of exactly maxPayload fits into an empty ring at every alignment", () => {
    for (let start = 0; start < 4096; start += 8) {
      const sab = createRing(4096);
      presetPositions(sab, start);
      const w = new RingWriter(sab);
      const r = new RingReader(sab);
      expect(w.maxPayload).toBe(2048 - 8);
      expect(() => w.reserve(1, w.maxPayload + 1)).toThrow(RangeError);
      const data = pattern(start, w.maxPayload);
      expect(w.tryWrite(3, data)).toBe(true);
      w.commit();
      const frames = drain(r);
      expect(frames.length).toBe(1);
      expect(frames[0].len).toBe(w.maxPayload);
      expect(frames[0].data).toEqual(Array.from(data));
      // and again with the ring left where it is
      expect(w.tryWrite(4, data)).toBe(true);
      w.commit();
      expect(drain(r)[0].tag).toBe(4);
    }
  });

  it("rejects the reserved wrap tag and non-u32 tags", () => {
    const w = new RingWriter(createRing(4096));
    expect(() => w.reserve(WRAP_TAG, 1)).toThrow(RangeError);
    expect(() => w.reserve(-1, 1)).toThrow(RangeError);
    expect(() => w.reserve(1.5, 1)).toThrow(RangeError);
    expect(() => w.reserve(1, -1)).toThrow(RangeError);
    expect(w.reserve(0xfffffffe, 1)).toBeGreaterThanOrEqual(0);
  });

  it("tryWrite copies a sub-range", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    const src = pattern(9, 1000);
    expect(w.tryWrite(1, src, 10, 20)).toBe(true);
    expect(w.tryWrite(2, src, 100, 900)).toBe(true);
    expect(w.tryWrite(3, src)).toBe(true);
    w.commit();
    const f = drain(r);
    expect(f[0].data).toEqual(Array.from(src.subarray(10, 20)));
    expect(f[1].data).toEqual(Array.from(src.subarray(100, 900)));
    expect(f[2].data).toEqual(Array.from(src));
  });

  it("positions wrap past 2^32 (random frames streamed through a small ring)", () => {
    const cap = 4096;
    const start = 2 ** 32 - 20 * cap - 8; // 8-aligned, ~80 KiB before the u32 wrap
    const sab = createRing(cap);
    presetPositions(sab, start);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    expect(w.committedPosition()).toBe(start);
    let seed = 1;
    const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8;
    let written = 0;
    let readCount = 0;
    let crossed = false;
    let lastPos = start;
    const sizes: number[] = [];
    while (readCount < 5000) {
      // write a random batch until full
      for (;;) {
        const len = rnd() % 700;
        const off = w.reserve(written & 0xffff, len);
        if (off < 0) break;
        w.bytes.set(pattern(written, len), off);
        sizes.push(len);
        written++;
        if (rnd() % 4 === 0) break;
      }
      w.commit();
      const pos = w.committedPosition();
      if (pos < lastPos) crossed = true;
      lastPos = pos;
      expect(pos).toBeGreaterThanOrEqual(0);
      expect(pos).toBeLessThan(2 ** 32);
      r.read(
        (tag, off, len) => {
          expect(tag).toBe(readCount & 0xffff);
          expect(len).toBe(sizes[readCount]);
          const want = pattern(readCount, len);
          for (let i = 0; i < len; i++)
            if (r.bytes[off + i] !== want[i]) throw new Error(`byte mismatch frame ${readCount}`);
          readCount++;
        },
        1 + (rnd() % 8),
      );
    }
    expect(crossed).toBe(true);
    drain(r);
    expect(r.isEmpty()).toBe(true);
    expect(r.readPosition()).toBe(w.committedPosition());
  });

  it("honours maxFrames", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    for (let i = 0; i < 10; i++) w.tryWrite(i, pattern(i, 5));
    w.commit();
    expect(drain(r, 3).map((f) => f.tag)).toEqual([0, 1, 2]);
    expect(drain(r, 0)).toEqual([]);
    expect(drain(r, 100).map((f) => f.tag)).toEqual([3, 4, 5, 6, 7, 8, 9]);
  });

  it("if onFrame throws, earlier frames stay consumed, the throwing frame is redelivered, and the ring stays consistent", () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    for (let i = 0; i < 5; i++) w.tryWrite(i, pattern(i, 20));
    w.commit();
    const seen: number[] = [];
    const boom = new Error("boom");
    expect(() =>
      r.read((tag) => {
        if (tag === 2) throw boom;
        seen.push(tag);
      }),
    ).toThrow(boom);
    expect(seen).toEqual([0, 1]);
    expect(w.releasedPosition()).toBe(2 * RingWriter.frameSize(20));
    expect(r.hasData()).toBe(true);
    expect(drain(r).map((f) => f.tag)).toEqual([2, 3, 4]);
    expect(r.isEmpty()).toBe(true);
    // keeps working afterwards (including a wrap)
    for (let round = 0; round < 200; round++) {
      expect(w.tryWrite(round, pattern(round, 100))).toBe(true);
      w.commit();
      expect(drain(r)).toEqual([{ tag: round, len: 100, data: Array.from(pattern(round, 100)) }]);
    }
  });

  it("waitForSpace: immediate if space was freed since the failed reserve, resolves on release, times out otherwise", async () => {
    const sab = createRing(4096);
    const w = new RingWriter(sab);
    const r = new RingReader(sab);
    while (w.reserve(1, 100) >= 0);
    // waitForSpace commits pending frames itself; nothing is released -> times out
    let t = performance.now();
    await w.waitForSpace(30);
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
    expect(r.hasData()).toBe(true);
    // released while waiting -> resolves early
    t = performance.now();
    setTimeout(() => drain(r, 1), 10);
    await w.waitForSpace(5000);
    expect(performance.now() - t).toBeLessThan(2000);
    // released before waiting (no failed reserve since) -> immediate
    drain(r, 1);
    t = performance.now();
    await w.waitForSpace(5000);
    expect(performance.now() - t).toBeLessThan(50);
  });
});

describe("doorbell: single thread", () => {
  it("sleep returns at once when not empty, times out when nobody rings, wakes on ring", async () => {
    const bell = new Doorbell(createDoorbell());
    let t = performance.now();
    await bell.sleep(() => false, 5000);
    expect(performance.now() - t).toBeLessThan(50);
    t = performance.now();
    await bell.sleep(() => true, 30);
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
    t = performance.now();
    setTimeout(() => bell.ring(), 10);
    await bell.sleep(() => true, 5000);
    expect(performance.now() - t).toBeLessThan(2000);
    // ring() while nobody sleeps is a no-op
    bell.ring();
    t = performance.now();
    await bell.sleep(() => true, 30);
    expect(performance.now() - t).toBeGreaterThanOrEqual(25);
  });

  it("with a blocking phase: times out through both phases, wakes from either, and says whether the event loop ran", async () => {
    const bell = new Doorbell(createDoorbell());
    bell.syncParkMs = 5;
    // nobody rings: 5 ms blocked, then the rest of the timeout asynchronously
    let t = performance.now();
    await bell.sleep(() => true, 40);
    expect(performance.now() - t).toBeGreaterThanOrEqual(35);
    expect(bell.parkedAsync).toBe(true);
    // a timeout within the blocking phase ends the sleep there: the event loop did not run
    t = performance.now();
    await bell.sleep(() => true, 3);
    expect(performance.now() - t).toBeGreaterThanOrEqual(2.5);
    expect(bell.parkedAsync).toBe(false);
    // rung from another thread during the blocking phase (a timer on this thread could not fire: it is blocked)
    const w = new Worker(
      `const { workerData } = require("node:worker_threads");
       const i32 = new Int32Array(workerData);
       // the doorbell's ring(): claim the announced sleep, bump SEQ, notify
       while (Atomics.compareExchange(i32, 16, 1, 0) !== 1) {}
       Atomics.add(i32, 0, 1);
       Atomics.notify(i32, 0);`,
      { eval: true, workerData: bell.sab },
    );
    bell.syncParkMs = 10_000;
    t = performance.now();
    await bell.sleep(() => true, 20_000);
    expect(performance.now() - t).toBeLessThan(10_000);
    expect(bell.parkedAsync).toBe(false);
    await w.terminate();
    // rung after the blocking phase: woken from the asynchronous one
    bell.syncParkMs = 2;
    setTimeout(() => bell.ring(), 30);
    t = performance.now();
    await bell.sleep(() => true, 20_000);
    expect(performance.now() - t).toBeLessThan(10_000);
    expect(bell.parkedAsync).toBe(true);
  });

  it("commit() rings the consumer doorbell", async () => {
    const bellSab = createDoorbell();
    const sab = createRing(4096);
    const w = new RingWriter(sab, new Doorbell(bellSab));
    const r = new RingReader(sab);
    const t = performance.now();
    setTimeout(() => {
      w.tryWrite(1, pattern(1, 4));
      w.commit();
    }, 10);
    await new Doorbell(bellSab).sleep(() => !r.hasData(), 5000);
    expect(performance.now() - t).toBeLessThan(2000);
    expect(drain(r).map((f) => f.tag)).toEqual([1]);
  });
});

describe("doorbell: several input rings share one consumer doorbell", () => {
  it("a commit on any of the rings wakes the consumer", async () => {
    const bellSab = createDoorbell();
    const sabs = [createRing(4096), createRing(4096), createRing(4096)];
    const writers = sabs.map((sab) => new RingWriter(sab, new Doorbell(bellSab)));
    const readers = sabs.map((sab) => new RingReader(sab));
    const consumerBell = new Doorbell(bellSab);
    const allEmpty = () => readers.every((r) => !r.hasData());
    for (let k = 0; k < 6; k++) {
      const which = k % 3;
      const t = performance.now();
      setTimeout(() => {
        writers[which].tryWrite(k, pattern(k, 8));
        writers[which].commit();
      }, 5);
      await consumerBell.sleep(allEmpty, 5000);
      expect(performance.now() - t).toBeLessThan(2000);
      expect(readers.map((r) => r.hasData())).toEqual([0, 1, 2].map((i) => i === which));
      expect(drain(readers[which]).map((f) => f.tag)).toEqual([k]);
    }
  });
});

describe("ring: two real threads", () => {
  it("streams 2M random-size frames through a 64 KiB ring, every byte and the order verified", async () => {
    const ringSab = createRing(64 * 1024);
    const bellSab = createDoorbell();
    const common = { ringSab, bellSab, n: 2_000_000, seed: 0xc0ffee, maxLen: 3000, timeoutMs: 10_000 };
    const c = runWorker({ ...common, role: "consumer", maxFrames: 256 });
    const p = runWorker({ ...common, role: "producer", batch: 32 });
    const [pr, cr] = await Promise.all([p.done, c.done]);
    await Promise.all([p.worker.terminate(), c.worker.terminate()]);
    expect(cr.error).toBeNull();
    expect(pr.frames).toBe(2_000_000);
    expect(cr.frames).toBe(2_000_000);
    expect(cr.empty).toBe(true);
    expect(cr.readPosition).toBe(pr.committed);
    expect(pr.waitTimeouts).toBe(0);
    expect(cr.sleepTimeouts).toBe(0);
    // 64 KiB ring, ~3 GB moved: it wrapped tens of thousands of times
    expect(cr.payloadBytes).toBeGreaterThan(1000 * 64 * 1024);
    console.log(
      `2M frames: ${(cr.payloadBytes / 1e6).toFixed(0)} MB in ${cr.ms.toFixed(0)} ms; producer waits ${pr.waits}, consumer sleeps ${cr.sleeps}`,
    );
  }, 120_000);

  it("a slow consumer makes the producer block on waitForSpace (no lost space wakeups)", async () => {
    const ringSab = createRing(4096);
    const bellSab = createDoorbell();
    const common = { ringSab, bellSab, n: 20_000, seed: 42, maxLen: 200, timeoutMs: 10_000 };
    const c = runWorker({ ...common, role: "consumer", maxFrames: 8, slowDelayEvery: 4, slowBusy: 20_000 });
    const p = runWorker({ ...common, role: "producer", batch: 16 });
    const [pr, cr] = await Promise.all([p.done, c.done]);
    await Promise.all([p.worker.terminate(), c.worker.terminate()]);
    expect(cr.error).toBeNull();
    expect(cr.frames).toBe(20_000);
    expect(pr.waits).toBeGreaterThan(100);
    expect(pr.waitTimeouts).toBe(0);
    expect(cr.sleepTimeouts).toBe(0);
    expect(pr.maxWaitMs).toBeLessThan(5_000);
  }, 60_000);
});

describe("doorbell: lost-wakeup stress between two threads", () => {
  for (const variant of [
    { spinChecks: 0, jitter: 0 },
    { spinChecks: 0, jitter: 400 },
    { spinChecks: 50, jitter: 200 },
    // A busy-polls, so its publish + ring races with B announcing sleep (this variant catches
    // a doorbell without the post-announce re-check within a few thousand cycles)
    { spinChecks: 0, jitter: 300, spinA: true },
    // The blocking phase (Atomics.wait) for the whole timeout: a ring lost in that phase is a timeout here.
    { spinChecks: 0, jitter: 300, spinA: true, syncParkMs: 3_000 },
    // A blocking phase of 20 us, so that rings land before, during and just after the hand-over to waitAsync.
    { spinChecks: 0, jitter: 400, syncParkMs: 0.02 },
    { spinChecks: 0, jitter: 300, spinA: true, syncParkMs: 0.02 },
  ]) {
    it(`ping-pong cycles complete without a single timeout ${JSON.stringify(variant)}`, async () => {
      const data = {
        flagsSab: new SharedArrayBuffer(8),
        bellA: createDoorbell(),
        bellB: createDoorbell(),
        cycles: 20_000,
        timeoutMs: 3_000,
        ...variant,
      };
      const a = runWorker({ ...data, role: "pingpong-a" });
      const b = runWorker({ ...data, role: "pingpong-b" });
      const [ra, rb] = await Promise.all([a.done, b.done]);
      await Promise.all([a.worker.terminate(), b.worker.terminate()]);
      expect(ra.cycles).toBe(20_000);
      expect(ra.timeouts + rb.timeouts).toBe(0);
      expect(ra.sleeps + rb.sleeps).toBeGreaterThan(0);
      console.log(
        `ping-pong ${JSON.stringify(variant)}: ${ra.ms.toFixed(0)} ms, ${((ra.ms * 1000) / ra.cycles).toFixed(1)} us/round trip, sleeps ${ra.sleeps}+${rb.sleeps}`,
      );
    }, 90_000);
  }
});
