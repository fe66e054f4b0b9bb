import { copyBytes } from "../transport/channel.js";

/**
 * Where the step runner (src/runtime/executor.ts) writes the frames it sends to
 * other workers and to sinks. In the engine that is a ChannelWriter over a ring
 * in shared memory (it satisfies this interface structurally, so the engine's
 * call sites only ever see that one class); the test driver (src/testing/) uses
 * MemoryOutbox: the same frames, kept in memory and delivered by the driver.
 */
export interface Outbox {
  /** memory that reserve() offsets point into; read once by the executor, so it never changes */
  readonly buffer: Buffer;
  /** largest frame reserve() may give room for (larger ones go through send()) */
  readonly frameLimit: number;
  /**
   * Room for a `len`-byte frame written in place at the returned offset of `buffer`;
   * -1 means the caller must use send() instead.
   */
  reserve(tag: number, len: number): number;
  /** Sends src[start, end) as one frame (copied before this returns). */
  send(tag: number, src: Uint8Array, start: number, end: number): void;
}

/** bytes of the in-place area of a MemoryOutbox; larger frames (and overflow) are copied one by one */
const ARENA_BYTES = 256 * 1024;

/**
 * An outbox in memory for a single-threaded driver: frames accumulate until the
 * driver takes them with drain(), in the order they were written.
 */
export class MemoryOutbox implements Outbox {
  readonly buffer: Buffer = Buffer.allocUnsafe(ARENA_BYTES);
  readonly frameLimit = ARENA_BYTES;
  private used = 0;
  /** per frame: tag, then either an arena offset + length or a copy */
  private tags: number[] = [];
  private offs: number[] = [];
  private lens: number[] = [];
  private copies: (Buffer | null)[] = [];

  get size(): number {
    return this.tags.length;
  }

  reserve(tag: number, len: number): number {
    if (this.used + len > this.buffer.length) return -1;
    const off = this.used;
    // 8-byte aligned like ring frames, so nothing can depend on an alignment only the driver has
    this.used += (len + 7) & ~7;
    this.tags.push(tag);
    this.offs.push(off);
    this.lens.push(len);
    this.copies.push(null);
    return off;
  }

  send(tag: number, src: Uint8Array, start: number, end: number): void {
    this.tags.push(tag);
    this.offs.push(0);
    this.lens.push(end - start);
    // Buffer.allocUnsafe takes small sizes from Node's shared pool: far less GC work than one ArrayBuffer per frame.
    const copy = Buffer.allocUnsafe(end - start);
    copyBytes(src, start, end, copy, 0);
    this.copies.push(copy);
  }

  /**
   * Hands every frame written so far to `visit`, in order, and forgets them
   * (`owned`: the bytes are a copy made for this frame alone, which the visitor may
   * keep; otherwise they are only valid during the call). The
   * visitor must not write to this same outbox (in the driver, only the worker
   * that owns an outbox writes to it, and that worker is not the one reading).
   */
  drain(visit: (tag: number, bytes: Buffer, off: number, len: number, owned: boolean) => void): number {
    const { tags, offs, lens, copies } = this;
    const n = tags.length;
    if (n === 0) return 0;
    this.tags = [];
    this.offs = [];
    this.lens = [];
    this.copies = [];
    try {
      for (let i = 0; i < n; i++) {
        const c = copies[i];
        if (c === null) visit(tags[i], this.buffer, offs[i], lens[i], false);
        else visit(tags[i], c, 0, lens[i], true);
      }
    } finally {
      this.used = 0;
    }
    return n;
  }
}
