/**
 * Single-producer single-consumer ring of length-framed messages over a SharedArrayBuffer.
 *
 * Memory layout:
 *   [0, 128)             header (u32 words)
 *     line 0 (bytes 0..63, written by the producer)
 *       word 0  WRITE_POS     committed write position (Atomics.store once per commit)
 *       word 1  SPACE_WAITING 1 while the producer waits for space (set by producer, cleared by consumer)
 *       word 2  CAPACITY      data-region size, for validation
 *     line 1 (bytes 64..127, written by the consumer)
 *       word 16 READ_POS      released read position (Atomics.store once per read() call)
 *       word 17 SPACE_SEQ     bumped by the consumer to wake a producer waiting for space
 *   [128, 128 + capacity) data region
 *
 * Positions are u32 byte counters that wrap at 2^32; index = pos & (capacity - 1).
 * Because capacity is a power of two dividing 2^32, indices stay continuous across the wrap.
 *
 * Frame: 8-byte aligned; u32 payload length, u32 tag, payload, padding to 8 bytes.
 * A frame never wraps: if it does not fit before the end of the data region, a wrap marker
 * (tag 0xFFFFFFFF, length = bytes to the end - 8) fills the tail and the frame starts at 0.
 */
import { type Doorbell, keepAliveAcquire, keepAliveRelease, waitAsync } from "./doorbell.js";

export const RING_HEADER_BYTES = 128;
export const FRAME_HEADER_BYTES = 8;
/** Tag reserved for wrap padding. */
export const WRAP_TAG = 0xffffffff;

/** Header word indices (u32 / i32 words from the start of the SharedArrayBuffer). */
export const RING_WRITE_POS_WORD = 0;
export const RING_SPACE_WAITING_WORD = 1;
export const RING_CAPACITY_WORD = 2;
export const RING_READ_POS_WORD = 16;
export const RING_SPACE_SEQ_WORD = 17;

const MIN_CAPACITY = 4096;
const MAX_CAPACITY = 1 << 30;

/** Capacity rounded up to a power of two >= 4096; total SAB = header + capacity. */
export function createRing(capacityBytes: number): SharedArrayBuffer {
  if (!(capacityBytes > 0) || !Number.isFinite(capacityBytes)) {
    throw new RangeError(`ring capacity must be a positive number, got ${capacityBytes}`);
  }
  let cap = MIN_CAPACITY;
  while (cap < capacityBytes) cap *= 2;
  if (cap > MAX_CAPACITY) throw new RangeError(`ring capacity ${capacityBytes} exceeds ${MAX_CAPACITY}`);
  const sab = new SharedArrayBuffer(RING_HEADER_BYTES + cap);
  new Uint32Array(sab, 0, RING_HEADER_BYTES >> 2)[RING_CAPACITY_WORD] = cap;
  return sab;
}

function ringCapacity(sab: SharedArrayBuffer): number {
  if (!(sab instanceof SharedArrayBuffer)) throw new TypeError("ring needs a SharedArrayBuffer from createRing()");
  const cap = sab.byteLength - RING_HEADER_BYTES;
  if (cap < MIN_CAPACITY || (cap & (cap - 1)) !== 0 || cap > MAX_CAPACITY) {
    throw new TypeError(`not a ring SharedArrayBuffer (byteLength ${sab.byteLength})`);
  }
  const stored = Atomics.load(new Uint32Array(sab, 0, RING_HEADER_BYTES >> 2), RING_CAPACITY_WORD);
  if (stored !== cap) throw new TypeError("ring header does not match its SharedArrayBuffer (use createRing())");
  return cap;
}

export class RingWriter {
  /** View of the data region (index 0 = start of the data region). */
  readonly bytes: Uint8Array;
  readonly capacity: number;
  /** Largest payload that can ever fit: capacity/2 - 8, so an empty ring always accepts it. */
  readonly maxPayload: number;
  readonly sab: SharedArrayBuffer;

  private readonly u32: Uint32Array; // data region as u32 words (frame headers)
  private readonly hdr: Uint32Array; // header words (positions)
  private readonly hdr32: Int32Array; // header words (wait/notify)
  private readonly mask: number;
  private readonly bell: Doorbell | undefined;
  private wpos: number; // next write position (reserved, maybe not yet committed)
  private published: number; // last committed write position
  private readCache: number; // last read position seen

  constructor(sab: SharedArrayBuffer, consumerBell?: Doorbell) {
    const cap = ringCapacity(sab);
    this.sab = sab;
    this.capacity = cap;
    this.mask = cap - 1;
    this.maxPayload = (cap >>> 1) - FRAME_HEADER_BYTES;
    this.bytes = new Uint8Array(sab, RING_HEADER_BYTES, cap);
    this.u32 = new Uint32Array(sab, RING_HEADER_BYTES, cap >>> 2);
    this.hdr = new Uint32Array(sab, 0, RING_HEADER_BYTES >>> 2);
    this.hdr32 = new Int32Array(sab, 0, RING_HEADER_BYTES >>> 2);
    this.bell = consumerBell;
    this.wpos = this.published = Atomics.load(this.hdr, RING_WRITE_POS_WORD);
    this.readCache = Atomics.load(this.hdr, RING_READ_POS_WORD);
    if ((this.wpos & 7) !== 0) throw new TypeError("ring header write position is not 8-byte aligned");
  }

  /** Bytes a frame of `len` payload needs (header + padding to 8 bytes). */
  static frameSize(len: number): number {
    return (len + 15) & ~7;
  }

  /**
   * Reserve a frame with `len` payload bytes and `tag`. Returns the offset in `bytes` of the
   * payload (contiguous; frame 8-byte aligned) or -1 if there is no room right now.
   * Throws RangeError for the reserved tag or len outside [0, maxPayload].
   */
  reserve(tag: number, len: number): number {
    if (tag >>> 0 !== tag || tag === WRAP_TAG || len >>> 0 !== len || len > this.maxPayload) this.badFrame(tag, len);
    const fs = (len + 15) & ~7;
    const cap = this.capacity;
    let w = this.wpos;
    let idx = w & this.mask;
    const tail = cap - idx;
    const need = fs <= tail ? fs : tail + fs;
    if (need > cap - ((w - this.readCache) >>> 0)) {
      this.readCache = Atomics.load(this.hdr, RING_READ_POS_WORD);
      if (need > cap - ((w - this.readCache) >>> 0)) return -1;
    }
    const u32 = this.u32;
    if (fs > tail) {
      const h = idx >>> 2;
      u32[h] = tail - FRAME_HEADER_BYTES;
      u32[h + 1] = WRAP_TAG;
      w = (w + tail) >>> 0;
      idx = 0;
    }
    const h = idx >>> 2;
    u32[h] = len;
    u32[h + 1] = tag;
    this.wpos = (w + fs) >>> 0;
    return idx + FRAME_HEADER_BYTES;
  }

  private badFrame(tag: number, len: number): never {
    if (tag >>> 0 !== tag || tag === WRAP_TAG) throw new RangeError(`invalid frame tag ${tag}`);
    throw new RangeError(`frame payload ${len} outside [0, ${this.maxPayload}]`);
  }

  /** Copy src[start, end) as one frame; false if no room right now. */
  tryWrite(tag: number, src: Uint8Array, start: number = 0, end: number = src.length): boolean {
    const len = end - start;
    const off = this.reserve(tag, len);
    if (off < 0) return false;
    const bytes = this.bytes;
    // TypedArray#set is a memmove (~15 ns for <= 64 B here); a byte loop costs ~2.5 ns/byte.
    if (start === 0 && end === src.length) {
      bytes.set(src, off);
    } else if (len <= 8) {
      for (let i = 0; i < len; i++) bytes[off + i] = src[start + i];
    } else {
      bytes.set(src.subarray(start, end), off);
    }
    return true;
  }

  /** Publish every frame reserved since the last commit (one Atomics.store), then ring the consumer's doorbell. */
  commit(): void {
    const w = this.wpos;
    if (w !== this.published) {
      this.published = w;
      Atomics.store(this.hdr, RING_WRITE_POS_WORD, w);
      if (this.bell !== undefined) this.bell.ring();
    }
  }

  /**
   * Resolves when the consumer has released space since the last failed reserve() (or after
   * timeoutMs). Frames reserved but not yet committed are committed first (otherwise a full
   * ring of unpublished frames could never drain).
   */
  waitForSpace(timeoutMs: number): Promise<void> {
    this.commit();
    const hdr = this.hdr;
    const i32 = this.hdr32;
    const seen = this.readCache;
    if (Atomics.load(hdr, RING_READ_POS_WORD) !== seen) return Promise.resolve();
    const seq = Atomics.load(i32, RING_SPACE_SEQ_WORD);
    Atomics.store(i32, RING_SPACE_WAITING_WORD, 1);
    // Re-check after announcing: a release racing with the announcement is seen here, or the
    // consumer sees SPACE_WAITING=1 after its release and bumps SPACE_SEQ.
    if (Atomics.load(hdr, RING_READ_POS_WORD) !== seen) return Promise.resolve();
    const r = waitAsync(i32, RING_SPACE_SEQ_WORD, seq, timeoutMs < 0 ? 0 : timeoutMs);
    if (!r.async) return Promise.resolve();
    keepAliveAcquire();
    return r.value.then(keepAliveRelease);
  }

  /** Last committed (published) write position (u32). */
  committedPosition(): number {
    return this.published;
  }

  /** Write position including reserved-but-uncommitted frames (u32). */
  reservedPosition(): number {
    return this.wpos;
  }

  /** Read position released by the consumer (u32). Equal to committedPosition() when drained. */
  releasedPosition(): number {
    return Atomics.load(this.hdr, RING_READ_POS_WORD);
  }
}

export class RingReader {
  /** View of the data region (index 0 = start of the data region). */
  readonly bytes: Uint8Array;
  readonly capacity: number;
  readonly sab: SharedArrayBuffer;

  private readonly u32: Uint32Array;
  private readonly hdr: Uint32Array;
  private readonly hdr32: Int32Array;
  private readonly mask: number;
  private rpos: number;

  constructor(sab: SharedArrayBuffer) {
    const cap = ringCapacity(sab);
    this.sab = sab;
    this.capacity = cap;
    this.mask = cap - 1;
    this.bytes = new Uint8Array(sab, RING_HEADER_BYTES, cap);
    this.u32 = new Uint32Array(sab, RING_HEADER_BYTES, cap >>> 2);
    this.hdr = new Uint32Array(sab, 0, RING_HEADER_BYTES >>> 2);
    this.hdr32 = new Int32Array(sab, 0, RING_HEADER_BYTES >>> 2);
    this.rpos = Atomics.load(this.hdr, RING_READ_POS_WORD);
    if ((this.rpos & 7) !== 0) throw new TypeError("ring header read position is not 8-byte aligned");
  }

  /**
   * Calls onFrame(tag, offset, len) for committed frames in order (payload is
   * bytes[offset, offset + len), valid only during the call), at most maxFrames of them,
   * then releases their space with one Atomics.store and notifies a waiting producer.
   * If onFrame throws, the frames before it stay consumed (released), the throwing frame is
   * NOT consumed (it is delivered again by the next read()), and the error is rethrown.
   */
  read(onFrame: (tag: number, offset: number, len: number) => void, maxFrames: number = 0x7fffffff): number {
    const w = Atomics.load(this.hdr, RING_WRITE_POS_WORD);
    let r = this.rpos;
    if (r === w) return 0;
    const u32 = this.u32;
    const mask = this.mask;
    let n = 0;
    try {
      while (r !== w && n < maxFrames) {
        const idx = r & mask;
        const h = idx >>> 2;
        const len = u32[h];
        const tag = u32[h + 1];
        if (tag === WRAP_TAG) {
          r = (r + this.capacity - idx) >>> 0;
          continue;
        }
        onFrame(tag, idx + FRAME_HEADER_BYTES, len);
        r = (r + ((len + 15) & ~7)) >>> 0;
        n++;
      }
    } finally {
      this.release(r);
    }
    return n;
  }

  private release(r: number): void {
    if (r === this.rpos) return;
    this.rpos = r;
    Atomics.store(this.hdr, RING_READ_POS_WORD, r);
    const i32 = this.hdr32;
    if (Atomics.load(i32, RING_SPACE_WAITING_WORD) !== 0) {
      Atomics.store(i32, RING_SPACE_WAITING_WORD, 0);
      Atomics.add(i32, RING_SPACE_SEQ_WORD, 1);
      Atomics.notify(i32, RING_SPACE_SEQ_WORD);
    }
  }

  /** true if committed frames are waiting. */
  hasData(): boolean {
    return Atomics.load(this.hdr, RING_WRITE_POS_WORD) !== this.rpos;
  }

  /** true when everything committed has been read and released. */
  isEmpty(): boolean {
    return Atomics.load(this.hdr, RING_WRITE_POS_WORD) === Atomics.load(this.hdr, RING_READ_POS_WORD);
  }

  /** Released read position (u32). */
  readPosition(): number {
    return this.rpos;
  }
}
