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
import { createLogger, errorMessage, RateLimitedErrors } from "./log.js";
import type { Key } from "../topology/spec.js";
import { keyTagged, RecordWriter, type EncodedRecords } from "../recovery/store.js";

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

export type WorkerReport =
  | { type: "ready" }
  | { type: "restored"; worker: number; instances: number }
  | { type: "snapshot"; worker: number; id: number; records: EncodedRecords }
  | { type: "stats"; worker: number; in: number[]; out: number[]; errors: number; queuedBytes: number }
  | { type: "fatal"; worker: number; where: string; message: string };

async function main(init: WorkerInit): Promise<void> {
  const port = parentPort!;
  const log = createLogger("wallaroo.worker", { worker: init.index });
  const mod = await loadAppModule(init.moduleUrl);
  const plan = compilePlan(setupApplication(mod, init.args, init.moduleUrl), init.wiring.workers);
  const serde = createSerde(mod, plan.states.map((s) => s.spec.stateClass));
  const w = init.wiring;
  const me = init.index;

  const peers = w.peerRings[me].map((sab, v) => (sab ? new ChannelWriter(new RingWriter(sab, new Doorbell(w.workerBells[v]))) : null));
  const sinks = w.sinkRings[me].map((sab, k) => new ChannelWriter(new RingWriter(sab, new Doorbell(w.sinkBells[k]))));
  const outputs = [...peers.filter((c): c is ChannelWriter => c !== null), ...sinks];

  const errors = new RateLimitedErrors(log);
  let fatal = false;
  const onError = (where: string, err: unknown) => {
    if (init.failFast) {
      // Nothing after the failing message may reach a sink, not even the rest of this batch.
      executor.halt();
      if (!fatal) port.postMessage({ type: "fatal", worker: me, where, message: errorMessage(err) } satisfies WorkerReport);
      fatal = true;
      return;
    }
    errors.report(where, err);
  };
  const executor = new Executor(plan, me, serde, peers, sinks, onError);
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
    type: "stats", worker: me, in: Array.from(executor.inCount), out: Array.from(executor.outCount),
    errors: executor.errorCount, queuedBytes: outputs.reduce((n, c) => n + c.pendingBytes, 0),
  } satisfies WorkerReport);
  setInterval(postStats, init.statsIntervalMs).unref();
  if (init.resilience) executor.trackDirty();
  const snapshotCodec = init.resilience ? serde.standalone() : null;
  port.on("message", (msg: { type: string; id?: number; entries?: [number, Key, Uint8Array][] }) => {
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
        port.postMessage({ type: "fatal", worker: me, where: "serializing state for a checkpoint", message: errorMessage(err) } satisfies WorkerReport);
        return;
      }
      const buffer = records.bytes.buffer as ArrayBuffer;
      port.postMessage({ type: "snapshot", worker: me, id: msg.id!, records } satisfies WorkerReport, [buffer]);
    } else if (msg.type === "restore") {
      const entries = msg.entries!;
      try {
        executor.restore(entries.map(([id, key, bytes]) => [id, key, snapshotCodec!.unpack(bytes, 0, bytes.length)]));
      } catch (err) {
        port.postMessage({ type: "fatal", worker: me, where: "restoring state from the checkpoint store", message: errorMessage(err) } satisfies WorkerReport);
        return;
      }
      port.postMessage({ type: "restored", worker: me, instances: entries.length } satisfies WorkerReport);
    }
  });
  port.postMessage({ type: "ready" } satisfies WorkerReport);

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
  parentPort!.postMessage({ type: "fatal", worker: (workerData as WorkerInit).index, where: "worker start", message: errorMessage(err) });
});
