/**
 * A worker thread: owns the state instances whose keys hash to it, runs the
 * stateless steps of the messages that reach it, and moves data only through its
 * rings. A source ring is read only while none of the outputs its messages can
 * need is backed up (per path: a stalled sink stops the sources that feed it, not
 * the others), which is what makes a slow sink slow those sources down; see the
 * loop for how peer rings are drained.
 */
import { parentPort, workerData } from "node:worker_threads";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { compilePlan } from "../topology/plan.js";
import { loadAppModule, setupApplication, userModules } from "./loader.js";
import { createSerde } from "../transport/serde.js";
import { RingReader, RingWriter } from "../transport/ring.js";
import { Doorbell } from "../transport/doorbell.js";
import { ChannelReader, ChannelWriter } from "../transport/channel.js";
import { Executor, type LateSink } from "./executor.js";
import { WINDOW_TICK_MS } from "../windows/runtime.js";
import {
  congestedWorkersWord,
  congestionLoggedWord,
  StatusWord,
  workerSlot,
  type Wiring,
} from "../transport/wiring.js";
import { createLogger, errorMessage, RateLimitedErrors } from "../core/log.js";
import { keyTagged, RecordWriter, type EncodedRecords } from "../recovery/store.js";
import { DeadLetters, type DeadLetterOptions } from "./dead-letter.js";
import { ErrorBatch } from "../metrics/history.js";
import { toErrorInfo, type FromWorker, type ToWorker, type WorkerFatalReason } from "../control/protocol.js";

export interface WorkerInit {
  index: number;
  moduleUrl: string;
  args: string[];
  wiring: Wiring;
  failFast: boolean;
  statsIntervalMs: number;
  /** window steps: --idle-timeout in ms */
  idleTimeoutMs?: number;
  /** resilience on: track the instances marked saveState, answer checkpoint requests */
  resilience: boolean;
  /** --dead-letter: where this worker writes the messages it drops on errors in user code */
  deadLetter?: DeadLetterOptions | null;
  /** metrics on: this worker's counters live in this buffer (metrics/layout.ts), and samples are timed */
  metrics?: SharedArrayBuffer;
}

/** frames taken from one peer ring before looking at the others */
const BATCH = 1024;
/** source frames (runs of messages) taken from one source ring before looking at the others */
const SOURCE_BATCH = 16;
/** bytes queued for peers beyond which a worker stops draining its peer rings too */
const PEER_QUEUE_CAP = 64 * 1024 * 1024;
/**
 * bytes queued for one sink beyond which a worker stops draining its peer rings.
 * Below it, peer rings keep being read while a sink is backed up, so that messages
 * of other pipelines that cross workers keep flowing; the stalled pipeline's own
 * traffic through the peer rings is bounded (its sources stop everywhere as soon as
 * one worker is backed up on the sink, so only what was already in flight arrives:
 * about 8 MiB of peer rings into each worker, times the pipeline's fan-out).
 */
const SINK_QUEUE_CAP = 16 * 1024 * 1024;
/** a sink backed up on a worker for this long is logged (once per episode, by one worker) */
const CONGESTION_LOG_MS = 1000;
/** how long the loop may run before letting the event loop handle control messages */
const SLICE_MS = 10;
/**
 * Outputs are published when this much is written, or every COMMIT_MS, or before
 * the worker sleeps: each publish may wake a sleeping consumer (a futex syscall
 * and an event-loop turn on its side), so publishing every small batch cost a
 * word-count worker ~10% of its time in wake-ups.
 */
const COMMIT_BYTES = 64 * 1024;
const COMMIT_MS = 0.2;
/**
 * How long an idle worker blocks in Atomics.wait (a plain futex wait) before it waits with
 * Atomics.waitAsync, which lets its event loop run. A wake-up from the blocking phase is the
 * cheaper one (bench/ANALYSIS.md); the cost is that control messages and user timers wait up
 * to this long, which is why it is short, and why the loop below still yields to the event
 * loop every SLICE_MS when blocking sleeps alone keep it busy.
 */
const SYNC_PARK_MS = 1;
/**
 * ttl expiry (Executor.expire): entries of the touch maps looked at per timer call, and
 * the delay to the next call while a pass is still going (a pass over millions of keys is
 * spread over many short calls between batches, never one long stall).
 */
const EXPIRY_BUDGET = 32 * 1024;
const EXPIRY_CONTINUE_MS = 10;

export type WorkerReport = FromWorker;

/**
 * A sink's channel that counts the bytes handed to it (the executor sends TCP output
 * as gathered runs, once per batch, so this costs nothing per message): with the
 * bytes the sink reports as delivered, a stop tells how much output was lost.
 */
class CountingWriter extends ChannelWriter {
  sentBytes = 0;
  override send(tag: number, src: Uint8Array, start: number, end: number): void {
    this.sentBytes += end - start;
    super.send(tag, src, start, end);
  }
}

/** set once the worker reported "ready": a failure after that is not a start-up failure */
let started = false;
/** set once a fatal error was reported: the loop stops taking messages, the coordinator stops the engine */
let fatal = false;

function reportFatal(reason: WorkerFatalReason, where: string, err: unknown): void {
  if (fatal) return;
  fatal = true;
  parentPort!.postMessage({
    type: "fatal",
    worker: (workerData as WorkerInit).index,
    reason,
    where,
    error: toErrorInfo(err),
  } satisfies FromWorker);
}

/**
 * Errors user code raises outside any step: an exception thrown from a timer or
 * callback it scheduled, a promise it left rejected. Without these handlers they
 * would end the thread (and the process) with a raw stack. They follow the policy
 * of errors in steps: logged with the stack and counted, or fatal with --fail-fast.
 * Which step scheduled them cannot be known (the step has returned by then).
 * process.exit() in user code would silently end this one worker: it is reported
 * as fatal, with the caller's stack, and the thread then exits as asked.
 */
function guardUserCode(
  init: WorkerInit,
  log: ReturnType<typeof createLogger>,
  countError: () => void,
  currentStep: () => string | null,
): void {
  const errors = new RateLimitedErrors(log);
  const asyncError = (
    reason: "uncaught-exception" | "unhandled-rejection",
    err: unknown,
    step: string | null = null,
  ) => {
    const where =
      step !== null
        ? `a timer scheduled by ${step}`
        : reason === "uncaught-exception"
          ? "user code outside any step (an exception thrown from a timer or callback)"
          : "user code outside any step (a promise rejected and not handled)";
    if (init.failFast || !started) return reportFatal(started ? reason : "start", where, err);
    countError();
    errors.report(where, err, { userCode: true, reason });
  };
  process.on("uncaughtException", (err) => asyncError("uncaught-exception", err));
  process.on("unhandledRejection", (err) => asyncError("unhandled-rejection", err));
  // A timer scheduled while a step runs remembers that step, so that an exception it
  // throws later is reported as that step's. (A rejected promise carries no such trace:
  // it stays "outside any step".) The wrappers keep every other property of the originals
  // (util.promisify.custom included), and cost nothing to timers scheduled outside steps.
  for (const name of ["setTimeout", "setInterval", "setImmediate"] as const) {
    const original = globalThis[name] as unknown as (fn: unknown, ...rest: unknown[]) => unknown;
    const wrapper = function (this: unknown, fn: unknown, ...rest: unknown[]) {
      const step = typeof fn === "function" ? currentStep() : null;
      if (step === null) return original.call(this, fn, ...rest);
      const callback = fn as (...args: unknown[]) => unknown;
      return original.call(
        this,
        function (this: unknown, ...args: unknown[]) {
          try {
            return callback.apply(this, args);
          } catch (err) {
            asyncError("uncaught-exception", err, step);
            return undefined;
          }
        },
        ...rest,
      );
    };
    Object.defineProperties(wrapper, Object.getOwnPropertyDescriptors(original));
    (globalThis as Record<string, unknown>)[name] = wrapper;
  }
  const exit = process.exit.bind(process);
  process.exit = ((code?: number | string | null) => {
    const err = new Error(`user code called process.exit(${code ?? ""}) on worker ${init.index}`);
    err.name = "ProcessExit";
    reportFatal("process-exit", "user code", err);
    exit(code ?? 0);
  }) as typeof process.exit;
}

/** An error in user code, as shown on the dashboard (metrics on only). */

async function main(init: WorkerInit): Promise<void> {
  const port = parentPort!;
  const log = createLogger("wallaroo.worker", { worker: init.index });
  let countError = () => {};
  /** the step user code runs in now, or null between batches (engine code) */
  let currentStep = (): string | null => null;
  /** true while the loop hands messages to the executor (user code may run) */
  let stepping = false;
  guardUserCode(
    init,
    log,
    () => countError(),
    () => currentStep(),
  );
  const mod = await loadAppModule(init.moduleUrl);
  const plan = compilePlan(setupApplication(mod, init.args, init.moduleUrl), init.wiring.workers);
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
    await userModules(),
  );
  const w = init.wiring;
  const me = init.index;

  const peers = w.peerRings[me].map((sab, v) =>
    sab ? new ChannelWriter(new RingWriter(sab, new Doorbell(w.workerBells[v]))) : null,
  );
  const sinks = w.sinkRings[me].map((sab, k) => new CountingWriter(new RingWriter(sab, new Doorbell(w.sinkBells[k]))));
  const outputs = [...peers.filter((c): c is ChannelWriter => c !== null), ...sinks];

  const errors = new RateLimitedErrors(log);
  const deadLetters = init.deadLetter ? new DeadLetters(plan, me, init.deadLetter, log) : null;
  const onError = (where: string, err: unknown, payload?: Uint8Array, value?: unknown) => {
    // Written before anything else, synchronously: `payload` may be a view of a ring slot.
    if (deadLetters !== null) deadLetters.write(where, err, payload, value);
    if (init.failFast) {
      // Nothing after the failing message may reach a sink, not even the rest of this batch.
      executor.halt();
      return reportFatal("user-code-error", where, err);
    }
    errors.report(where, err);
    // Kept for the dashboard's exception history (metrics on): one entry per step and message,
    // counted, with the stack and a preview of the value (cut to size), sent with the next stats report.
    if (recentErrors !== null) recentErrors.add(where, err, errorMessage(err), payload, value);
  };
  const recentErrors = init.metrics ? new ErrorBatch(me) : null;
  // Late events (window steps): each is counted (executor), logged at most once a second per
  // step with how many were not logged, and a dropped one goes to --dead-letter with its value.
  const lateLogged = new Map<string, { at: number; suppressed: number }>();
  const onLate: LateSink = (where, value, eventTime, watermark, dropped) => {
    if (dropped && deadLetters !== null) {
      deadLetters.write(
        where,
        new Error(`late event: event time ${eventTime} is behind the watermark ${watermark}`),
        undefined,
        value,
      );
    }
    const now = Date.now();
    const seen = lateLogged.get(where);
    if (seen !== undefined && now - seen.at < 1000) {
      seen.suppressed++;
      return;
    }
    lateLogged.set(where, { at: now, suppressed: 0 });
    log.warn(
      { where, eventTime, watermark, dropped, suppressedSinceLast: seen?.suppressed ?? 0 },
      `late event in ${where}: event time ${eventTime} is behind the watermark ${watermark}; ` +
        (dropped ? "dropped by the late-data policy" : "kept by the late-data policy"),
    );
  };
  const executor = new Executor(plan, me, serde, peers, sinks, onError, init.metrics, true, false, {
    idleTimeoutMs: init.idleTimeoutMs,
    onLate,
  });
  const blockedBase = executor.layout.blockedMs;
  countError = () => {
    executor.errorCount++;
  };
  currentStep = () => (stepping ? executor.currentStep : null);
  const peerReaders = w.peerRings
    .map((row) => row[me])
    .filter((sab): sab is SharedArrayBuffer => sab !== null)
    .map((sab) => new ChannelReader(new RingReader(sab), executor.handler()));
  const sourceReaders = w.sourceRings.map((row) => new ChannelReader(new RingReader(row[me]), executor.handler()));
  const bell = new Doorbell(w.workerBells[me]);
  bell.syncParkMs = SYNC_PARK_MS;
  const status = new StatusWord(w.status, workerSlot(me));
  // Per-path backpressure. A message of a source reaches only its own pipeline's sinks:
  // the executor emits to the sinks of the pipeline of the step it ran, and a state shared
  // by two pipelines (market_spread) shares instances, not messages. So a source is held
  // back only by the sinks of its pipeline (on any worker: see `congestion`), and, if its
  // pipeline has a state step, by a backed-up peer ring (peer rings carry every pipeline).
  const reach = plan.sources.map((src) => plan.pipelines[src.pipeline].sinks);
  const crossesWorkers = plan.sources.map((src) =>
    plan.steps.some((st) => st.pipeline === src.pipeline && st.state >= 0),
  );
  const congestion = new Int32Array(w.sinkCongestion);
  const sinkOverCap = () => {
    for (let i = 0; i < sinks.length; i++) if (sinks[i].pendingBytes > SINK_QUEUE_CAP) return true;
    return false;
  };
  let peerBlocked = false;
  const peersBlocked = () => {
    for (let i = 0; i < peers.length; i++) if (peers[i] !== null && peers[i]!.blocked) return true;
    return false;
  };
  /** true while source `s` must not be read: an output its messages may need is backed up here or elsewhere */
  const sourceHeld = (s: number) => {
    if (peerBlocked && crossesWorkers[s]) return true;
    const r = reach[s];
    for (let i = 0; i < r.length; i++)
      if (sinks[r[i]].blocked || Atomics.load(congestion, congestedWorkersWord(r[i])) > 0) return true;
    return false;
  };
  /**
   * Publishes this worker's backed-up sinks in `congestion` (a count of backed-up workers per
   * sink) on every change, and logs an episode that lasts CONGESTION_LOG_MS: once, by the
   * first worker to claim it, and its end by the last worker to leave it.
   */
  const wasBlocked = sinks.map(() => false);
  const blockedSince = sinks.map(() => 0);
  const sinkLabel = (k: number) => plan.sinks[k].label;
  const pipelinesOf = (k: number) =>
    plan.pipelines
      .filter((p) => p.sinks.includes(k))
      .map((p) => JSON.stringify(p.name))
      .join(", ");
  const trackCongestion = (now: number) => {
    for (let k = 0; k < sinks.length; k++) {
      const b = sinks[k].blocked;
      if (b !== wasBlocked[k]) {
        wasBlocked[k] = b;
        if (b) {
          Atomics.add(congestion, congestedWorkersWord(k), 1);
          blockedSince[k] = now;
        } else if (
          Atomics.sub(congestion, congestedWorkersWord(k), 1) === 1 &&
          Atomics.compareExchange(congestion, congestionLoggedWord(k), 1, 0) === 1
        ) {
          log.info(
            { sink: sinkLabel(k) },
            `sink ${sinkLabel(k)} takes output again; pipeline(s) ${pipelinesOf(k)} read their sources again`,
          );
        }
      } else if (
        b &&
        now - blockedSince[k] > CONGESTION_LOG_MS &&
        Atomics.compareExchange(congestion, congestionLoggedWord(k), 0, 1) === 0
      ) {
        const queued = sinks[k].pendingBytes + (sinks[k].ring.capacity - sinks[k].freeBytes());
        log.warn(
          { sink: sinkLabel(k), queuedBytes: queued, blockedMs: Math.round(now - blockedSince[k]) },
          `sink ${sinkLabel(k)} is backed up (${queued} bytes queued for it on worker ${me} for ${Math.round(now - blockedSince[k])} ms): ` +
            `pipeline(s) ${pipelinesOf(k)} stop reading their sources until it takes output again; other pipelines keep flowing`,
        );
      }
    }
  };
  const peerOutputs = peers.filter((c): c is ChannelWriter => c !== null);
  const peerQueued = () => {
    let q = 0;
    for (let i = 0; i < peerOutputs.length; i++) q += peerOutputs[i].pendingBytes;
    return q;
  };
  const anyBlocked = () => {
    for (let i = 0; i < outputs.length; i++) if (outputs[i].blocked) return true;
    return false;
  };
  const inputsEmpty = () => !peerReaders.some((r) => r.hasData()) && !sourceReaders.some((r) => r.hasData());

  const postStats = (requested = false) => {
    if (init.metrics) executor.countInstances();
    port.postMessage({
      type: "stats",
      worker: me,
      in: Array.from(executor.inCount),
      taken: Array.from(executor.takenCount),
      out: Array.from(executor.outCount),
      outBytes: sinks.map((c) => c.sentBytes),
      errors: executor.errorCount,
      deleted: Array.from(executor.deletedCount),
      expired: Array.from(executor.expiredCount),
      late: executor.windows !== null ? executor.windows.late.slice() : undefined,
      // Counted only when asked (at a stop): it visits every key of the window states.
      openWindows: requested && executor.windows !== null ? executor.openWindows() : undefined,
      queuedBytes: outputs.reduce((n, c) => n + c.pendingBytes, 0),
      recentErrors: recentErrors?.take(),
      deadLetters:
        deadLetters !== null
          ? { written: deadLetters.written, failed: deadLetters.failed, lastError: deadLetters.lastError }
          : undefined,
    } satisfies WorkerReport);
  };
  setInterval(postStats, init.statsIntervalMs).unref();
  // Processing time for ttl states: the loop sets it every pass (a touch is stamped with it),
  // this timer removes what was not touched for a ttl; it runs between passes, like a checkpoint.
  const ttl = executor.hasTtl;
  executor.setTime(performance.now());
  if (ttl) {
    const ttls = plan.states.map((s) => s.spec.ttl).filter((t): t is number => t !== undefined);
    // Often enough for a pass to start on time (a sixteenth of the shortest ttl), at most once a second.
    const sweepMs = Math.min(1000, Math.max(EXPIRY_CONTINUE_MS, Math.min(...ttls) / 16));
    const sweep = () => {
      if (!fatal) executor.expire(performance.now(), EXPIRY_BUDGET);
      setTimeout(sweep, executor.expiring ? EXPIRY_CONTINUE_MS : sweepMs).unref();
    };
    setTimeout(sweep, sweepMs).unref();
  }
  if (init.resilience) executor.trackDirty();
  const snapshotCodec = init.resilience ? serde.standalone() : null;
  port.on("message", (msg: ToWorker) => {
    if (msg.type === "report") postStats(true);
    else if (msg.type === "checkpoint") {
      // Sent only while the engine is quiescent: no message is being processed.
      // The log records are encoded here, in parallel on every worker; the coordinator only appends them.
      let records: EncodedRecords;
      try {
        const w = new RecordWriter();
        executor.takeDirty((stateId, key, inst) => {
          const state = plan.states[stateId];
          const k = keyTagged(state.partitioned, key);
          if (inst === null) {
            // Removed (DELETE or ttl): a tombstone, so that a restart does not bring it back.
            w.add(state.spec.name, k.tag, k.key, null);
            return;
          }
          let bytes: Uint8Array;
          try {
            bytes = snapshotCodec!.pack(inst);
          } catch (err) {
            // The serializer's message names the field; say which instance it is in.
            const which = `state ${JSON.stringify(state.spec.name)}${state.partitioned ? ` key ${typeof key === "bigint" ? `${key}n` : JSON.stringify(key)}` : ""}`;
            throw new Error(`${which} (class ${state.spec.stateClass.name}): ${errorMessage(err)}`);
          }
          // A copy: msgpackr may reuse its buffer when the record around it is packed.
          w.add(state.spec.name, k.tag, k.key, Uint8Array.from(bytes));
        });
        records = w.finish();
      } catch (err) {
        reportFatal("checkpoint-serialization", "serializing state for a checkpoint", err);
        return;
      }
      const buffer = records.bytes.buffer as ArrayBuffer;
      port.postMessage({ type: "snapshot", worker: me, id: msg.id, records } satisfies WorkerReport, [buffer]);
    } else if (msg.type === "restore") {
      const entries = msg.entries;
      try {
        executor.restore(entries.map(([id, key, bytes]) => [id, key, snapshotCodec!.unpack(bytes, 0, bytes.length)]));
      } catch (err) {
        reportFatal("restore", "restoring state from the checkpoint store", err);
        return;
      }
      port.postMessage({ type: "restored", worker: me, instances: entries.length } satisfies WorkerReport);
    }
  });
  port.postMessage({ type: "ready" } satisfies WorkerReport);
  started = true;
  // Window steps fire without new messages: a tick every WINDOW_TICK_MS wakes the loop.
  let tickDue = false;
  if (executor.windows !== null) {
    setInterval(() => {
      tickDue = true;
      bell.ring();
    }, WINDOW_TICK_MS).unref();
  }

  let sliceStart = performance.now();
  let lastCommit = sliceStart;
  /** the plan has steps that may return a Promise: the loop drains their queues (always, unless only window steps) */
  const async = plan.steps.some((st) => st.async !== null);
  for (;;) {
    if (fatal) {
      await new Promise(() => {}); // the coordinator is stopping the engine
    }
    for (let i = 0; i < outputs.length; i++) if (outputs[i].blocked) outputs[i].flush();
    if (ttl) executor.setTime(performance.now());
    let n = 0;
    // Backpressure without deadlock, per path:
    // - A source ring is skipped while sourceHeld(): one of its pipeline's sinks is backed
    //   up on some worker, or (for a pipeline with a state step) a peer ring is.
    // - Peer rings are drained even while a sink or a peer is backed up, so that two workers
    //   waiting on each other's rings cannot deadlock and messages of other pipelines that
    //   cross workers keep flowing; this stops only at SINK_QUEUE_CAP bytes queued for one
    //   sink, or PEER_QUEUE_CAP for the peers, which bounds memory. Stopping at the sink
    //   cap cannot deadlock: a sink never waits for a worker, so it drains by itself. (Peer
    //   rings carry every pipeline, so a stalled pipeline that fills a worker's sink queue to
    //   the cap does hold up the other pipelines' messages that cross to that worker; its
    //   sources being stopped everywhere at the first backed-up worker keeps that rare.)
    // Async steps (runtime/async-steps.ts): results that may go on now, first. While a step
    // has `concurrency` messages queued, no input is taken (neither rings nor sources): the
    // rings fill and the sources stop reading, as for a full sink. That cannot deadlock:
    // the calls settle by themselves (or time out), whatever the other workers do.
    stepping = true;
    if (async) n += executor.drainAsync();
    const readPeers = !sinkOverCap() && peerQueued() < PEER_QUEUE_CAP;
    if (readPeers) {
      // While nothing is queued at an async step (always, for an application whose calls
      // return plain values) a ring is read as before, BATCH frames at a time; once something
      // is, a frame at a time, stopping at the limit. Calls in flight never exceed the limit
      // (queued messages wait to start); what is queued beyond it is bounded by the frames
      // read in one pass (the rings' capacity), whatever a stalled lookup does.
      for (let i = 0; i < peerReaders.length; i++) {
        if (!async || executor.asyncPending === 0) n += peerReaders[i].read(BATCH);
        else
          for (let f = 0; f < BATCH && !executor.asyncFull; f++) {
            const got = peerReaders[i].read(1);
            n += got;
            if (got === 0) break;
          }
      }
    }
    peerBlocked = peersBlocked();
    let heldBack = false;
    // One source frame is a run of many messages: take them one frame at a time and
    // stop as soon as an output of that source backs up, so the queue stays at about one run's outputs.
    for (let i = 0; i < sourceReaders.length; i++) {
      for (let f = 0; f < SOURCE_BATCH; f++) {
        if (sourceHeld(i) || (async && executor.asyncFull)) {
          if (sourceReaders[i].hasData()) heldBack = true;
          break;
        }
        const got = sourceReaders[i].read(1);
        n += got;
        if (got === 0) break;
        peerBlocked = peersBlocked();
      }
    }
    // What this pass gathered for peers and sinks goes to their rings; it is published only
    // between passes. (Publishing every COMMIT_MS within a long pass too, for latency, cost
    // market_spread on 1 worker ~15% more CPU per message: bench/ANALYSIS.md.)
    if (tickDue) {
      tickDue = false;
      executor.windowTick();
    }
    executor.flushPeers();
    executor.flushSinks();
    stepping = false;
    const now = performance.now();
    trackCongestion(now);
    if (n === 0 || now - lastCommit > COMMIT_MS) {
      for (let i = 0; i < outputs.length; i++) outputs[i].commit();
      lastCommit = now;
    } else {
      for (let i = 0; i < outputs.length; i++) if (outputs[i].uncommitted >= COMMIT_BYTES) outputs[i].commit();
    }
    if (n === 0 && async && executor.asyncPending > 0) {
      // Calls in flight: not idle (a checkpoint or a stop waits for them, as the coordinator
      // waits for every worker to be idle), and not a blocking sleep either, which would keep
      // their promises from settling. Wait for one to settle, or 1 ms to look at the inputs.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        executor.whenSettled(),
        new Promise<void>((r) => {
          timer = setTimeout(r, 1);
        }),
      ]);
      clearTimeout(timer);
      sliceStart = performance.now();
    } else if (n === 0) {
      if (anyBlocked() || heldBack) {
        // Waiting for a consumer to make room (here, or on another worker for a source held
        // back: no doorbell rings when that clears); peer input must still be drained, so poll rather than block.
        const t = performance.now();
        await new Promise((r) => setTimeout(r, 1));
        // Time blocked, charged to every output that was full (slots: per peer worker, then per sink).
        const waited = performance.now() - t;
        for (let v = 0; v < peers.length; v++) if (peers[v]?.blocked) executor.slots[blockedBase + v] += waited;
        for (let k = 0; k < sinks.length; k++)
          if (sinks[k].blocked) executor.slots[blockedBase + peers.length + k] += waited;
        sliceStart = performance.now();
      } else {
        await status.sleepIdle(bell, inputsEmpty);
        // A wake-up from the blocking phase did not let the event loop run: the slice goes on.
        if (bell.parkedAsync) sliceStart = performance.now();
        else if (performance.now() - sliceStart > SLICE_MS) {
          await yieldToEventLoop();
          sliceStart = performance.now();
        }
      }
    } else if (performance.now() - sliceStart > SLICE_MS) {
      await yieldToEventLoop();
      sliceStart = performance.now();
    }
  }
}

main(workerData as WorkerInit).catch((err) => {
  if (started) reportFatal("engine", `worker ${(workerData as WorkerInit).index} loop`, err);
  else reportFatal("start", "loading the application on the worker", err);
});
