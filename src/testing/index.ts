/**
 * wallaroo/testing: runs an application in the calling thread, with its sources
 * and sinks replaced by in-memory ones, for unit tests (like Kafka Streams'
 * TopologyTestDriver).
 *
 * It is the engine minus the threads, not a second interpreter: each simulated
 * worker is the engine's own step runner (src/runtime/executor.ts) with the same
 * plan, so keys are placed on workers exactly as the engine places them, and
 * every hop between simulated workers is the same frame the engine puts in a
 * ring, serialized and deserialized with the engine's serialization. State is
 * checkpointed with the engine's record encoding. A value that cannot cross
 * threads therefore fails here, in a test, rather than in production.
 */
import { compilePlan, ownerOf, type Plan, type StatePlan } from "../topology/plan.js";
import type { Key } from "../topology/spec.js";
import { loadAppModule, moduleUrl, setupApplication, userModules } from "../runtime/loader.js";
import { createSerde, type Codec, type Serde } from "../transport/serde.js";
import { Executor } from "../runtime/executor.js";
import { MemoryOutbox } from "../engine/outbox.js";
import { hashKey, normalizeKey } from "../core/hash.js";
import { SOURCE, SOURCE_FRAMED, tag } from "../transport/tags.js";
import { parseLengthFormat } from "../core/struct.js";
import { maxPayload, writeFrame } from "../core/framing.js";
import { sinkConnector, sourceConnector } from "../connectors/registry.js";
import type { TestMessage } from "../connectors/connector.js";
import { appIdentity, entriesByOwner } from "../recovery/checkpoint.js";
import {
  decodeRecords,
  entryId,
  keyTagged,
  RecordWriter,
  type AppIdentity,
  type StoredEntry,
} from "../recovery/store.js";
import { decodeRecords as decodeKafkaRecords } from "../connectors/kafka/record-frame.js";

/** A message for a Kafka source: the decoder receives `value`; `key` picks the partition (and so the worker). */
export interface KafkaInput {
  key?: Buffer | Uint8Array | string | null;
  value: Buffer | Uint8Array | string;
  /** for a decoder that takes the record's metadata (its second parameter); default: now */
  timestamp?: number;
  /** as above; a name with an array gives the header once per value */
  headers?: Record<string, Buffer | string | null | (Buffer | string | null)[]>;
  /** as above; default 0 */
  partition?: number;
  /** as above; default 0 */
  offset?: number;
}

/** What `pipeInput` takes: the payload the pipeline's decoder receives (a string is taken as UTF-8). */
export type Payload = Buffer | Uint8Array | string | KafkaInput;

/** One output of a Kafka sink: the encoder's `[value, key]`, as bytes. */
export interface KafkaOutput {
  key: Buffer | null;
  value: Buffer;
  /** present when the encoder set headers (a name set more than once: an array of its values) */
  headers?: Record<string, Buffer | null | (Buffer | null)[]>;
  /** present when the encoder set the record's timestamp (ms) */
  timestamp?: number;
}

/** What `checkpoint()` returns and `restore` takes. Opaque: restore it in the same process. */
export interface TestSnapshot {
  readonly format: "wallaroo-test-snapshot/1";
  readonly identity: AppIdentity;
  /** how many checkpoints this state went through */
  readonly checkpoint: number;
  /** the latest record of every saved state instance, in the checkpoint store's record format */
  readonly records: Uint8Array;
}

export interface TestDriverOptions {
  /** the application module: a path (relative to the working directory) or a URL, `.ts` or `.js` */
  module: string | URL;
  /** what the module's applicationSetup(args) receives (the engine's flags are not needed) */
  args?: string[];
  /** simulated workers (default 1): keys are placed on them as the engine places them on threads */
  workers?: number;
  /** start from a snapshot taken by checkpoint() (any worker count) */
  restore?: TestSnapshot;
  /**
   * Window steps: seconds of the driver's time (see advanceTime) after which a silent input
   * stops holding the watermark back, as the engine's --idle-timeout (default 5)
   */
  idleTimeout?: number;
}

export interface TestDriver {
  /** the application's name */
  readonly name: string;
  readonly workers: number;
  /**
   * Feeds payloads to a pipeline's source, in order, and runs everything they
   * cause. When the promise resolves, every output has reached the sinks. A
   * failure in user code drops that message and the rest go on, as in the engine
   * without --fail-fast; then the promise rejects with a UserCodeError.
   */
  pipeInput(pipeline: string, ...payloads: Payload[]): Promise<void>;
  /**
   * The outputs of a sink (numbered in declaration order over all pipelines,
   * from 0) in the order they were produced, removed from the driver: a Buffer per
   * output for a TCP sink, `KafkaOutput` for a Kafka sink.
   */
  readOutput<T extends Buffer | KafkaOutput = Buffer>(sinkIndex?: number): T[];
  /**
   * The live state instance (key omitted for toStateful), or undefined if it was never
   * created or was removed (its computation returned wallaroo.DELETE, or its ttl expired it).
   */
  state<S = unknown>(stateName: string, key?: Key): Promise<S | undefined>;
  /** A checkpoint, as the engine takes one with --resilience-dir (only instances marked saveState are saved). */
  checkpoint(): Promise<TestSnapshot>;
  /**
   * Moves the driver's clock (it starts at 0 and moves only here) by `ms`, then lets every
   * window step fire what its watermark closes, as the engine's timer does. Inputs silent
   * for the idle timeout stop holding the watermark back; once all are, event time follows
   * this clock, so `advanceTime` closes a stream's last window deterministically. Without an
   * eventTime option, an event's time is this clock when it was piped in (ingest time).
   *
   * The same clock is processing time for states with a ttl: an instance last touched at t
   * is removed once the clock reaches t + ttl (exactly; the engine may take up to about a
   * tenth of the ttl more). The removals count in the next checkpoint, as in the engine.
   */
  advanceTime(ms: number): Promise<void>;
  close(): Promise<void>;
}

/** A failure in user code (decoder, computation, partition function, state computation, encoder) during pipeInput. */
export class UserCodeError extends Error {
  /** where the first failure happened, e.g. `computation "split" of pipeline "words"` */
  readonly where: string;
  /** every failure of the pipeInput call, in order (each dropped one message) */
  readonly errors: { where: string; error: unknown }[];

  constructor(errors: { where: string; error: unknown }[]) {
    const first = errors[0];
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? "s" : ""})` : "";
    super(`${first.where}: ${messageOf(first.error)}${more}`, { cause: first.error });
    this.name = "UserCodeError";
    this.where = first.where;
    this.errors = errors;
  }
}

/** bytes of source input handed to a worker as one frame (a TCP source hands over runs of messages the same way) */
const RUN_BYTES = 64 * 1024;

export async function createTestDriver(options: TestDriverOptions): Promise<TestDriver> {
  const workers = options.workers ?? 1;
  if (!Number.isInteger(workers) || workers < 1)
    throw new RangeError(`workers must be a positive integer, got ${workers}`);
  const url = moduleUrl(options.module);
  const mod = await loadAppModule(url);
  const plan = compilePlan(setupApplication(mod, options.args ?? [], url), workers);
  // every user module the application imports, as the workers do: their classes keep their prototype
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
    await userModules(),
  );
  const idle = options.idleTimeout ?? 5;
  if (typeof idle !== "number" || !(idle > 0))
    throw new RangeError(`idleTimeout must be a number of seconds > 0, got ${idle}`);
  return new Driver(plan, serde, options.restore, idle * 1000);
}

class Driver implements TestDriver {
  readonly name: string;
  readonly workers: number;
  private readonly executors: Executor[];
  /** [from][to], null on the diagonal (as the engine's peer rings) */
  private readonly peerOut: (MemoryOutbox | null)[][];
  /** [from][to]: the receiving worker's handler for that channel (its own codec, as a ring reader has) */
  private readonly peerIn: (((t: number, b: Uint8Array, o: number, l: number) => void) | null)[][];
  /** [source][worker] */
  private readonly sourceIn: ((t: number, b: Uint8Array, o: number, l: number) => void)[][];
  /** one outbox per sink, shared by the simulated workers: outputs in the order they were produced */
  private readonly sinkOut: MemoryOutbox[];
  private readonly outputs: (Buffer | KafkaOutput)[][];
  private readonly nextWorker: number[];
  private errors: { where: string; error: unknown }[] = [];
  /** the latest record of every saved instance (what the checkpoint store keeps live) */
  private readonly saved = new Map<string, Uint8Array>();
  private checkpoints = 0;
  private checkpointFailed: string | null = null;
  private closed = false;
  /** the driver's clock (ms): processing time for ttl, ingest and idle time for window steps; moved only by advanceTime */
  private time = 0;

  private readonly snapshotCodec: Codec;

  constructor(
    private readonly plan: Plan,
    serde: Serde,
    restore?: TestSnapshot,
    idleTimeoutMs = 5000,
  ) {
    this.snapshotCodec = serde.standalone();
    this.name = plan.app.name;
    this.workers = plan.workers;
    const W = plan.workers;
    this.peerOut = Array.from({ length: W }, (_, u) =>
      Array.from({ length: W }, (_, v) => (u === v ? null : new MemoryOutbox())),
    );
    this.sinkOut = plan.sinks.map(() => new MemoryOutbox());
    this.outputs = plan.sinks.map(() => []);
    const onError = (where: string, error: unknown) => {
      this.errors.push({ where, error });
    };
    this.executors = Array.from(
      { length: W },
      (_, w) =>
        new Executor(plan, w, serde, this.peerOut[w], this.sinkOut, onError, undefined, false, true, {
          clock: () => this.time,
          idleTimeoutMs,
        }),
    );
    for (const e of this.executors) {
      e.trackDirty();
      e.setTime(this.time);
    }
    this.peerIn = Array.from({ length: W }, (_, u) =>
      Array.from({ length: W }, (_, v) => (u === v ? null : this.executors[v].handler())),
    );
    this.sourceIn = plan.sources.map(() => this.executors.map((e) => e.handler()));
    // the first connection of source s goes to worker s % workers, as in the TCP source
    this.nextWorker = plan.sources.map((s) => s.id % W);
    if (restore) this.restore(restore);
  }

  async pipeInput(pipeline: string, ...payloads: Payload[]): Promise<void> {
    this.checkOpen();
    const p = this.plan.pipelines.find((x) => x.name === pipeline);
    if (!p) {
      throw new Error(
        `no pipeline named ${JSON.stringify(pipeline)} in ${JSON.stringify(this.name)}; pipelines: ${this.plan.pipelines.map((x) => JSON.stringify(x.name)).join(", ")}`,
      );
    }
    const source = this.plan.sources[p.source];
    this.errors = [];
    if (sourceConnector(source.spec).framing === "length-header")
      this.feedTcp(
        source.id,
        source.decoder.lengthFmt,
        payloads.map((x, i) => tcpPayload(x, i)),
      );
    else
      this.feedKafka(
        source.id,
        payloads.map((x, i) => {
          const m = kafkaPayload(x, i);
          // As the source thread frames it (with the record's metadata where the decoder takes it).
          const frame = sourceConnector(source.spec).testPayload?.(source.spec, m);
          return frame === undefined ? m : { key: m.key, value: frame };
        }),
      );
    await this.settleAsync();
    // The watermarks move with what came in, as the engine's next timer tick would move them.
    this.tickWindows();
    const errors = this.errors;
    this.errors = [];
    if (errors.length > 0) throw new UserCodeError(errors);
  }

  async advanceTime(ms: number): Promise<void> {
    this.checkOpen();
    if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
      throw new RangeError(`advanceTime(ms): ms must be a finite number >= 0, got ${ms}`);
    }
    this.time += ms;
    this.errors = [];
    for (const e of this.executors) e.expire(this.time, Number.POSITIVE_INFINITY, true);
    this.tickWindows();
    const errors = this.errors;
    this.errors = [];
    if (errors.length > 0) throw new UserCodeError(errors);
  }

  /**
   * One timer tick of every simulated worker, after every worker's marks have reached every
   * peer: each then fires with the same, latest marks, so the watermarks do not depend on
   * the order the simulated workers tick in (in the engine, a peer's marks are up to a tick old).
   */
  private tickWindows(): void {
    if (this.executors[0].windows === null) return;
    for (const e of this.executors) e.sendMarks();
    this.settle();
    for (const e of this.executors) e.windowTick();
    this.settle();
  }

  /** One call is one connection: its messages go to one worker, in runs of whole framed messages. */
  private feedTcp(sourceId: number, lengthFmt: string, payloads: Buffer[]): void {
    const fmt = parseLengthFormat(lengthFmt);
    const max = maxPayload(fmt);
    payloads.forEach((b, j) => {
      if (b.length > max) {
        throw new RangeError(
          `payload ${j} is ${b.length} bytes, more than the decoder's ${JSON.stringify(lengthFmt)} length header can announce`,
        );
      }
    });
    const handler = this.sourceIn[sourceId][this.takeWorker(sourceId)];
    const t = tag(SOURCE_FRAMED, sourceId);
    let i = 0;
    while (i < payloads.length) {
      let bytes = 0;
      let j = i;
      do {
        bytes += fmt.size + payloads[j].length;
        j++;
      } while (j < payloads.length && bytes + fmt.size + payloads[j].length <= RUN_BYTES);
      const run = Buffer.allocUnsafe(bytes);
      let off = 0;
      for (let k = i; k < j; k++) off = writeFrame(fmt, run, off, payloads[k]);
      handler(t, run, 0, bytes);
      this.settle();
      i = j;
    }
  }

  /**
   * A Kafka partition feeds one worker (partition % workers): messages with a key
   * go to the worker of that key's partition, modelled as a hash of the key;
   * messages without a key go to one worker per call, like one connection.
   */
  private feedKafka(sourceId: number, payloads: { key: Buffer | null; value: Buffer }[]): void {
    const t = tag(SOURCE, sourceId);
    let unkeyed = -1;
    for (const m of payloads) {
      let w: number;
      if (m.key !== null) w = hashKey(m.key.toString("latin1")) % this.workers;
      else w = unkeyed >= 0 ? unkeyed : (unkeyed = this.takeWorker(sourceId));
      this.sourceIn[sourceId][w](t, m.value, 0, m.value.length);
      this.settle();
    }
  }

  private takeWorker(sourceId: number): number {
    const w = this.nextWorker[sourceId];
    this.nextWorker[sourceId] = (w + 1) % this.workers;
    return w;
  }

  /**
   * Delivers the frames between simulated workers until none is left (each channel
   * in order, as a ring), then takes the sinks' outputs.
   */
  private settle(): void {
    const W = this.workers;
    let moved = W > 1;
    while (moved) {
      moved = false;
      for (let u = 0; u < W; u++) {
        for (let v = 0; v < W; v++) {
          const out = this.peerOut[u][v];
          if (out !== null && out.size > 0) {
            out.drain(this.peerIn[u][v]!);
            moved = true;
          }
        }
      }
    }
    for (const e of this.executors) e.flushSinks();
    this.collectOutputs();
  }

  /**
   * Waits for every call of an async step to settle and passes its results on (in the
   * engine the worker loop does this between batches), until nothing is queued anywhere:
   * pipeInput returns with every output of its messages collected, as for plain values.
   */
  private async settleAsync(): Promise<void> {
    for (;;) {
      let progress = 0;
      for (const e of this.executors) progress += e.drainAsync();
      this.settle();
      for (const e of this.executors) progress += e.drainAsync();
      const waiting = this.executors.filter((e) => e.asyncPending > 0);
      if (waiting.length === 0) {
        if (progress > 0) this.settle();
        return;
      }
      if (progress === 0) await Promise.race(waiting.map((e) => e.whenSettled()));
    }
  }

  private collectOutputs(): void {
    this.plan.sinks.forEach((k, i) => {
      const list = this.outputs[i];
      const kafka = sinkConnector(k.spec).output === "records";
      this.sinkOut[i].drain((_t, bytes, off, len, owned) => {
        let b = bytes;
        if (!owned) {
          b = Buffer.allocUnsafe(len);
          bytes.copy(b, 0, off, off + len);
        }
        if (!kafka) list.push(b);
        else
          for (const { key, value, headers, timestamp } of decodeKafkaRecords(b))
            list.push({
              key,
              value,
              ...(headers ? { headers } : {}),
              ...(timestamp !== undefined ? { timestamp } : {}),
            });
      });
    });
  }

  readOutput<T extends Buffer | KafkaOutput = Buffer>(sinkIndex = 0): T[] {
    this.checkOpen();
    if (!Number.isInteger(sinkIndex) || sinkIndex < 0 || sinkIndex >= this.outputs.length) {
      throw new RangeError(
        `no sink ${sinkIndex}: ${JSON.stringify(this.name)} has ${this.outputs.length} sink(s): ${this.plan.sinks.map((k, i) => `${i}: ${k.label}`).join(", ")}`,
      );
    }
    const out = this.outputs[sinkIndex];
    this.outputs[sinkIndex] = [];
    return out as T[];
  }

  async state<S = unknown>(stateName: string, key?: Key): Promise<S | undefined> {
    this.checkOpen();
    const state = this.stateNamed(stateName);
    if (!state.partitioned) {
      if (key !== undefined)
        throw new TypeError(
          `state ${JSON.stringify(stateName)} is not partitioned (toStateful): call state(name) without a key`,
        );
      return this.executors[ownerOf(state, 0, this.workers)].peekInstance(state.id, 0) as S | undefined;
    }
    if (key === undefined) throw new TypeError(`state ${JSON.stringify(stateName)} is partitioned: pass the key`);
    if (typeof key !== "string" && typeof key !== "number" && typeof key !== "bigint") {
      throw new TypeError(`a state key is a string, a number or a bigint, got ${typeof key}`);
    }
    const k = normalizeKey(key);
    return this.executors[ownerOf(state, k, this.workers)].peekInstance(state.id, k) as S | undefined;
  }

  async checkpoint(): Promise<TestSnapshot> {
    this.checkOpen();
    if (this.checkpointFailed !== null) {
      // Some workers' saveState marks were handed over and forgotten: a later snapshot would miss them.
      throw new Error(
        `an earlier checkpoint failed (${this.checkpointFailed}); the engine stops in that case, so no later checkpoint is taken`,
      );
    }
    try {
      this.collectCheckpoint();
    } catch (err) {
      this.checkpointFailed = messageOf(err);
      throw err;
    }
    this.checkpoints++;
    return {
      format: "wallaroo-test-snapshot/1",
      identity: appIdentity(this.plan),
      checkpoint: this.checkpoints,
      records: Buffer.concat([...this.saved.values()]),
    };
  }

  private collectCheckpoint(): void {
    for (const e of this.executors) {
      const w = new RecordWriter();
      e.takeDirty((stateId, key, inst) => {
        const state = this.plan.states[stateId];
        const k = keyTagged(state.partitioned, key);
        if (inst === null) {
          // Removed (DELETE or ttl): the store writes a tombstone, which drops the key.
          w.add(state.spec.name, k.tag, k.key, null);
          return;
        }
        let bytes: Uint8Array;
        try {
          // A copy: msgpackr may reuse its buffer when the record around it is packed (as in the worker).
          bytes = Uint8Array.from(this.snapshotCodec.pack(inst));
        } catch (err) {
          const which = state.partitioned
            ? ` (key ${typeof key === "string" ? JSON.stringify(key) : String(key)})`
            : "";
          throw new Error(
            `state ${JSON.stringify(state.spec.name)}${which} cannot be serialized for a checkpoint: ${messageOf(err)}`,
            { cause: err },
          );
        }
        w.add(state.spec.name, k.tag, k.key, bytes);
      });
      const r = w.finish();
      let off = 0;
      r.ids.forEach((id, i) => {
        if (r.tombstones[i]) this.saved.delete(id);
        else this.saved.set(id, r.bytes.subarray(off, off + r.lens[i]));
        off += r.lens[i];
      });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (let i = 0; i < this.outputs.length; i++) this.outputs[i] = [];
  }

  private restore(snap: TestSnapshot): void {
    if (snap?.format !== "wallaroo-test-snapshot/1")
      throw new TypeError("restore takes what driver.checkpoint() returned");
    const id = appIdentity(this.plan);
    const describe = (x: AppIdentity) =>
      `application ${JSON.stringify(x.app)} with states [${x.states.map((s) => `${JSON.stringify(s.name)} (${s.class}${s.partitioned ? ", partitioned" : ""})`).join(", ")}]`;
    if (JSON.stringify(snap.identity) !== JSON.stringify(id)) {
      throw new Error(`the snapshot belongs to ${describe(snap.identity)}, not to ${describe(id)}`);
    }
    // A snapshot holds the live records only (no tombstones: see collectCheckpoint), as a store's restore does.
    const records = decodeRecords(snap.records, "the snapshot");
    const entries = records.filter((e): e is StoredEntry => e.value !== null);
    if (entries.length !== records.length) throw new TypeError("restore takes what driver.checkpoint() returned");
    const byOwner = entriesByOwner(this.plan, entries);
    byOwner.forEach((list, w) => {
      this.executors[w].restore(
        list.map(([sid, key, bytes]) => [sid, key, this.snapshotCodec.unpack(bytes, 0, bytes.length)]),
      );
    });
    // What a restored store holds: a later checkpoint keeps what was not changed since.
    let off = 0;
    const buf = Buffer.from(snap.records.buffer, snap.records.byteOffset, snap.records.byteLength);
    for (const e of entries) {
      const len = 8 + buf.readUInt32LE(off);
      this.saved.set(entryId(e), buf.subarray(off, off + len));
      off += len;
    }
    this.checkpoints = snap.checkpoint;
  }

  private stateNamed(name: string): StatePlan {
    const s = this.plan.states.find((x) => x.spec.name === name);
    if (!s) {
      const names = this.plan.states.map((x) => JSON.stringify(x.spec.name)).join(", ");
      throw new Error(
        `no state named ${JSON.stringify(name)} in ${JSON.stringify(this.name)}; states: ${names || "none"}`,
      );
    }
    return s;
  }

  private checkOpen(): void {
    if (this.closed) throw new Error("this test driver is closed");
  }
}

function toBuffer(v: Buffer | Uint8Array | string, what: string): Buffer {
  if (typeof v === "string") return Buffer.from(v, "utf8");
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`${what} must be a Buffer, Uint8Array or string, got ${v === null ? "null" : typeof v}`);
}

function tcpPayload(x: Payload, i: number): Buffer {
  if (typeof x === "object" && x !== null && !(x instanceof Uint8Array)) {
    throw new TypeError(
      `payload ${i}: { key, value } is for Kafka sources; a TCP source's decoder receives a Buffer (or pass a string)`,
    );
  }
  return toBuffer(x, `payload ${i}`);
}

function kafkaPayload(x: Payload, i: number): TestMessage {
  if (typeof x === "object" && x !== null && !(x instanceof Uint8Array)) {
    return {
      key: x.key == null ? null : toBuffer(x.key, `payload ${i} key`),
      value: toBuffer(x.value, `payload ${i} value`),
      timestamp: x.timestamp,
      headers: x.headers,
      partition: x.partition,
      offset: x.offset,
    };
  }
  return { key: null, value: toBuffer(x, `payload ${i}`) };
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export type { Key } from "../topology/spec.js";
