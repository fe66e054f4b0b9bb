/**
 * A channel is a ring plus the two things the ring alone does not do: messages
 * larger than a frame may be (sent as fragments) and a producer that must never
 * block its thread (what does not fit now waits in a queue, copied, and the owner
 * of the channel stops taking new input while anything is queued: that is the
 * backpressure, and it keeps the queue bounded).
 */
import { readU32LE, writeU32LE } from "../core/bytes.js";
import type { RingReader, RingWriter } from "./ring.js";
import { FRAGMENT, KIND_SHIFT, tag as makeTag } from "./tags.js";

const FRAG_FIRST_HEADER = 8; // original tag, total length

interface Queued {
  readonly tag: number;
  readonly data: Uint8Array;
  /** bytes of data already written as fragments */
  sent: number;
}

/** Below this many bytes a JS loop beats a native copy call (no view to allocate). */
const SMALL_COPY = 64;

/** Copies src[start, end) to dst at `at` without allocating a view. */
export function copyBytes(src: Uint8Array, start: number, end: number, dst: Buffer, at: number): void {
  if (end - start <= SMALL_COPY) {
    for (let i = start; i < end; i++) dst[at++] = src[i];
  } else {
    Buffer.prototype.copy.call(src, dst, at, start, end);
  }
}

export class ChannelWriter {
  readonly bytes: Uint8Array;
  /** the same memory as `bytes`, as a Buffer, for string writes and native copies */
  readonly buffer: Buffer;
  /** messages up to this size go in one frame */
  readonly frameLimit: number;
  /** queued messages are queue[head..]; shift() on a long array is O(n), so a head index instead */
  private queue: Queued[] = [];
  private head = 0;
  private queuedBytes = 0;
  private dirty = false;
  /** bytes written since the last commit, for callers that batch commits by size */
  uncommitted = 0;

  constructor(readonly ring: RingWriter) {
    this.bytes = ring.bytes;
    this.buffer = Buffer.from(ring.bytes.buffer, ring.bytes.byteOffset, ring.bytes.byteLength);
    // A quarter of the ring keeps big messages from monopolizing it and lets fragments flow while the reader works.
    this.frameLimit = Math.min(ring.maxPayload, ring.capacity >>> 2);
  }

  /** true while messages wait in the queue: the owner must stop taking new input */
  get blocked(): boolean {
    return this.head < this.queue.length;
  }

  get pendingBytes(): number {
    return this.queuedBytes;
  }

  /**
   * Room for a `len`-byte message written in place, at the returned offset of `bytes`;
   * -1 means the caller must use send() instead (full, queue not empty, or too big).
   */
  reserve(tag: number, len: number): number {
    if (this.head < this.queue.length || len > this.frameLimit) return -1;
    const off = this.ring.reserve(tag, len);
    if (off >= 0) {
      this.dirty = true;
      this.uncommitted += len;
    }
    return off;
  }

  /** Sends src[start, end) as one message. Never fails: what does not fit now is copied into the queue. */
  send(tag: number, src: Uint8Array, start: number, end: number): void {
    const len = end - start;
    if (this.head === this.queue.length && len <= this.frameLimit) {
      const off = this.ring.reserve(tag, len);
      if (off >= 0) {
        copyBytes(src, start, end, this.buffer, off);
        this.dirty = true;
        this.uncommitted += len;
        return;
      }
    }
    // A copy (Uint8Array slice: Buffer#slice would be a view of memory the caller reuses).
    this.queue.push({ tag, data: Uint8Array.prototype.slice.call(src, start, end), sent: 0 });
    this.queuedBytes += len;
    if (this.queue.length === 1) this.flush();
  }

  /** Moves queued messages into the ring as far as there is room; true when nothing is left queued. */
  flush(): boolean {
    const q = this.queue;
    while (this.head < q.length) {
      const m = q[this.head];
      const len = m.data.length;
      if (m.sent === 0 && len <= this.frameLimit) {
        const off = this.ring.reserve(m.tag, len);
        if (off < 0) return false;
        this.bytes.set(m.data, off);
      } else if (!this.writeFragments(m)) {
        return false;
      }
      this.dirty = true;
      this.queuedBytes -= len;
      q[this.head++] = undefined as unknown as Queued;
    }
    this.queue = [];
    this.head = 0;
    return true;
  }

  private writeFragments(m: Queued): boolean {
    const total = m.data.length;
    while (m.sent < total) {
      const first = m.sent === 0;
      const room = this.frameLimit - (first ? FRAG_FIRST_HEADER : 0);
      const chunk = Math.min(room, total - m.sent);
      const last = m.sent + chunk === total;
      const off = this.ring.reserve(makeTag(FRAGMENT, last ? 1 : 0), chunk + (first ? FRAG_FIRST_HEADER : 0));
      if (off < 0) return false;
      let p = off;
      if (first) {
        writeU32LE(this.bytes, p, m.tag);
        writeU32LE(this.bytes, p + 4, total);
        p += FRAG_FIRST_HEADER;
      }
      this.bytes.set(m.data.subarray(m.sent, m.sent + chunk), p);
      m.sent += chunk;
      this.dirty = true;
      // Publish each fragment at once so the reader can free room for the next one.
      this.commit();
    }
    return true;
  }

  /** Publishes what was written since the last commit (one atomic store per batch). */
  commit(): void {
    if (this.dirty) {
      this.dirty = false;
      this.uncommitted = 0;
      this.ring.commit();
    }
  }

  waitForSpace(timeoutMs: number): Promise<void> {
    return this.ring.waitForSpace(timeoutMs);
  }

  /** Bytes of the ring not holding unread frames. */
  freeBytes(): number {
    return this.ring.capacity - ((this.ring.reservedPosition() - this.ring.releasedPosition()) >>> 0);
  }
}

export type MessageHandler = (tag: number, bytes: Uint8Array, offset: number, len: number) => void;

export class ChannelReader {
  private assembling: Uint8Array | null = null;
  private assembledTag = 0;
  private assembledLen = 0;
  private readonly onFrame: (tag: number, offset: number, len: number) => void;

  constructor(
    readonly ring: RingReader,
    onMessage: MessageHandler,
  ) {
    const bytes = ring.bytes;
    this.onFrame = (tag, offset, len) => {
      if (tag >>> KIND_SHIFT !== FRAGMENT) {
        onMessage(tag, bytes, offset, len);
        return;
      }
      if (this.assembling === null) {
        this.assembledTag = readU32LE(bytes, offset);
        const total = readU32LE(bytes, offset + 4);
        this.assembling = new Uint8Array(total);
        this.assembledLen = 0;
        offset += FRAG_FIRST_HEADER;
        len -= FRAG_FIRST_HEADER;
      }
      this.assembling.set(bytes.subarray(offset, offset + len), this.assembledLen);
      this.assembledLen += len;
      if ((tag & 1) === 1) {
        const whole = this.assembling;
        this.assembling = null;
        onMessage(this.assembledTag, whole, 0, whole.length);
      }
    };
  }

  read(maxFrames: number): number {
    return this.ring.read(this.onFrame, maxFrames);
  }

  hasData(): boolean {
    return this.ring.hasData();
  }
}
