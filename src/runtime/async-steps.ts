/**
 * The calls of one step that returned a Promise (or wait behind one), on one worker:
 * Flink's async I/O for the step runner (src/runtime/executor.ts).
 *
 * Invariants:
 * - `entries` holds the step's messages in the order they reached the step. While it is
 *   not empty, every later message of the step joins it (even one whose call would return
 *   a plain value), so that in ordered mode results go on in input order.
 * - At most `limit` calls are running (started, not settled): a message joins as WAITING
 *   and its call starts when one ends. The worker stops taking input while `full`.
 * - A state step runs at most one call per key: a key's message stays WAITING while an
 *   earlier message of the same key is still queued (so a key's messages also finish, and
 *   go on, in their order, in unordered mode too).
 * - The executor takes finished entries off (ordered: only from the head) and runs the
 *   rest of their pipeline; the settle callbacks only record the result, so user code
 *   after the step never runs from a microtask.
 */
import type { Key } from "../topology/spec.js";

export { syncOnly } from "../core/sync-only.js";

export const WAITING = 0;
export const RUNNING = 1;
export const DONE = 2;
export const FAILED = 3;

export class AsyncEntry {
  status = WAITING;
  /** the call's result (DONE) or error (FAILED) */
  result: unknown = undefined;
  timer: ReturnType<typeof setTimeout> | null = null;
  constructor(
    /** the message the step received */
    readonly value: unknown,
    readonly key: Key,
    /** its latency sample's start (0: not sampled) and its event time, as the executor had them */
    readonly sampleT0: number,
    readonly eventTime: number,
  ) {}
}

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`the call did not settle within its timeout of ${ms} ms; the message is dropped`);
    this.name = "TimeoutError";
  }
}

export class AsyncQueue {
  entries: AsyncEntry[] = [];
  running = 0;
  constructor(
    readonly limit: number,
    readonly timeout: number,
    readonly unordered: boolean,
    /** a state step: one call per key at a time (see `start`) */
    private readonly keyed: boolean,
    /** called when a call settles (wakes the worker loop or the test driver) */
    private readonly onSettle: () => void,
  ) {}

  get full(): boolean {
    return this.entries.length >= this.limit;
  }

  add(e: AsyncEntry): void {
    this.entries.push(e);
  }

  /** An entry whose call ran at once (the queue was empty) and returned a Promise. */
  addRunning(e: AsyncEntry, promise: Promise<unknown>): void {
    this.entries.push(e);
    this.watch(e, promise);
  }

  private watch(e: AsyncEntry, promise: Promise<unknown>): void {
    e.status = RUNNING;
    this.running++;
    if (this.timeout > 0) {
      e.timer = setTimeout(() => this.settle(e, FAILED, new TimeoutError(this.timeout)), this.timeout);
    }
    promise.then(
      (v) => this.settle(e, DONE, v),
      (err) => this.settle(e, FAILED, err),
    );
  }

  /**
   * Starts WAITING entries, in order, while fewer than `limit` calls run; `call` runs the
   * step's function on an entry and returns what it returned (it throws what it throws).
   * Returns true when some entry finished at once (a plain value or a throw).
   */
  start(call: (e: AsyncEntry) => unknown): boolean {
    let finished = false;
    // State steps: the keys of the entries before this one. An entry waits while an earlier
    // one of its key is still queued, whatever its status: until the executor took it off,
    // its result (a DELETE, saveState) is not applied to the instance the next call would use.
    const before: Set<Key> | null = this.keyed ? new Set() : null;
    for (let i = 0; i < this.entries.length && this.running < this.limit; i++) {
      const e = this.entries[i];
      if (before !== null) {
        if (before.has(e.key)) continue;
        before.add(e.key);
      }
      if (e.status !== WAITING) continue;
      let r: unknown;
      try {
        r = call(e);
      } catch (err) {
        this.finish(e, FAILED, err);
        finished = true;
        continue;
      }
      if (r instanceof Promise) this.watch(e, r);
      else {
        this.finish(e, DONE, r);
        finished = true;
      }
    }
    return finished;
  }

  /** A call settled (or timed out): recorded once; a result after a timeout is ignored. */
  private settle(e: AsyncEntry, status: number, result: unknown): void {
    if (e.status !== RUNNING) return;
    if (e.timer !== null) clearTimeout(e.timer);
    e.timer = null;
    this.running--;
    this.finish(e, status, result);
    this.onSettle();
  }

  private finish(e: AsyncEntry, status: number, result: unknown): void {
    e.status = status;
    e.result = result;
  }

  /**
   * Takes off the entries whose results may go on now: ordered, the finished ones at the
   * head; unordered, every finished one. Visits them in that order.
   */
  take(visit: (e: AsyncEntry) => void): number {
    const entries = this.entries;
    let n = 0;
    if (!this.unordered) {
      while (n < entries.length && entries[n].status >= DONE) n++;
      if (n === 0) return 0;
      const done = entries.splice(0, n);
      for (let i = 0; i < done.length; i++) visit(done[i]);
      return n;
    }
    const done: AsyncEntry[] = [];
    let w = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.status >= DONE) done.push(e);
      else entries[w++] = e;
    }
    entries.length = w;
    for (let i = 0; i < done.length; i++) visit(done[i]);
    return done.length;
  }
}
