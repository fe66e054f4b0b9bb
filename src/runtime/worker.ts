/**
 * A worker thread: owns the state instances whose keys hash to it, runs the
 * stateless steps of the messages that reach it, and moves data only through its
 * rings. Source rings are read only while no output is queued, which is what makes
 * a slow sink slow the sources down; see the loop for how peer rings are drained.
 */
import { parentPort, workerData } from "node:worker_threads";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { compilePlan } from "../topology/plan.js";
import { loadAppModule, setupApplication } from "./loader.js";
import { createSerde } from "../transport/serde.js";
import { RingReader, RingWriter } from "../transport/ring.js";
import { Doorbell } from "../transport/doorbell.js";
import { ChannelReader, ChannelWriter } from "../transport/channel.js";
import { Executor } from "./executor.js";
import { StatusWord, workerSlot, type Wiring } from "./wiring.js";
import { createLogger, RateLimitedErrors } from "./log.js";
import { keyTagged, RecordWriter, type EncodedRecords } from "../recovery/store.js";
import { toErrorInfo, type FromWorker, type ToWorker, type WorkerFatalReason } from "./protocol.js";

export interface WorkerInit {
  index: number;
  moduleUrl: string;
  args: string[];
  wiring: Wiring;
  failFast: boolean;
  statsIntervalMs: number;
  /** resilience on: track the instances marked saveState, answer checkpoint requests */
  resilience: boolean;
}

/** frames taken from one peer ring before looking at the others */
const BATCH = 1024;
/** source frames (runs of messages) taken from one source ring before looking at the others */
const SOURCE_BATCH = 16;
/** bytes queued for peers beyond which a worker stops draining its peer rings too */
const PEER_QUEUE_CAP = 64 * 1024 * 1024;
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
  parentPort!.postMessage({ type: "fatal", worker: (workerData as WorkerInit).index, reason, where, error: toErrorInfo(err) } satisfies FromWorker);
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
function guardUserCode(init: WorkerInit, log: ReturnType<typeof createLogger>, countError: () => void, currentStep: () => string | null): void {
  const errors = new RateLimitedErrors(log);
  const asyncError = (reason: "uncaught-exception" | "unhandled-rejection", err: unknown, step: string | null = null) => {
    const where = step !== null
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
      return original.call(this, function (this: unknown, ...args: unknown[]) {
        try {
          return callback.apply(this, args);
        } catch (err) {
          asyncError("uncaught-exception", err, step);
          return undefined;
        }
      }, ...rest);
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

async function main(init: WorkerInit): Promise<void> {
  const port = parentPort!;
  const log = createLogger("wallaroo.worker", { worker: init.index });
  let countError = () => {};
  /** the step user code runs in now, or null between batches (engine code) */
  let currentStep = (): string | null => null;
  /** true while the loop hands messages to the executor (user code may run) */
  let stepping = false;
  guardUserCode(init, log, () => countError(), () => currentStep());
  const mod = await loadAppModule(init.moduleUrl);
  const plan = compilePlan(setupApplication(mod, init.args, init.moduleUrl), init.wiring.workers);
  const serde = createSerde(mod, plan.states.map((s) => s.spec.stateClass));
  const w = init.wiring;
  const me = init.index;

  const peers = w.peerRings[me].map((sab, v) => (sab ? new ChannelWriter(new RingWriter(sab, new Doorbell(w.workerBells[v]))) : null));
  const sinks = w.sinkRings[me].map((sab, k) => new CountingWriter(new RingWriter(sab, new Doorbell(w.sinkBells[k]))));
  const outputs = [...peers.filter((c): c is ChannelWriter => c !== null), ...sinks];

  const errors = new RateLimitedErrors(log);
  const onError = (where: string, err: unknown) => {
    if (init.failFast) return reportFatal("user-code-error", where, err);
    errors.report(where, err);
  };
  const executor = new Executor(plan, me, serde, peers, sinks, onError);
  countError = () => { executor.errorCount++; };
  currentStep = () => (stepping ? executor.currentStep : null);
  const peerReaders = w.peerRings.map((row) => row[me]).filter((sab): sab is SharedArrayBuffer => sab !== null)
    .map((sab) => new ChannelReader(new RingReader(sab), executor.handler()));
  const sourceReaders = w.sourceRings.map((row) => new ChannelReader(new RingReader(row[me]), executor.handler()));
  const bell = new Doorbell(w.workerBells[me]);
  const status = new StatusWord(w.status, workerSlot(me));
  const sinkBlocked = () => {
    for (let i = 0; i < sinks.length; i++) if (sinks[i].blocked) return true;
    return false;
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

  const postStats = () => port.postMessage({
    type: "stats", worker: me, in: Array.from(executor.inCount), out: Array.from(executor.outCount), outBytes: sinks.map((c) => c.sentBytes),
    errors: executor.errorCount, queuedBytes: outputs.reduce((n, c) => n + c.pendingBytes, 0),
  } satisfies WorkerReport);
  setInterval(postStats, init.statsIntervalMs).unref();
  if (init.resilience) executor.trackDirty();
  const snapshotCodec = init.resilience ? serde.standalone() : null;
  port.on("message", (msg: ToWorker) => {
    if (msg.type === "report") postStats();
    else if (msg.type === "checkpoint") {
      // Sent only while the engine is quiescent: no message is being processed.
      // The log records are encoded here, in parallel on every worker; the coordinator only appends them.
      let records: EncodedRecords;
      try {
        const w = new RecordWriter();
        executor.takeDirty((stateId, key, inst) => {
          const state = plan.states[stateId];
          const k = keyTagged(state.partitioned, key);
          // A copy: msgpackr may reuse its buffer when the record around it is packed.
          w.add(state.spec.name, k.tag, k.key, Uint8Array.from(snapshotCodec!.pack(inst)));
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

  let sliceStart = performance.now();
  let lastCommit = sliceStart;
  for (;;) {
    if (fatal) {
      await new Promise(() => {}); // the coordinator is stopping the engine
    }
    for (let i = 0; i < outputs.length; i++) if (outputs[i].blocked) outputs[i].flush();
    let n = 0;
    // Backpressure without deadlock: a backed-up sink stops all input (a sink never waits
    // for a worker, so it drains by itself); a backed-up peer stops source input only, and
    // peer input keeps being drained so that two workers waiting on each other's rings
    // cannot deadlock, up to PEER_QUEUE_CAP queued bytes.
    const readPeers = !sinkBlocked() && peerQueued() < PEER_QUEUE_CAP;
    stepping = true;
    if (readPeers) for (let i = 0; i < peerReaders.length; i++) n += peerReaders[i].read(BATCH);
    let blocked = anyBlocked();
    if (!blocked) {
      // One source frame is a run of many messages: take them one frame at a time and
      // stop as soon as an output backs up, so the queue stays at about one run's outputs.
      for (let i = 0; i < sourceReaders.length && !blocked; i++) {
        for (let f = 0; f < SOURCE_BATCH; f++) {
          const got = sourceReaders[i].read(1);
          n += got;
          if (got === 0) break;
          if (anyBlocked()) {
            blocked = true;
            break;
          }
        }
      }
    }
    executor.flushSinks();
    stepping = false;
    const now = performance.now();
    if (n === 0 || now - lastCommit > COMMIT_MS) {
      for (let i = 0; i < outputs.length; i++) outputs[i].commit();
      lastCommit = now;
    } else {
      for (let i = 0; i < outputs.length; i++) if (outputs[i].uncommitted >= COMMIT_BYTES) outputs[i].commit();
    }
    if (n === 0) {
      if (anyBlocked()) {
        // Waiting for a consumer to make room; peer input must still be drained, so poll rather than block.
        await new Promise((r) => setTimeout(r, 1));
      } else {
        await status.sleepIdle(bell, inputsEmpty);
      }
      sliceStart = performance.now();
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
