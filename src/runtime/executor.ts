/**
 * The step runner of one worker: decodes what a source sent, runs the pipeline's
 * steps on this worker for as long as they belong here, hands a message to the
 * worker that owns its state instance when they do not, and encodes outputs for
 * the sinks. `to` and `toParallel` steps run where the message is, so they fuse
 * with whatever ran before them: no copy, no serialization, no queue.
 */
import type { Plan, StatePlan } from "../topology/plan.js";
import { describeSource, ownerOf } from "../topology/plan.js";
import { DELETE, type Key } from "../topology/spec.js";
import { normalizeKey } from "../core/hash.js";
import type { Outbox } from "../engine/outbox.js";
import { utf8Length, utf8Write } from "../transport/utf8.js";
import type { Codec, Serde } from "../transport/serde.js";
import {
  inputOf,
  MARKS,
  SINK,
  STEP,
  STEP_BATCH,
  idOf,
  kindOf,
  SOURCE,
  SOURCE_FRAMED,
  SOURCE_INPUT,
  SOURCE_STAMPED,
  sourceOf,
  tag,
} from "../transport/tags.js";
import { WindowRuntime, type WindowOptions } from "../windows/runtime.js";
import type { WindowState } from "../windows/state.js";
import { parseLengthFormat, type LengthFormat } from "../core/struct.js";
import { frameEnd } from "../core/framing.js";
import { readU32LE, writeU32LE } from "../core/bytes.js";
import { sinkConnector, sourceConnector } from "../connectors/registry.js";
import { HIST_SLOTS, observe, SAMPLE_EVERY, workerLayout, type WorkerLayout } from "../metrics/layout.js";
import { RecordFrameWriter } from "../connectors/kafka/record-frame.js";
import { AsyncEntry, AsyncQueue, FAILED, syncOnly } from "./async-steps.js";

/**
 * What the executor tells its owner about messages it had to drop (every drop is
 * reported here once, with the step where it happened).
 */
export interface ErrorSink {
  /**
   * `payload`: the message's raw source bytes when the failing code had them (a view
   * that is valid only during the call); otherwise `value`: the message as it was
   * when it crossed from another worker.
   */
  (where: string, err: unknown, payload?: Uint8Array, value?: unknown): void;
}

/**
 * Buffer's own utf8Write/utf8Slice: Buffer#write and #toString normalize their
 * arguments on every call, which showed up at ~5% of a word-count worker.
 */
interface FastBuffer extends Buffer {
  utf8Write(s: string, offset: number, length: number): number;
  utf8Slice(start: number, end: number): string;
  latin1Write(s: string, offset: number, length: number): number;
  latin1Slice(start: number, end: number): string;
}

/** bytes of TCP sink output gathered on a worker before they go to the sink's ring as one frame */
const GATHER_BYTES = 64 * 1024;
/**
 * bytes of messages for one peer worker gathered before they go to its ring as one
 * STEP_BATCH frame (less when the peer's channel takes smaller frames)
 */
const PEER_GATHER_BYTES = 64 * 1024;
/** at the start of a STEP_BATCH frame: where its entries end and its text begins (u32 LE, from the frame's start) */
const BATCH_HEADER = 4;
/** per message of a STEP_BATCH frame: step id, record length (u32 LE each) */
const BATCH_ENTRY_HEADER = 8;
/**
 * Longest string value (UTF-16 units) that crosses in a batch's text rather than as UTF-8
 * of its own. Its copy on the owner is a substring of the batch's decoded text, and V8 makes
 * a substring of 13 units or more a view of its parent (a SlicedString): a word kept as a Map
 * key would then keep the whole batch's text alive. Up to 12 units a substring is a copy.
 */
const PEER_TEXT_UNITS = 12;

const KEY_NONE = 0;
const KEY_STRING = 1;
const KEY_NUMBER = 2;
const KEY_BIGINT = 3;
/**
 * a declared partition key, sent as its index in the state's declared keys (u32 LE): the
 * owner takes the plan's own string, so nothing is encoded, sliced or hashed again. Every
 * worker compiles the same plan, which ownerOf() already relies on.
 */
const KEY_DECLARED = 4;
const STEP_HEADER = 6; // key type (u8), value type (u8), key length (u32 LE)
/** how a value crosses to another worker: strings (the common case: words, lines) skip msgpack */
const VALUE_PACKED = 0;
const VALUE_STRING = 1;
/**
 * the source payload itself, when the first step of a pipeline is a state step on
 * another worker: the owner runs the (pure) decoder again, which costs less than
 * serializing and deserializing the decoded value (measured: alphabet, market_spread)
 */
const VALUE_RAW = 2;
/**
 * a short string in the batch's text (STEP_BATCH frames only): the value is its length in
 * UTF-16 units (u32 LE); the strings of a batch follow one another in its text, as UTF-8, in
 * the order of the entries. The owner decodes the whole text with one native call and takes
 * each string as a substring, instead of one native decode per string (~65 against ~22 ns a
 * word; bench/ANALYSIS.md), and the sender needs no separate pass for the UTF-8 length.
 */
const VALUE_TEXT = 3;
/** value-type bit: the frame ends with the sampled message's start time (float64 LE, epoch ms), for the latency metric */
const VALUE_TIMED = 0x80;
/**
 * value-type bit (pipelines with a window step at or after the frame's step): the message's
 * event time (float64 LE, ms) follows the value, before a VALUE_TIMED time
 */
const VALUE_EVENT_TIME = 0x40;

/**
 * Where late events go (window steps): `dropped` when the late-data policy did not keep it.
 * Counted by the executor before the call.
 */
export type LateSink = (where: string, value: unknown, eventTime: number, watermark: number, dropped: boolean) => void;

/**
 * The Buffer a decoder gets for one payload of a run: a view of the run's copy.
 * Buffer#subarray costs ~50 ns per view (argument checks, then a derived-class
 * construction); constructing this subclass of Uint8Array directly ~20 ns (measured,
 * Node 20), once per message. It is a Buffer to every check but one: its prototype
 * chain goes through Buffer.prototype and its `constructor` is Buffer, like Node's own
 * FastBuffer, so Buffer.isBuffer, instanceof, Buffer methods, inspect, toJSON,
 * subarray and serialization treat it as a Buffer; only
 * `Object.getPrototypeOf(payload) === Buffer.prototype` tells them apart.
 */
class PayloadView extends Uint8Array {}
Object.setPrototypeOf(PayloadView.prototype, Buffer.prototype);
Object.defineProperty(PayloadView.prototype, "constructor", { value: Buffer, writable: true, configurable: true });

/**
 * How many passes over a ttl state's instances start per ttl (at most): an instance is
 * removed at most ttl / PASSES_PER_TTL (plus one tick, ttl / TICKS_PER_TTL) after its ttl.
 */
const PASSES_PER_TTL = 16;
const TICKS_PER_TTL = 64;

/**
 * A partitioned state with a ttl, on this worker: when each of its instances was last
 * touched, in ticks of processing time. A tick is a small integer (clock ms divided by
 * `resolution`, ttl / TICKS_PER_TTL), so storing it in the Map allocates nothing (a
 * double of epoch ms would be a heap number per message). Expiry walks `touched` in
 * passes (expire()): incremental, a bounded number of entries per call, so millions of
 * keys never stall the worker; no list per message, no timer per key.
 */
class Expiry {
  /** key -> tick of the latest message that ran on its instance (every instance of the state on this worker is here) */
  readonly touched = new Map<Key, number>();
  /**
   * ms per tick; 0: exact (the test driver): a tick is the clock's ms itself, and an
   * instance touched at t is removed once the clock reaches t + ttl
   */
  readonly resolution: number;
  /** the tick of the clock's latest reading (setTime) */
  tick = 0;
  /** the pass over `touched` in progress, or null; when the latest pass started (clock ms) */
  scan: MapIterator<[Key, number]> | null = null;
  passStarted = Number.NEGATIVE_INFINITY;

  constructor(
    readonly state: number,
    readonly ttl: number,
    exact: boolean,
  ) {
    this.resolution = exact ? 0 : Math.max(1, Math.floor(ttl / TICKS_PER_TTL));
  }
}

/**
 * One step as the runner uses it, taken from the plan once: every step has this one
 * shape, so a message's way through the steps is loads from one object per step (not
 * plan.steps -> states -> instances, plan.sinks -> encoder -> fn), and where the
 * message is goes into `at` as an index into the executor's labels.
 */
class StepRun {
  constructor(
    readonly id: number,
    readonly pipeline: number,
    /** next step id, or -1: the output goes to the pipeline's sinks */
    readonly next: number,
    readonly multi: boolean,
    readonly stateless: ((input: any) => any) | null,
    readonly stateful: ((input: any, state: any) => any) | null,
    readonly state: StatePlan | null,
    readonly partitioned: boolean,
    readonly partitionFn: ((input: any) => unknown) | null,
    /** this worker's instances of a partitioned state, by key (null: not a partitioned state step) */
    readonly instances: Map<Key, object> | null,
    /** a window step: its messages go to the window runtime instead of a state computation */
    readonly windowed: boolean,
    /**
     * a window step is this step or comes after it in the pipeline: a message crossing to
     * another worker for this step takes its event time along
     */
    readonly carriesEventTime: boolean,
    /** label index (Executor.labels) of the computation, and of its partition function */
    readonly at: number,
    readonly partitionAt: number,
    /** the state's ttl bookkeeping on this worker, or null (no ttl) */
    readonly expiry: Expiry | null,
    /** its calls that returned a Promise, and the messages queued behind them (null: a window step) */
    readonly queue: AsyncQueue | null,
  ) {}
  /**
   * queue.entries.length, kept here so that the runner's test for "messages are queued at this
   * step" is one load: while it is not 0, a message joins the queue instead of running now
   */
  queued = 0;
}

/** A source's decoder, pipeline and first step, and its decoder's label index. */
class SourceRun {
  constructor(
    readonly id: number,
    readonly pipeline: number,
    readonly firstStep: number,
    readonly decode: (payload: Buffer) => unknown,
    readonly at: number,
  ) {}
}

/** how a sink takes an encoded output: gathered TCP output, Kafka records, one ring frame per output */
const SINK_GATHER = 0;
const SINK_KAFKA = 1;
const SINK_FRAME = 2;

/** A sink's encoder, how its output is written, and the encoder's label index. */
class SinkRun {
  constructor(
    readonly id: number,
    readonly encode: (value: any) => unknown,
    readonly kind: number,
    readonly at: number,
  ) {}
}

/** wall-clock ms comparable across threads (each thread's performance.now() has its own origin) */
// timeOrigin is constant for a thread, and its getter showed as ~1% of a windowed step runner
// (bench/ANALYSIS.md, windowed_count): read once.
const TIME_ORIGIN = performance.timeOrigin;
const epochMs = (): number => TIME_ORIGIN + performance.now();

export class Executor {
  /** messages decoded per pipeline, outputs delivered per sink, messages dropped on errors */
  readonly inCount: Float64Array;
  /** messages taken from the sources per pipeline: inCount plus those their decoder failed on */
  readonly takenCount: Float64Array;
  readonly outCount: Float64Array;
  errorCount = 0;
  /** per state: instances ended by DELETE, and removed by the state's ttl, on this worker */
  readonly deletedCount: Float64Array;
  readonly expiredCount: Float64Array;
  /** every counter of this worker (see metrics/layout.ts): shared with the coordinator when metrics are on */
  readonly slots: Float64Array;
  readonly layout: WorkerLayout;
  private readonly stepMessages: Float64Array;
  /** error label (`where`) -> slot of its error counter; looked up on the error path only */
  private readonly errorSlots = new Map<string, number>();
  /** -1: no sampling (metrics off); else a message is timed when (tick & mask) === 0 */
  private readonly sampleMask: number;
  private sampleTick = 0;
  /** start (epochMs) of the message being run when it is a timed sample, else 0 */
  private sampleT0 = 0;
  /**
   * Set by halt() (--fail-fast after the first error): nothing more is processed, not
   * even the rest of the batch being handled, so no message after the failing one reaches a sink.
   */
  halted = false;

  private readonly states: readonly StatePlan[];
  private readonly instances: Map<Key, object>[];
  private readonly singleInstances: (object | null)[];
  /** per state: its ttl bookkeeping (null: no ttl) */
  private readonly expiries: (Expiry | null)[];
  private readonly stepLabels: string[];
  private readonly partitionLabels: string[];
  private readonly encoderLabels: string[];
  private readonly decoderLabels: string[];
  private readonly peerBufs: (Buffer | null)[];
  private readonly peerCodecs: (Codec | null)[];
  /** per peer worker: messages gathered for it (STEP_BATCH entries), null when not gathering */
  private readonly peerGather: (FastBuffer | null)[];
  private readonly peerGatherLen: number[];
  /**
   * per peer worker: the UTF-8 of the short strings of its batch (VALUE_TEXT), in order, and
   * its length in bytes; copied after the batch's entries when it is flushed
   */
  private readonly peerText: (FastBuffer | null)[];
  private readonly peerTextBytes: number[];
  /**
   * While a STEP_BATCH frame is read (fromPeerBatch): where it ends in the ring's buffer,
   * and, once a raw payload was met, the copy of the rest of it (batchDelta: its offset
   * minus the ring offset it was copied from). batchEnd 0: not in a batch.
   */
  private batchEnd = 0;
  private batchCopy: ArrayBuffer | null = null;
  private batchDelta = 0;
  /** the decoded text of the STEP_BATCH frame being read, and where its next string starts */
  private batchText = "";
  private batchTextAt = 0;
  /**
   * per state step (null for the others): its state's declared partition keys (declaration
   * order, no duplicates) and each one's index; the source of its pipeline (whose decoder
   * runs again when the message crossed as the source's bytes)
   */
  private readonly stepDeclaredKeys: (Key[] | null)[];
  private readonly stepDeclaredIndex: (Map<Key, number> | null)[];
  private readonly stepSource: (Plan["sources"][number] | null)[];
  /** per source: its decoder's call on one payload (the connector's decodeFn, or decoder.fn) */
  private readonly decodeFns: ((payload: Buffer) => unknown)[];
  private readonly gather: (FastBuffer | null)[];
  private readonly gatherLen: number[];
  /** per sink: the Kafka record writer (connectors/kafka/record-frame.ts), null for other sinks */
  private readonly kafkaOut: (RecordFrameWriter | null)[];
  /**
   * Per TCP sink: string outputs not yet encoded into `gather` (concatenated, in
   * order, after its first gatherLen bytes), and their length in UTF-16 units.
   */
  private readonly pendingText: string[];
  private readonly pendingUnits: number[];
  /** length-header format of each TCP source (null for other sources) */
  private readonly headerFormats: (LengthFormat | null)[];
  /** the runner's view of the plan (see StepRun) */
  private readonly stepRuns: StepRun[];
  private readonly sourceRuns: SourceRun[];
  private readonly pipelineSinkRuns: SinkRun[][];
  /**
   * Every label a message's place can have: the decoders', computations', partition
   * functions' and encoders'. The runner says where a message is by storing an index
   * here into `at` (a small integer: no write barrier, unlike storing the string).
   */
  private readonly labels: string[] = [];
  /** index into `labels` of where the message being run is, or -1: see `whereText` */
  private at = -1;
  /** where the message is when code set `where` to a string itself (then `at` is -1) */
  private whereText = "";
  /** the decoder, computation, partition function or encoder the message being run is in */
  private get where(): string {
    return this.at >= 0 ? this.labels[this.at] : this.whereText;
  }
  private set where(label: string) {
    this.whereText = label;
    this.at = -1;
  }
  /** the step (or decoder, encoder) user code last ran in: names the step that scheduled a timer */
  get currentStep(): string {
    return this.where;
  }
  /**
   * With resilience on: the keys of the instances whose state computation said
   * saveState since the last checkpoint, per state (null = not tracking, the default).
   */
  private dirty: Set<Key>[] | null = null;
  /** strings travel as raw UTF-8 unless the application replaced serialization */
  private readonly rawStrings: boolean;
  /** the application's windows on this worker (null: no window step) */
  readonly windows: WindowRuntime | null;
  private readonly onLate: LateSink;
  /** the event time of the message being run (set when a window step's pipeline decodes it, or from its frame) */
  private eventTime = 0;
  /** the steps that may return a Promise (every user computation) */
  private asyncSteps: StepRun[] = [];
  /** resolved at the next settled call (see whenSettled) */
  private settleWaiter: { promise: Promise<void>; resolve: () => void } | null = null;
  private readonly settled = () => {
    const w = this.settleWaiter;
    if (w !== null) {
      this.settleWaiter = null;
      w.resolve();
    }
  };
  /** windows: when the source frame being run arrived (wall ms, read once per frame) */
  private arrivedAt = 0;

  constructor(
    private readonly plan: Plan,
    private readonly index: number,
    private readonly serde: Serde,
    private readonly peers: (Outbox | null)[],
    private readonly sinks: Outbox[],
    private readonly onError: ErrorSink,
    metrics?: SharedArrayBuffer,
    /**
     * false: every TCP sink output is its own frame (the test driver, which hands
     * outputs back one by one); the engine gathers them (see writeBytes).
     */
    gatherOutputs = true,
    /**
     * true (the test driver): ttl is exact, in the clock's own ms (see Expiry); the engine
     * keeps ticks of ttl / 64 so that a touch stores a small integer
     */
    exactTtl = false,
    /** window steps: the clock, the idle timeout, and where late events are reported */
    windowOptions: Partial<WindowOptions> & { onLate?: LateSink } = {},
  ) {
    this.windows = plan.steps.some((s) => s.windows !== null)
      ? new WindowRuntime(plan, index, {
          clock: windowOptions.clock ?? epochMs,
          idleTimeoutMs: windowOptions.idleTimeoutMs ?? 5000,
        })
      : null;
    this.onLate = windowOptions.onLate ?? (() => {});
    this.layout = workerLayout({
      pipelines: plan.pipelines.length,
      sinks: plan.sinks.length,
      steps: plan.steps.length,
      states: plan.states.length,
      workers: plan.workers,
    });
    this.slots = metrics ? new Float64Array(metrics, 0, this.layout.size) : new Float64Array(this.layout.size);
    this.sampleMask = metrics ? SAMPLE_EVERY - 1 : -1;
    this.states = plan.states;
    this.instances = plan.states.map(() => new Map());
    this.singleInstances = plan.states.map(() => null);
    this.expiries = plan.states.map((st) =>
      st.partitioned && st.spec.ttl !== undefined ? new Expiry(st.id, st.spec.ttl, exactTtl) : null,
    );
    const l = this.layout;
    this.deletedCount = this.slots.subarray(l.stateDeleted, l.stateDeleted + plan.states.length);
    this.expiredCount = this.slots.subarray(l.stateExpired, l.stateExpired + plan.states.length);
    this.inCount = this.slots.subarray(l.in, l.in + plan.pipelines.length);
    this.takenCount = new Float64Array(plan.pipelines.length);
    this.outCount = this.slots.subarray(l.out, l.out + plan.sinks.length);
    this.stepMessages = this.slots.subarray(l.stepMessages, l.stepMessages + plan.steps.length);
    const pname = (p: number) => JSON.stringify(plan.pipelines[p].name);
    this.stepLabels = plan.steps.map((s) => `computation ${JSON.stringify(s.name)} of pipeline ${pname(s.pipeline)}`);
    this.partitionLabels = plan.steps.map((s) =>
      s.state >= 0
        ? `partition function of state ${JSON.stringify(plan.states[s.state].spec.name)} (pipeline ${pname(s.pipeline)})`
        : "",
    );
    this.encoderLabels = plan.sinks.map((k) => `encoder of sink ${k.label}`);
    this.decoderLabels = plan.sources.map(
      (s) => `decoder of pipeline ${pname(s.pipeline)} (${describeSource(s.spec)})`,
    );
    this.peerBufs = peers.map((c) => (c ? c.buffer : null));
    this.peerCodecs = peers.map((c) => (c ? serde.channel() : null));
    this.peerGather = peers.map((c) =>
      c && gatherOutputs ? (Buffer.allocUnsafe(Math.min(PEER_GATHER_BYTES, c.frameLimit)) as FastBuffer) : null,
    );
    this.peerGatherLen = peers.map(() => 0);
    this.peerText = this.peerGather.map((g) => (g !== null ? (Buffer.allocUnsafe(g.length) as FastBuffer) : null));
    this.peerTextBytes = peers.map(() => 0);
    const declaredKeys = plan.states.map((st) => [...st.declaredOwner.keys()]);
    const declaredIndex = declaredKeys.map((keys) => new Map(keys.map((k, i) => [k, i])));
    this.stepDeclaredKeys = plan.steps.map((st) => (st.state >= 0 ? declaredKeys[st.state] : null));
    this.stepDeclaredIndex = plan.steps.map((st) => (st.state >= 0 ? declaredIndex[st.state] : null));
    this.stepSource = plan.steps.map((st) => plan.sources.find((src) => src.pipeline === st.pipeline) ?? null);
    this.gather = plan.sinks.map((k) =>
      sinkConnector(k.spec).output === "stream" && gatherOutputs
        ? (Buffer.allocUnsafe(GATHER_BYTES) as FastBuffer)
        : null,
    );
    this.gatherLen = plan.sinks.map(() => 0);
    this.kafkaOut = plan.sinks.map((k, i) =>
      sinkConnector(k.spec).output === "records"
        ? new RecordFrameWriter((b, len) => this.sinks[i].send(tag(SINK, i), b, 0, len), gatherOutputs)
        : null,
    );
    this.pendingText = plan.sinks.map(() => "");
    this.pendingUnits = plan.sinks.map(() => 0);
    this.rawStrings = !serde.custom;
    this.headerFormats = plan.sources.map((s) =>
      sourceConnector(s.spec).framing === "length-header" ? parseLengthFormat(s.decoder.lengthFmt) : null,
    );
    const label = (text: string) => this.labels.push(text) - 1;
    this.stepRuns = plan.steps.map((st) => {
      const state = st.state >= 0 ? plan.states[st.state] : null;
      const partitioned = state !== null && state.partitioned;
      return new StepRun(
        st.id,
        st.pipeline,
        st.next,
        st.multi,
        st.stateless,
        st.stateful,
        state,
        partitioned,
        partitioned ? state.partitionFn : null,
        partitioned ? this.instances[state.id] : null,
        st.windows !== null,
        plan.steps.some((w) => w.windows !== null && w.pipeline === st.pipeline && w.id >= st.id),
        label(this.stepLabels[st.id]),
        partitioned ? label(this.partitionLabels[st.id]) : -1,
        state !== null ? this.expiries[state.id] : null,
        st.async !== null
          ? new AsyncQueue(st.async.concurrency, st.async.timeout, st.async.unordered, state !== null, this.settled)
          : null,
      );
    });
    // A connector whose payloads carry more than the decoder's bytes (Kafka metadata) calls the decoder itself.
    this.decodeFns = plan.sources.map((src) => sourceConnector(src.spec).decodeFn?.(src.spec) ?? src.decoder.fn);
    this.asyncSteps = this.stepRuns.filter((r) => r.queue !== null);
    this.sourceRuns = plan.sources.map(
      (src) =>
        new SourceRun(src.id, src.pipeline, src.firstStep, this.decodeFns[src.id], label(this.decoderLabels[src.id])),
    );
    const sinkRuns = plan.sinks.map(
      (k, i) =>
        new SinkRun(
          i,
          k.encoder.fn,
          this.kafkaOut[i] !== null ? SINK_KAFKA : this.gather[i] !== null ? SINK_GATHER : SINK_FRAME,
          label(this.encoderLabels[i]),
        ),
    );
    this.pipelineSinkRuns = plan.pipelines.map((p) => p.sinks.map((k) => sinkRuns[k]));
    this.stepLabels.forEach((w, i) => this.errorSlots.set(w, l.stepErrors + i));
    this.partitionLabels.forEach((w, i) => {
      if (w) this.errorSlots.set(w, l.stepErrors + i);
    });
    this.decoderLabels.forEach((w, i) => this.errorSlots.set(w, l.decodeErrors + plan.sources[i].pipeline));
    this.encoderLabels.forEach((w, i) => this.errorSlots.set(w, l.encodeErrors + i));
  }

  /** Counts an error where it happened, then reports it (with the message, for the dead-letter files). */
  private failed(err: unknown, payload?: Uint8Array, value?: unknown): void {
    this.errorCount++;
    const slot = this.errorSlots.get(this.where);
    if (slot !== undefined) this.slots[slot]++;
    this.onError(this.where, err, payload, value);
  }

  /** Live state instances per state, into the shared slots (called about once a second). */
  countInstances(): void {
    const base = this.layout.instances;
    for (let i = 0; i < this.states.length; i++) {
      this.slots[base + i] = this.states[i].partitioned
        ? this.instances[i].size
        : this.singleInstances[i] === null
          ? 0
          : 1;
    }
  }

  /**
   * The frame handler for one input ring (a source's or a peer's), with that
   * channel's codec. Never throws: a failing message is reported and dropped.
   */
  handler(): (t: number, bytes: Uint8Array, off: number, len: number) => void {
    const codec = this.serde.channel();
    let inputBytes: Uint8Array | null = null;
    let inputBuffer = Buffer.alloc(0) as FastBuffer;
    return (t, bytes, off, len) => {
      if (this.halted) return;
      if (bytes !== inputBytes) {
        inputBytes = bytes;
        inputBuffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) as FastBuffer;
      }
      try {
        const kind = kindOf(t);
        if (kind === SOURCE_FRAMED) this.fromSourceFramed(idOf(t), inputBuffer, off, len);
        else if (kind === SOURCE) this.fromSource(idOf(t), inputBuffer, off, len, null);
        else if (kind === SOURCE_STAMPED)
          this.fromSource(idOf(t), inputBuffer, off + 8, len - 8, inputBuffer.readDoubleLE(off));
        else if (kind === STEP_BATCH) this.fromPeerBatch(inputBuffer, off, len, codec);
        else if (kind === STEP) this.fromPeer(idOf(t), inputBuffer, off, len, codec);
        else if (kind === MARKS) this.windows!.onPeerMarks(idOf(t), inputBuffer, off, len);
        else if (kind === SOURCE_INPUT) this.windows?.announce(sourceOf(idOf(t)), inputOf(idOf(t)));
        else throw new Error(`unexpected frame tag ${t.toString(16)} on a worker ring`);
      } catch (err) {
        this.failed(err);
      }
    };
  }

  /**
   * One message from a source that passes payloads one by one (Kafka); `id`: the frame's
   * source id and input; `stamp`: the record's timestamp (ms), when the source sent it.
   */
  private fromSource(id: number, buf: Buffer, off: number, len: number, stamp: number | null): void {
    // A copy: the ring slot is reused once this returns, and user code may keep the Buffer.
    const payload = Buffer.allocUnsafe(len);
    buf.copy(payload, 0, off, off + len);
    if (this.windows !== null) this.arrivedAt = this.windows.now();
    try {
      this.decodeAndRun(sourceOf(id), inputOf(id), payload, stamp);
    } catch (err) {
      this.failed(err, payload);
    }
  }

  /**
   * A run of header-framed messages from a TCP source. The run is copied out of the
   * ring once; each decoder gets a view of its payload in that copy (it may keep it,
   * like a Buffer from a socket, and shares memory with its neighbours the same way).
   */
  private fromSourceFramed(id: number, buf: Buffer, off: number, len: number): void {
    const sourceId = sourceOf(id);
    const input = inputOf(id);
    // The run's messages arrived together: one clock read for all of them (their ingest time).
    if (this.windows !== null) this.arrivedAt = this.windows.now();
    const run = Buffer.allocUnsafe(len);
    buf.copy(run, 0, off, off + len);
    const fmt = this.headerFormats[sourceId]!;
    const H = fmt.size;
    const ab = run.buffer;
    const base = run.byteOffset;
    let p = 0;
    // The source checked every header of the run (core/framing.ts scanFrames).
    while (p < len && !this.halted) {
      const next = frameEnd(fmt, run, p);
      const payload = new PayloadView(ab, base + p + H, next - p - H) as unknown as Buffer;
      p = next;
      try {
        this.decodeAndRun(sourceId, input, payload, null);
      } catch (err) {
        this.failed(err, payload);
      }
    }
  }

  /** `input`: the connection or partition it came from; `stamp`: its source's timestamp, if any (for event time). */
  private decodeAndRun(sourceId: number, input: number, payload: Buffer, stamp: number | null): void {
    const source = this.sourceRuns[sourceId];
    this.at = source.at;
    // Taken before decoding (a stop compares it with what the source read: a message its decoder
    // refused was taken, and reported as an error, not lost); in once it decoded.
    this.takenCount[source.pipeline]++;
    this.sampleT0 = this.sampleMask >= 0 && (++this.sampleTick & this.sampleMask) === 0 ? epochMs() : 0;
    const value = source.decode(payload);
    if (value instanceof Promise) throw syncOnly("a decoder");
    if (value == null)
      throw new TypeError(
        `a decoder must return a value, got ${value}; the message is dropped (to skip messages, return null from a computation)`,
      );
    // Its event time (a throwing eventTime drops the message as its decoder's error).
    if (this.windows !== null && this.windows.timed[sourceId])
      this.eventTime = this.windows.arrive(sourceId, input, value, stamp, this.arrivedAt);
    this.inCount[source.pipeline]++;
    if (source.firstStep < 0) this.emit(source.pipeline, value);
    else this.run(source.firstStep, value, false, 0, payload);
  }

  /**
   * A STEP_BATCH frame: each message as if it had come in a frame of its own (read in
   * place), and one that fails is reported and dropped alone. Raw payloads (to be decoded
   * again here) are not copied one by one: at the first one, the rest of the batch is
   * copied out of the ring once, and each decoder gets a PayloadView of its payload in
   * that copy, as a TCP source's run does (fromSourceFramed; the decoder may keep it).
   * One Buffer per payload from Node's pool (allocation, a FastBuffer construction, the
   * copy call) showed as ~4% of a 2-worker alphabet step runner (bench/ANALYSIS.md), and a
   * decoder saw two kinds of Buffer (views from sources, pool Buffers from peers).
   */
  private fromPeerBatch(buf: FastBuffer, off: number, len: number, codec: Codec): void {
    const end = off + readU32LE(buf, off);
    let p = off + BATCH_HEADER;
    this.batchEnd = end;
    this.batchCopy = null;
    // The batch's short strings, decoded at once (one native call); each VALUE_TEXT entry
    // takes the next of them, in order, whether or not the one before it failed.
    this.batchText = end < off + len ? buf.utf8Slice(end, off + len) : "";
    this.batchTextAt = 0;
    while (p < end && !this.halted) {
      const stepId = readU32LE(buf, p);
      const n = readU32LE(buf, p + 4);
      p += BATCH_ENTRY_HEADER;
      try {
        this.fromPeer(stepId, buf, p, n, codec);
      } catch (err) {
        this.failed(err);
      }
      p += n;
    }
    this.batchEnd = 0;
    this.batchCopy = null;
    this.batchText = "";
  }

  private fromPeer(stepId: number, buf: FastBuffer, off: number, len: number, codec: Codec): void {
    this.where = this.stepLabels[stepId];
    const keyType = buf[off];
    let valueType = buf[off + 1];
    let end = off + len;
    this.sampleT0 = 0;
    if (valueType & VALUE_TIMED) {
      end -= 8;
      this.sampleT0 = buf.readDoubleLE(end);
      valueType &= ~VALUE_TIMED;
    }
    if (valueType & VALUE_EVENT_TIME) {
      end -= 8;
      this.eventTime = buf.readDoubleLE(end);
      valueType &= ~VALUE_EVENT_TIME;
    }
    const keyLen = readU32LE(buf, off + 2);
    const kStart = off + STEP_HEADER;
    const vStart = kStart + keyLen;
    let key: Key = 0;
    if (keyType === KEY_DECLARED) key = this.stepDeclaredKeys[stepId]![readU32LE(buf, kStart)];
    else if (keyType === KEY_STRING) key = buf.utf8Slice(kStart, vStart);
    else if (keyType === KEY_NUMBER) key = buf.readDoubleLE(kStart);
    else if (keyType === KEY_BIGINT) key = BigInt(buf.latin1Slice(kStart, vStart));
    let value: unknown;
    let payload: Buffer | undefined;
    if (valueType === VALUE_TEXT) {
      const at = this.batchTextAt;
      this.batchTextAt = at + readU32LE(buf, vStart);
      // At most PEER_TEXT_UNITS units: a copy, not a view of the batch's text.
      value = this.batchText.substring(at, this.batchTextAt);
    } else if (valueType === VALUE_STRING) value = buf.utf8Slice(vStart, end);
    else if (valueType === VALUE_RAW) {
      // The source's bytes, decoded here again: cheaper than serializing the decoded value.
      // A copy, whatever the decoder does with it: the ring's bytes are reused once this returns.
      let copy = this.batchCopy;
      if (copy === null && this.batchEnd > 0) {
        // In a batch: the rest of it, once (see fromPeerBatch).
        const rest = Buffer.allocUnsafe(this.batchEnd - vStart);
        buf.copy(rest, 0, vStart, this.batchEnd);
        copy = this.batchCopy = rest.buffer as ArrayBuffer;
        this.batchDelta = rest.byteOffset - vStart;
      }
      if (copy !== null) payload = new PayloadView(copy, vStart + this.batchDelta, end - vStart) as unknown as Buffer;
      else {
        payload = Buffer.allocUnsafe(end - vStart);
        buf.copy(payload, 0, vStart, end);
      }
      const source = this.stepSource[stepId]!;
      this.where = this.decoderLabels[source.id];
      value = this.decodeFns[source.id](payload);
      this.where = this.stepLabels[stepId];
    } else value = codec.unpack(buf, vStart, end);
    try {
      this.run(stepId, value, true, key, null);
    } catch (err) {
      this.failed(err, payload, value);
    }
  }

  /**
   * Runs steps from `stepId` for as long as they belong on this worker. `routed`
   * says the message was already sent to this worker for this step, with `key`.
   */
  private run(stepId: number, value: any, routed: boolean, key: Key, raw: Buffer | null): void {
    let step = this.stepRuns[stepId];
    const pipeline = step.pipeline;
    for (;;) {
      let out: any;
      if (step.stateful === null) {
        this.at = step.at;
        this.stepMessages[step.id]++;
        if (step.queued !== 0) {
          this.enqueue(step, 0, value);
          return;
        }
        if (this.sampleT0 === 0) out = step.stateless!(value);
        else {
          const t = performance.now();
          out = step.stateless!(value);
          observe(this.slots, this.layout.stepHist + step.id * HIST_SLOTS, performance.now() - t);
        }
        if (out instanceof Promise) {
          this.parkRunning(step, 0, value, out);
          return;
        }
      } else {
        const state = step.state!;
        let inst: object | undefined;
        if (!routed) {
          if (step.partitioned) {
            this.at = step.partitionAt;
            const k = step.partitionFn!(value);
            key = typeof k === "string" ? k : checkKey(k);
            // Only keys this worker owns have an instance here (a restore places them by
            // owner too), so a hit needs no routing: no key hash, no declared-owner lookup.
            inst = step.instances!.get(key);
          }
          if (inst === undefined) {
            const owner = this.plan.workers === 1 ? this.index : ownerOf(state, key, this.plan.workers);
            if (owner !== this.index) {
              this.at = step.at;
              this.toPeer(owner, step.id, step.partitioned, key, value, raw);
              return;
            }
          }
        }
        routed = false;
        this.at = step.at;
        this.stepMessages[step.id]++;
        if (step.queued !== 0) {
          this.enqueue(step, key, value);
          return;
        }
        if (inst === undefined) inst = this.instance(state, key);
        // Touched before the computation runs: an instance it throws on (new or not) still expires.
        const expiry = step.expiry;
        if (expiry !== null) expiry.touched.set(key, expiry.tick);
        const t = this.sampleT0 === 0 ? 0 : performance.now();
        const result = step.windowed
          ? this.windowMessage(step, inst as WindowState, key, value)
          : step.stateful(value, inst);
        if (t !== 0) observe(this.slots, this.layout.stepHist + step.id * HIST_SLOTS, performance.now() - t);
        if (!Array.isArray(result)) {
          if (result instanceof Promise && step.queue !== null) {
            this.parkRunning(step, key, value, result);
            return;
          }
          throw new TypeError(`a state computation must return [output, saveState], got ${typeof result}`);
        }
        out = result[0];
        if (result.length > 2) this.endInstance(state, key, result[2]);
        else if (this.dirty !== null && result[1] === true) this.dirty[state.id].add(step.partitioned ? key : 0);
      }
      if (out == null) return;
      if (step.multi) {
        this.fanOut(step, pipeline, out);
        return;
      }
      if (step.next < 0) {
        this.emit(pipeline, out);
        return;
      }
      value = out;
      raw = null;
      step = this.stepRuns[step.next];
    }
  }

  /**
   * A call of `step` returned a Promise (its queue was empty): the message waits in the
   * step's queue for it (see async-steps.ts), and the next messages of the step join it.
   */
  private parkRunning(step: StepRun, key: Key, value: unknown, promise: Promise<unknown>): void {
    const e = new AsyncEntry(value, key, this.sampleT0, this.eventTime);
    step.queue!.addRunning(e, promise);
    step.queued = step.queue!.entries.length;
  }

  /** A message for a step with messages queued: it joins them, and starts if a call is free. */
  private enqueue(step: StepRun, key: Key, value: unknown): void {
    const q = step.queue!;
    q.add(new AsyncEntry(value, key, this.sampleT0, this.eventTime));
    step.queued = q.entries.length;
    q.start(this.callFor(step));
  }

  /** the function that starts a queued message's call of `step` */
  private callFor(step: StepRun): (e: AsyncEntry) => unknown {
    return (e) => {
      this.at = step.at;
      this.sampleT0 = e.sampleT0;
      this.eventTime = e.eventTime;
      if (step.stateful === null) return step.stateless!(e.value);
      const inst = this.instance(step.state!, e.key);
      // Touched when its call starts, as a message that runs at once is.
      const expiry = step.expiry;
      if (expiry !== null) expiry.touched.set(e.key, expiry.tick);
      return step.stateful(e.value, inst);
    };
  }

  /** Messages waiting at async steps, started or not, on this worker. */
  get asyncPending(): number {
    let n = 0;
    for (let i = 0; i < this.asyncSteps.length; i++) n += this.asyncSteps[i].queued;
    return n;
  }

  /**
   * true while some step has `concurrency` messages or more queued: the worker takes no
   * input until it drains (backpressure, like a full ring's)
   */
  get asyncFull(): boolean {
    for (let i = 0; i < this.asyncSteps.length; i++) {
      const st = this.asyncSteps[i];
      if (st.queued !== 0 && st.queue!.full) return true;
    }
    return false;
  }

  /** A promise resolved when the next call settles (the worker loop and the test driver wait on it). */
  whenSettled(): Promise<void> {
    if (this.settleWaiter === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.settleWaiter = { promise, resolve };
    }
    return this.settleWaiter.promise;
  }

  /**
   * Passes on the results of settled calls that may go on (ordered: in input order), runs
   * the rest of their pipelines, and starts the queued calls that may start now. Called by
   * the worker loop on every pass (and by the test driver), never from a settle callback,
   * so user code after an async step runs where the loop runs user code. Returns the
   * messages taken off the queues.
   */
  drainAsync(): number {
    let n = 0;
    let again = true;
    while (again && !this.halted) {
      again = false;
      for (let i = 0; i < this.asyncSteps.length && !this.halted; i++) {
        const step = this.asyncSteps[i];
        if (step.queued === 0) continue;
        const q = step.queue!;
        const took = q.take((e) => this.resume(step, e));
        const finished = q.start(this.callFor(step));
        step.queued = q.entries.length;
        n += took;
        if (took > 0 || finished) again = true;
      }
    }
    return n;
  }

  /** One settled call of `step`: its error reported, or its result passed on as a call that returned it would be. */
  private resume(step: StepRun, e: AsyncEntry): void {
    if (this.halted) return;
    this.at = step.at;
    this.sampleT0 = e.sampleT0;
    this.eventTime = e.eventTime;
    try {
      if (e.status === FAILED) throw e.result;
      let out = e.result;
      if (step.stateful !== null) {
        const result = out;
        if (!Array.isArray(result)) {
          throw new TypeError(`a state computation must return [output, saveState], got ${typeof result}`);
        }
        out = result[0];
        const state = step.state!;
        if (result.length > 2) this.endInstance(state, e.key, result[2]);
        else if (this.dirty !== null && result[1] === true) this.dirty[state.id].add(step.partitioned ? e.key : 0);
      }
      if (out == null) return;
      if (step.multi) this.fanOut(step, step.pipeline, out);
      else if (step.next < 0) this.emit(step.pipeline, out);
      else this.run(step.next, out, false, 0, null);
    } catch (err) {
      this.failed(err, undefined, e.value);
    }
  }

  /**
   * The elements of a multi step's output, each a message of its own from here on: one
   * that fails is dropped and reported (with the step it failed in, and its value), and
   * the elements after it go on.
   */
  private fanOut(step: StepRun, pipeline: number, out: unknown): void {
    if (!Array.isArray(out)) throw new TypeError(`a multi computation must return an array or null, got ${typeof out}`);
    const next = step.next;
    for (let i = 0; i < out.length; i++) {
      const o = out[i];
      if (o == null) continue;
      try {
        if (next < 0) this.emit(pipeline, o);
        else this.run(next, o, false, 0, null);
      } catch (err) {
        this.failed(err, undefined, o);
        if (this.halted) return;
      }
    }
  }

  /**
   * A state computation returned a third element: DELETE ends the instance (its output
   * still goes on). Anything else is a mistake, reported as the message's error rather
   * than ignored.
   */
  private endInstance(state: StatePlan, key: Key, marker: unknown): void {
    if (marker !== DELETE) {
      throw new TypeError(
        `a state computation returns [output, saveState] or [output, saveState, wallaroo.DELETE], got ${describe(marker)} as the third element; the instance is kept`,
      );
    }
    this.removeInstance(state.id, state.partitioned ? key : 0);
    this.deletedCount[state.id]++;
  }

  /**
   * Removes an instance (DELETE or ttl): the next message for its key creates a fresh one.
   * With resilience its key is marked dirty: takeDirty() finds no instance and hands over
   * a removal, which the store writes as a tombstone, so a restart does not bring it back.
   */
  private removeInstance(stateId: number, key: Key): void {
    if (this.states[stateId].partitioned) this.instances[stateId].delete(key);
    else this.singleInstances[stateId] = null;
    this.expiries[stateId]?.touched.delete(key);
    if (this.dirty !== null) this.dirty[stateId].add(key);
  }

  /** true when a state has a ttl: the owner must call setTime() and expire() (see the worker loop). */
  get hasTtl(): boolean {
    return this.expiries.some((e) => e !== null);
  }

  /** true while a pass of expire() is in progress (its next call goes on with it) */
  get expiring(): boolean {
    return this.expiries.some((e) => e !== null && e.scan !== null);
  }

  /**
   * The processing-time clock (ms) as of now: messages run from here on touch their
   * instances at this time. The worker calls it once per pass of its loop (a pass is
   * a few ms at most: a touch is never recorded much earlier than it happened).
   */
  setTime(now: number): void {
    for (let i = 0; i < this.expiries.length; i++) {
      const e = this.expiries[i];
      if (e !== null) e.tick = e.resolution === 0 ? now : Math.floor(now / e.resolution);
    }
  }

  /**
   * Removes the instances of ttl states that no message touched for their ttl, as of
   * `now` (ms, the clock setTime() reads). Incremental: a pass over a state's instances
   * starts at most PASSES_PER_TTL times per ttl, and one call looks at no more than
   * `budget` entries in all (the pass goes on at the next call). `full`: one whole pass
   * now (the test driver's advanceTime). Returns the instances removed.
   */
  expire(now: number, budget: number, full = false): number {
    this.setTime(now);
    let removed = 0;
    for (let i = 0; i < this.expiries.length && budget > 0; i++) {
      const e = this.expiries[i];
      if (e === null) continue;
      if (e.scan === null) {
        if (e.touched.size === 0 || (!full && now - e.passStarted < e.ttl / PASSES_PER_TTL)) continue;
        e.scan = e.touched.entries();
        e.passStarted = now;
      }
      // A tick t stands for a touch before (t + 1) * resolution: removed once that is a ttl ago.
      const cutoff = e.resolution === 0 ? now - e.ttl : Math.floor((now - e.ttl) / e.resolution) - 1;
      for (;;) {
        if (!full && budget <= 0) break;
        const r = e.scan.next();
        if (r.done) {
          e.scan = null;
          break;
        }
        budget--;
        // Deleting the entry the iterator is on is safe: a Map iterator skips removed
        // entries and sees entries touched after it started (they are not expired).
        const [key, tick] = r.value;
        if (tick <= cutoff) {
          this.removeInstance(e.state, key);
          this.expiredCount[e.state]++;
          removed++;
        }
      }
    }
    return removed;
  }

  /** A window step's message: its outputs now (a count window's, a late event's own), saved always. */
  private windowMessage(step: StepRun, st: WindowState, key: Key, value: unknown): [unknown[] | null, boolean] {
    return [this.windows!.onMessage(step.id, st, key, value, this.eventTime, this.late), true];
  }

  /** A late event of window step `id`: counted in its slot, then reported (made once, not per message). */
  private readonly late = (id: number, value: unknown, eventTime: number, watermark: number, dropped: boolean) => {
    this.slots[this.layout.stepLate + id]++;
    this.onLate(this.stepLabels[id], value, eventTime, watermark, dropped);
  };

  /**
   * Window steps' timer, called every WINDOW_TICK_MS between batches (and by the test
   * driver when its time moves): moves the watermarks, fires the closed windows of this
   * worker's keys (their outputs go on as the step's outputs do), then sends this worker's
   * marks to every peer, after what was gathered for it (the order the runtime relies on).
   */
  windowTick(): void {
    const w = this.windows;
    if (w === null || this.halted) return;
    this.sampleT0 = 0;
    for (const id of w.advance(w.now())) {
      const step = this.stepRuns[id];
      const state = step.state!;
      const out: unknown[] = [];
      // A window's output goes on with the watermark that closed it as its event time (at or
      // after the window's end), for a window step further down the pipeline.
      this.eventTime = w.watermark(id);
      w.forEachOpen(id, (key, st) => {
        this.at = step.at;
        this.dirty?.[state.id].add(key);
        try {
          w.fireKey(id, st, key, out);
        } catch (err) {
          this.failed(err);
        }
        if (out.length > 0) this.fanOut(step, step.pipeline, out.splice(0));
      });
      if (this.halted) return;
    }
    this.sendMarks();
  }

  /** Windows still open on this worker (panes, sessions, count windows), and the keys holding them. */
  openWindows(): { windows: number; keys: number } {
    let windows = 0;
    let keys = 0;
    const count = (step: StepRun, inst: object | null) => {
      const n = inst === null ? 0 : this.windows!.openWindows(step.id, inst as WindowState);
      windows += n;
      if (n > 0) keys++;
    };
    for (const step of this.stepRuns) {
      if (!step.windowed) continue;
      const state = step.state!;
      if (state.partitioned) for (const inst of this.instances[state.id].values()) count(step, inst);
      else count(step, this.singleInstances[state.id]);
    }
    return { windows, keys };
  }

  /** Sends this worker's input marks to every peer, after what was gathered for it (see windowTick). */
  sendMarks(): void {
    const w = this.windows;
    if (w === null || this.plan.workers === 1) return;
    const frame = w.marksFrame();
    for (let v = 0; v < this.peers.length; v++) {
      if (this.peers[v] === null) continue;
      this.flushPeer(v);
      this.peers[v]!.send(tag(MARKS, this.index), frame, 0, frame.length);
    }
  }

  /** Stops all processing (--fail-fast): see `halted`. */
  halt(): void {
    this.halted = true;
  }

  /** The live instance of a state for `key` (ignored for toStateful), if this worker has created it. */
  peekInstance(stateId: number, key: Key): object | undefined {
    if (!this.states[stateId].partitioned) return this.singleInstances[stateId] ?? undefined;
    return this.instances[stateId].get(key);
  }

  /** Turns on dirty tracking (resilience). */
  trackDirty(): void {
    this.dirty = this.states.map(() => new Set());
  }

  /**
   * Hands every instance marked dirty since the last call to `visit` and clears the
   * marks; `instance` null: it was removed (DELETE or ttl) and not created again since,
   * so the checkpoint must remove it too. Called only while the engine is quiescent.
   */
  takeDirty(visit: (stateId: number, key: Key, instance: object | null) => void): void {
    if (this.dirty === null) return;
    this.dirty.forEach((keys, id) => {
      const state = this.states[id];
      for (const key of keys) {
        const inst = state.partitioned ? this.instances[id].get(key) : this.singleInstances[id];
        visit(id, key, inst ?? null);
      }
      keys.clear();
    });
  }

  /**
   * Puts restored instances in place before any message arrives (call setTime() first:
   * an instance of a ttl state counts as touched when it is restored).
   */
  restore(entries: [number, Key, unknown][]): void {
    for (const [id, key, inst] of entries) {
      if (this.states[id].partitioned) this.instances[id].set(key, inst as object);
      else this.singleInstances[id] = inst as object;
      const e = this.expiries[id];
      if (e !== null) e.touched.set(key, e.tick);
      this.windows?.restored(id, key, inst as WindowState);
    }
  }

  private instance(state: StatePlan, key: Key): object {
    if (!state.partitioned) {
      let s = this.singleInstances[state.id];
      if (s === null) s = this.singleInstances[state.id] = new state.spec.stateClass();
      return s;
    }
    const map = this.instances[state.id];
    let s = map.get(key);
    if (s === undefined) {
      s = new state.spec.stateClass();
      map.set(key, s);
    }
    return s;
  }

  /**
   * Sends a message to the worker that owns its state instance: [key type][value type][key
   * length][key][value]. In a STEP_BATCH frame, a short string value (a word) is written to
   * the batch's text instead (see VALUE_TEXT), and its value is its length in UTF-16 units.
   */
  private toPeer(
    owner: number,
    stepId: number,
    partitioned: boolean,
    key: Key,
    value: unknown,
    raw: Buffer | null,
  ): void {
    const ch = this.peers[owner]!;
    const gather = this.peerGather[owner];
    let valueType: number;
    let valueLen: number;
    /** UTF-16 units this message adds to the batch's text (VALUE_TEXT) */
    let units = 0;
    let packed: Uint8Array | null = null;
    if (raw !== null) {
      valueType = VALUE_RAW;
      valueLen = raw.length;
    } else if (typeof value === "string" && this.rawStrings) {
      units = value.length;
      if (gather !== null && units <= PEER_TEXT_UNITS) {
        valueType = VALUE_TEXT;
        valueLen = 4;
      } else {
        units = 0;
        valueType = VALUE_STRING;
        valueLen = utf8Length(value);
      }
    } else {
      valueType = VALUE_PACKED;
      packed = this.peerCodecs[owner]!.pack(value);
      valueLen = packed.length;
    }
    let keyType = KEY_NONE;
    let keyLen = 0;
    let keyText = "";
    const declared = partitioned ? this.stepDeclaredIndex[stepId]!.get(key) : undefined;
    if (declared !== undefined) {
      keyType = KEY_DECLARED;
      keyLen = 4;
    } else if (partitioned) {
      if (typeof key === "string") {
        keyType = KEY_STRING;
        keyLen = utf8Length(key);
        keyText = key;
      } else if (typeof key === "number") {
        keyType = KEY_NUMBER;
        keyLen = 8;
      } else {
        keyType = KEY_BIGINT;
        keyText = key.toString();
        keyLen = keyText.length;
      }
    }
    const timed = this.sampleT0 !== 0;
    const withTime = this.stepRuns[stepId].carriesEventTime;
    const total = STEP_HEADER + keyLen + valueLen + (withTime ? 8 : 0) + (timed ? 8 : 0);
    let off: number;
    let buf: FastBuffer;
    let base: number;
    if (gather !== null && BATCH_HEADER + BATCH_ENTRY_HEADER + total + units * 3 <= gather.length) {
      // Into this peer's batch (flushed per input batch by the worker, or when full). The
      // batch's text goes after its entries when it is flushed, at most 3 bytes per UTF-16
      // unit: the room for it is kept free.
      let at = this.peerGatherLen[owner];
      if (at === 0) at = BATCH_HEADER;
      else if (at + BATCH_ENTRY_HEADER + total + this.peerTextBytes[owner] + units * 3 > gather.length) {
        this.flushPeer(owner);
        at = BATCH_HEADER;
      }
      writeU32LE(gather, at, stepId);
      writeU32LE(gather, at + 4, total);
      buf = gather;
      base = at + BATCH_ENTRY_HEADER;
      this.peerGatherLen[owner] = base + total;
      off = 0; // written in place, nothing to send
    } else {
      // Too large for a batch: a frame of its own, after what was gathered (the order to one peer is kept).
      if (gather !== null) this.flushPeer(owner);
      off = ch.reserve(tag(STEP, stepId), total);
      buf = (off >= 0 ? this.peerBufs[owner]! : Buffer.allocUnsafe(total)) as FastBuffer;
      base = off >= 0 ? off : 0;
    }
    buf[base] = keyType;
    buf[base + 1] = valueType | (timed ? VALUE_TIMED : 0) | (withTime ? VALUE_EVENT_TIME : 0);
    writeU32LE(buf, base + 2, keyLen);
    const k = base + STEP_HEADER;
    if (keyType === KEY_DECLARED) writeU32LE(buf, k, declared!);
    else if (keyType === KEY_STRING) utf8Write(buf, keyText, k, keyLen);
    else if (keyType === KEY_NUMBER) buf.writeDoubleLE(key as number, k);
    else if (keyType === KEY_BIGINT) buf.latin1Write(keyText, k, keyLen);
    const v = k + keyLen;
    if (valueType === VALUE_TEXT) {
      writeU32LE(buf, v, units);
      // Encoded on its own, as VALUE_STRING would be (a lone surrogate becomes U+FFFD, never
      // half of a pair with its neighbour's), into the batch's text: UTF-8 decodes back the
      // same, one string at a time or all of them at once, and to as many UTF-16 units.
      const at = this.peerTextBytes[owner];
      this.peerTextBytes[owner] = at + utf8Write(this.peerText[owner]!, value as string, at, units * 3);
    } else if (raw !== null) {
      // A loop of its own for a few bytes (alphabet's 5), else the whole payload with
      // TypedArray#set: it needs no view then, and beats copyBytes' byte loop (~2.5 ns a byte,
      // its feedback shared by every caller) above a dozen bytes (market_spread's 42-53).
      const n = raw.length;
      if (n <= 16) for (let i = 0; i < n; i++) buf[v + i] = raw[i];
      else buf.set(raw, v);
    } else if (valueType === VALUE_STRING) utf8Write(buf, value as string, v, valueLen);
    else buf.set(packed!, v);
    if (withTime) buf.writeDoubleLE(this.eventTime, v + valueLen);
    if (timed) buf.writeDoubleLE(this.sampleT0, v + valueLen + (withTime ? 8 : 0));
    if (off < 0) ch.send(tag(STEP, stepId), buf, 0, total);
  }

  /** Hands peer v's batch to its ring: [entries' end u32 LE][entries][text, UTF-8]. */
  private flushPeer(v: number): void {
    const len = this.peerGatherLen[v];
    if (len > 0) {
      const gather = this.peerGather[v]!;
      let end = len;
      const text = this.peerTextBytes[v];
      if (text > 0) {
        // Fits: toPeer kept the text's room free after the entries.
        this.peerText[v]!.copy(gather, len, 0, text);
        end += text;
        this.peerTextBytes[v] = 0;
      }
      writeU32LE(gather, 0, len);
      this.peerGatherLen[v] = 0;
      this.peers[v]!.send(tag(STEP_BATCH, 0), gather, 0, end);
    }
  }

  /**
   * Hands every gathered message to its peer's ring; the worker calls this once per
   * batch, before it publishes (and always before it sleeps).
   */
  flushPeers(): void {
    for (let v = 0; v < this.peerGatherLen.length; v++) if (this.peerGatherLen[v] > 0) this.flushPeer(v);
  }

  private emit(pipeline: number, value: unknown): void {
    // A Promise inside a result (an element of a multi computation's array, a state
    // computation's output) was never awaited: an error, not "[object Promise]" in the sink.
    if (value instanceof Promise) throw promiseInResult();
    const sinks = this.pipelineSinkRuns[pipeline];
    if (this.sampleT0 !== 0)
      observe(this.slots, this.layout.e2eHist + pipeline * HIST_SLOTS, epochMs() - this.sampleT0);
    for (let i = 0; i < sinks.length; i++) {
      const sink = sinks[i];
      const k = sink.id;
      this.at = sink.at;
      const encoded = sink.encode(value);
      if (sink.kind === SINK_GATHER) this.writeBytes(k, encoded);
      else if (sink.kind === SINK_KAFKA) this.kafkaOut[k]!.write(encoded);
      else this.writeOutput(k, encoded);
      this.outCount[k]++;
    }
  }

  /**
   * TCP sink output is gathered here, per sink, and handed to the sink's ring as
   * one frame per batch (flushSinks): the sink thread then copies large blocks, not
   * one frame per output. The stream of bytes is the same.
   *
   * Strings are not encoded one by one: they are concatenated (a rope, O(1) per
   * output) and encoded by one native call per batch (encodePending). One call per
   * short string into Buffer's encoder, or a JavaScript loop per character, cost
   * 18% of a word-count worker. UTF-8 takes at most 3 bytes per UTF-16 unit, so
   * pending text whose units times 3 fit in the rest of the buffer always fits.
   */
  private writeBytes(k: number, encoded: unknown): void {
    // The common cases, small enough for V8 to inline into the runner: a string that
    // fits in the pending text, bytes that fit after what was gathered. Everything
    // else (and these too) is writeBytesSlow's.
    if (typeof encoded === "string") {
      const units = this.pendingUnits[k];
      if (this.gatherLen[k] + (units + encoded.length) * 3 <= GATHER_BYTES) {
        this.pendingText[k] = units > 0 ? this.pendingText[k] + encoded : encoded;
        this.pendingUnits[k] = units + encoded.length;
        return;
      }
    } else if (encoded instanceof Uint8Array && this.pendingUnits[k] === 0) {
      const len = this.gatherLen[k];
      const n = encoded.length;
      if (len + n <= GATHER_BYTES) {
        // A loop of its own for a few bytes, else TypedArray#set (one native copy, no view
        // allocated): copyBytes' loop, whose feedback every caller shares, ran at ~1 ns per
        // byte here, 18% of a passthrough worker.
        const out = this.gather[k]!;
        if (n <= 16) for (let i = 0; i < n; i++) out[len + i] = encoded[i];
        else out.set(encoded, len);
        this.gatherLen[k] = len + n;
        return;
      }
    }
    this.writeBytesSlow(k, encoded);
  }

  private writeBytesSlow(k: number, encoded: unknown): void {
    if (typeof encoded === "string") {
      const n = encoded.length;
      let units = this.pendingUnits[k];
      if (this.gatherLen[k] + (units + n) * 3 > GATHER_BYTES) {
        // Encoding empties the pending text: `units` must say so, or every later output
        // would take this branch and its own encode call (as it did, unnoticed, until the
        // profile showed utf8Write at 14% of a word-count step runner).
        let len = this.gatherLen[k];
        if (units > 0) {
          len = this.encodePending(k);
          units = 0;
        }
        // A nearly full buffer is sent rather than topped up: each top-up would be an encode call.
        if (len + n * 3 > GATHER_BYTES || GATHER_BYTES - len < GATHER_BYTES / 8) {
          this.flushSink(k);
          len = 0;
        }
        if (n * 3 > GATHER_BYTES) {
          const b = Buffer.from(encoded, "utf8");
          this.sinks[k].send(tag(SINK, k), b, 0, b.length);
          return;
        }
      }
      this.pendingText[k] = units > 0 ? this.pendingText[k] + encoded : encoded;
      this.pendingUnits[k] = units + n;
    } else if (encoded instanceof Uint8Array) {
      // Text before this output goes first (order of the byte stream).
      let len = this.pendingUnits[k] > 0 ? this.encodePending(k) : this.gatherLen[k];
      const n = encoded.length;
      if (len + n > GATHER_BYTES) {
        this.flushSink(k);
        len = 0;
        if (n > GATHER_BYTES) {
          this.sinks[k].send(tag(SINK, k), encoded, 0, n);
          return;
        }
      }
      const out = this.gather[k]!;
      if (n <= 16) for (let i = 0; i < n; i++) out[len + i] = encoded[i];
      else out.set(encoded, len);
      this.gatherLen[k] = len + n;
    } else {
      throw badTcpOutput(encoded);
    }
  }

  /** Encodes the pending text of sink k into its gather buffer (it fits: see writeBytes); returns the bytes gathered. */
  private encodePending(k: number): number {
    const at = this.gatherLen[k];
    const len = at + this.gather[k]!.utf8Write(this.pendingText[k], at, GATHER_BYTES - at);
    this.pendingText[k] = "";
    this.pendingUnits[k] = 0;
    this.gatherLen[k] = len;
    return len;
  }

  /** One frame per output, not gathered (the test driver). */
  private writeOutput(k: number, encoded: unknown): void {
    if (typeof encoded === "string") {
      const n = utf8Length(encoded);
      const off = this.sinks[k].reserve(tag(SINK, k), n);
      if (off >= 0) {
        utf8Write(this.sinks[k].buffer, encoded, off, n);
      } else {
        const b = Buffer.from(encoded, "utf8");
        this.sinks[k].send(tag(SINK, k), b, 0, b.length);
      }
    } else if (encoded instanceof Uint8Array) {
      this.sinks[k].send(tag(SINK, k), encoded, 0, encoded.length);
    } else {
      throw badTcpOutput(encoded);
    }
  }

  private flushSink(k: number): void {
    const len = this.pendingUnits[k] > 0 ? this.encodePending(k) : this.gatherLen[k];
    if (len > 0) {
      this.gatherLen[k] = 0;
      this.sinks[k].send(tag(SINK, k), this.gather[k]!, 0, len);
    }
  }

  /** Hands every gathered TCP output to its sink ring; the worker calls this once per batch. */
  flushSinks(): void {
    for (let k = 0; k < this.gatherLen.length; k++)
      if (this.gatherLen[k] > 0 || this.pendingUnits[k] > 0) this.flushSink(k);
    for (let k = 0; k < this.kafkaOut.length; k++) this.kafkaOut[k]?.flush();
  }
}

function promiseInResult(): TypeError {
  return new TypeError(
    "a computation's output is a Promise inside its result (an element of a multi computation's array, or the output of a state computation's [output, saveState]); return a Promise of the whole result instead (an async function), which the step awaits; the output is dropped",
  );
}

function badTcpOutput(encoded: unknown): TypeError {
  if (encoded instanceof Promise) return syncOnly("an encoder");
  return new TypeError(
    `an encoder for a TCP sink must return a Buffer, Uint8Array or string, got ${describe(encoded)}; the output is dropped`,
  );
}

function checkKey(k: unknown): Key {
  switch (typeof k) {
    case "string":
      return k;
    case "number":
      if (Number.isFinite(k)) return k;
      break;
    case "bigint":
      return normalizeKey(k);
  }
  if (k instanceof Promise) throw syncOnly("a partition function");
  throw new TypeError(`a partition function must return a string, a finite number or a bigint, got ${describe(k)}`);
}

function describe(v: unknown): string {
  if (v == null) return String(v);
  if (Array.isArray(v)) return "an array";
  return typeof v === "object"
    ? `an object (${(v as object).constructor?.name ?? "Object"})`
    : `${typeof v} ${String(v)}`;
}
