/**
 * Doorbell: lets producers wake a consumer thread that is sleeping because all of
 * its input rings are empty.
 *
 * Layout (Int32Array over a 128-byte SharedArrayBuffer):
 *   word 0  SEQ       bumped by a producer when it wakes a sleeper (the Atomics.wait word)
 *   word 16 SLEEPING  1 while the consumer is (about to be) asleep; written by the consumer only
 * The two words sit on separate 64-byte cache lines: producers read SLEEPING on every
 * commit, and it only changes when the consumer goes to sleep or wakes up.
 *
 * Lost-wakeup freedom (all accesses are sequentially consistent Atomics):
 *   producer: publish data (Atomics.store)   ; load SLEEPING ; if 1: add SEQ, notify SEQ
 *   consumer: seq = load SEQ ; store SLEEPING=1 ; re-check data (stillEmpty) ; waitAsync(SEQ, seq)
 * Either the producer sees SLEEPING=1 (and bumps SEQ, so the wait returns "not-equal" or
 * is notified), or the consumer's re-check sees the published data and does not wait.
 * With several producers, the one whose CAS SLEEPING 1->0 succeeds does the bump+notify; a
 * producer whose CAS fails knows another producer has already claimed this sleep (or the
 * consumer has not announced yet, in which case its re-check will see the data).
 *
 * The wait itself has two phases (see `syncParkMs`): first a blocking Atomics.wait (a plain
 * futex wait: the cheapest wake-up there is), then Atomics.waitAsync. Both wait on the same
 * SEQ value `seq`, loaded before the one announcement, so the argument above covers the whole
 * sleep: a producer that claims it bumps SEQ, after which whichever phase is current returns
 * ("ok" or "not-equal"); a producer that publishes while SLEEPING is still 1 claims it, even if
 * the blocking phase has just timed out. The consumer clears SLEEPING itself whenever it
 * returns (it re-checks its rings before the next announcement), so a producer never notifies a
 * consumer that is running, except for the one notify racing with a timeout.
 *
 * Node does not keep the event loop alive for a pending Atomics.waitAsync, so while any
 * wait is pending a single shared (otherwise idle) interval timer is ref'ed.
 */

export const DOORBELL_BYTES = 128;
export const DOORBELL_SEQ_WORD = 0;
export const DOORBELL_SLEEPING_WORD = 16;

type WaitAsyncResult =
  | { async: false; value: "not-equal" | "timed-out" | "ok" }
  | { async: true; value: Promise<"ok" | "timed-out"> };
type WaitAsyncFn = (ta: Int32Array, index: number, value: number, timeout?: number) => WaitAsyncResult;

/** Atomics.waitAsync (ES2024; typed here because the project targets the ES2022 lib). */
export const waitAsync: WaitAsyncFn = (() => {
  const fn = (Atomics as unknown as { waitAsync?: WaitAsyncFn }).waitAsync;
  if (typeof fn !== "function") {
    throw new Error("wallaroo transport needs Atomics.waitAsync (Node.js >= 16)");
  }
  return fn;
})();

// ---- keep-alive for pending waitAsync calls (one shared timer per thread) ----
let pendingWaits = 0;
let keepAliveTimer: ReturnType<typeof setInterval> | undefined;
function noop(): void {}

/** @internal Mark one waitAsync as pending (keeps this thread's event loop alive). */
export function keepAliveAcquire(): void {
  if (pendingWaits++ === 0) {
    if (keepAliveTimer === undefined) keepAliveTimer = setInterval(noop, 0x3fffffff);
    else keepAliveTimer.ref();
  }
}
/** @internal */
export function keepAliveRelease(): void {
  if (--pendingWaits === 0 && keepAliveTimer !== undefined) keepAliveTimer.unref();
}

/** Create the shared memory for one consumer's doorbell. */
export function createDoorbell(): SharedArrayBuffer {
  return new SharedArrayBuffer(DOORBELL_BYTES);
}

/**
 * Default number of stillEmpty() re-checks before actually sleeping. See bench/ring.bench.mjs
 * (doorbell ping-pong) for the measurement behind this value; 0 disables spinning.
 */
export const DEFAULT_SPIN_CHECKS = 0;

export class Doorbell {
  readonly sab: SharedArrayBuffer;
  private readonly i32: Int32Array;
  /** Number of stillEmpty() re-checks done before announcing sleep (0 = none). */
  spinChecks: number = DEFAULT_SPIN_CHECKS;
  /**
   * Milliseconds of the blocking phase of a sleep (Atomics.wait) before the rest is waited with
   * Atomics.waitAsync; 0 (the default) = no blocking phase. While blocked the thread's event loop
   * does not run (timers, messages from other threads, socket callbacks wait), so a thread sets
   * this only where that short delay is acceptable, and never on a thread that may not block
   * (a browser's main thread). Measured on the 2-core VM (bench/ring.bench.mjs ping-pong): a
   * wake-up from the blocking phase costs both threads together about half the CPU of one
   * through waitAsync, which posts a task to the sleeper's event loop and resolves a promise.
   */
  syncParkMs = 0;
  /** true if the last sleep() reached its Atomics.waitAsync phase (so the thread's event loop ran while it slept) */
  parkedAsync = false;
  private readonly onWake: () => void;

  constructor(sab: SharedArrayBuffer) {
    if (!(sab instanceof SharedArrayBuffer) || sab.byteLength < DOORBELL_BYTES) {
      throw new TypeError("Doorbell needs a SharedArrayBuffer from createDoorbell()");
    }
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, DOORBELL_BYTES >> 2);
    const i32 = this.i32;
    this.onWake = () => {
      Atomics.store(i32, DOORBELL_SLEEPING_WORD, 0);
      keepAliveRelease();
    };
  }

  /**
   * Producer: wake the consumer if it is sleeping. One Atomics.load when it is not. The first
   * ringer claims the sleep announcement (CAS 1 -> 0), so while the woken consumer is still on
   * its way back, further commits (from this or other producers) do not notify again.
   */
  ring(): void {
    const i32 = this.i32;
    if (
      Atomics.load(i32, DOORBELL_SLEEPING_WORD) !== 0 &&
      Atomics.compareExchange(i32, DOORBELL_SLEEPING_WORD, 1, 0) === 1
    ) {
      Atomics.add(i32, DOORBELL_SEQ_WORD, 1);
      Atomics.notify(i32, DOORBELL_SEQ_WORD);
    }
  }

  /**
   * Consumer: sleep until ring() or timeoutMs. Resolves immediately if stillEmpty() turns
   * false during the optional spin or after announcing sleep. Spurious early resolution
   * is possible (a stale ring); callers loop on their own condition.
   */
  sleep(stillEmpty: () => boolean, timeoutMs: number): Promise<void> {
    const i32 = this.i32;
    this.parkedAsync = false;
    for (let i = this.spinChecks; i > 0; i--) {
      if (!stillEmpty()) return Promise.resolve();
    }
    const seq = Atomics.load(i32, DOORBELL_SEQ_WORD);
    Atomics.store(i32, DOORBELL_SLEEPING_WORD, 1);
    if (!stillEmpty()) {
      Atomics.store(i32, DOORBELL_SLEEPING_WORD, 0);
      return Promise.resolve();
    }
    if (timeoutMs < 0) timeoutMs = 0;
    if (this.syncParkMs > 0) {
      const blockMs = Math.min(this.syncParkMs, timeoutMs);
      // "ok" / "not-equal": a producer claimed this sleep (SEQ moved on). "timed-out": still
      // announced, so the async phase below waits on the same `seq` (see the class comment).
      if (Atomics.wait(i32, DOORBELL_SEQ_WORD, seq, blockMs) !== "timed-out" || blockMs >= timeoutMs) {
        Atomics.store(i32, DOORBELL_SLEEPING_WORD, 0);
        return Promise.resolve();
      }
      timeoutMs -= blockMs;
    }
    const r = waitAsync(i32, DOORBELL_SEQ_WORD, seq, timeoutMs);
    if (!r.async) {
      Atomics.store(i32, DOORBELL_SLEEPING_WORD, 0);
      return Promise.resolve();
    }
    this.parkedAsync = true;
    keepAliveAcquire();
    return r.value.then(this.onWake);
  }
}
