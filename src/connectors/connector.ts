/**
 * What a connector contributes to the engine. A connector is one folder of
 * src/connectors (tcp/, kafka/) whose index.ts exports a `Connector`, listed once in
 * registry.ts; the engine (coordinator, I/O threads, workers, the test driver) asks
 * the registry about a source or sink instead of testing its kind.
 *
 * The user-facing config classes (api/configs.ts) and the spec types
 * (topology/spec.ts) sit below this layer and name the kinds themselves: the public
 * API and the frozen spec cannot depend on the engine's connectors.
 *
 * index.ts must stay light: every thread that looks a connector up loads it (the
 * workers too), so the I/O thread's code is imported only by `load()`; a TCP thread
 * never loads kafkajs.
 */
import type { MessagePort } from "node:worker_threads";
import type { SinkSpec, SourceSpec } from "../topology/spec.js";
import type { PendingTransaction } from "../recovery/store.js";

/** The init data of an I/O thread (its workerData): `kind` says which connector runs it. */
export interface IoInitBase {
  readonly kind: string;
}

/** The entry of a connector's I/O thread: runs until the coordinator stops it over `control`. */
export type IoMain<I> = (init: I, control: MessagePort) => void;

/** What the coordinator gives a source's I/O thread, whatever the connector. */
export interface SourceContext {
  readonly sourceId: number;
  /** the pipeline's name */
  readonly pipeline: string;
  /** one ring per worker, and the doorbells to wake each worker */
  readonly rings: SharedArrayBuffer[];
  readonly workerBells: SharedArrayBuffer[];
  /** --max-frame-bytes: the largest message a source may hand on */
  readonly maxFrameBytes: number;
  /** --kafka-group, or the application's name */
  readonly consumerGroup: string;
  /**
   * Resilience on: null when off. `position` is what this pipeline's source reported
   * when the checkpoint the engine restarts from paused it (see ToIo "pause"), if any.
   */
  readonly resilience: null | { readonly position: { topic: string; offsets: Record<string, string> } | undefined };
  /**
   * metrics on: ms the source waited for room in each worker's ring; consumer lag slots; the
   * backlog slot, for a source that measures its backlog in bytes (metrics/layout.ts)
   */
  readonly metrics: null | {
    readonly blockedMs: SharedArrayBuffer;
    readonly lag: SharedArrayBuffer;
    readonly backlog: SharedArrayBuffer;
  };
  /**
   * The pipeline has a window step and the source config no eventTime: a source whose records
   * carry a timestamp (Kafka) sends it with each message (a SOURCE_STAMPED frame) as its event time.
   */
  readonly stampEventTime: boolean;
}

/** What the coordinator gives a sink's I/O thread, whatever the connector. */
export interface SinkContext {
  readonly sinkId: number;
  /** "pipeline -> endpoint", for logs */
  readonly label: string;
  readonly appName: string;
  /** one ring per worker, the sink's doorbell, and its slot of the status word (transport/wiring.ts) */
  readonly rings: SharedArrayBuffer[];
  readonly bell: SharedArrayBuffer;
  readonly status: SharedArrayBuffer;
  readonly statusSlot: number;
  readonly resilience: boolean;
  /** resilience: this sink's Kafka transactions the restored checkpoint decided to commit (two-phase commit) */
  readonly pendingTransactions: readonly PendingTransaction[];
  /** resilience: the checkpoint store's id, part of transactional ids (stable across restarts on that store) */
  readonly storeInstance: string | undefined;
  /** metrics on: the sink's counters (SINK_SLOTS, metrics/layout.ts) */
  readonly counters: SharedArrayBuffer | undefined;
}

interface Side<S extends { kind: string }, I extends IoInitBase> {
  /** the spec kind this side runs (a SourceSpec or SinkSpec kind) */
  readonly kind: S["kind"];
  /**
   * Checks at engine start, before any thread runs, what the config could not check
   * alone (e.g. a TCP source's length format); throws an Error that names the fix.
   */
  validate(spec: S): void;
  /** Imports the I/O thread's code on demand (see the file comment). */
  load(): Promise<IoMain<I>>;
}

export interface SourceConnector<S extends SourceSpec = SourceSpec, I extends IoInitBase = IoInitBase>
  extends Side<S, I> {
  /**
   * How payloads reach the workers:
   * - "length-header": runs of whole messages, each behind the decoder's length header
   *   (a SOURCE_FRAMED frame; the worker splits it with core/framing.ts);
   * - "message": one payload per frame (a SOURCE frame); in the test driver a message
   *   may carry a key that picks the worker, as a Kafka partition feeds one worker.
   */
  readonly framing: "length-header" | "message";
  /** The I/O thread's init data (structured-cloned into the thread). */
  init(spec: S, ctx: SourceContext): I;
  /** the topic whose consumer lag (per partition) this source writes into its lag slots, or null */
  lagTopic(spec: S): string | null;
  /**
   * The worker's call of the decoder on one payload, where the connector's payloads are more
   * than the decoder's bytes (a Kafka record with its metadata); absent or null: `decoder.fn(payload)`.
   */
  decodeFn?(spec: S): ((payload: Buffer) => unknown) | null;
  /** The test driver's payload for one message of pipeInput (as the I/O thread would frame it); absent: the value. */
  testPayload?(spec: S, message: TestMessage): Buffer;
}

/** A message given to the test driver's pipeInput for a message-framed source. */
export interface TestMessage {
  key: Buffer | null;
  value: Buffer;
  timestamp?: number;
  headers?: Record<string, Buffer | string | null | (Buffer | string | null)[]>;
  partition?: number;
  offset?: number;
}

export interface SinkConnector<S extends SinkSpec = SinkSpec, I extends IoInitBase = IoInitBase> extends Side<S, I> {
  /**
   * What a worker writes to the sink's ring:
   * - "stream": the encoder's bytes (Buffer, Uint8Array or string), gathered into large
   *   frames; the sink delivers a byte stream and reports the bytes it delivered;
   * - "records": one Kafka record frame (the encoder's [value, key]) per output; the
   *   sink reports the outputs it delivered.
   */
  readonly output: "stream" | "records";
  /** with resilience, the sink produces in transactions the coordinator commits at each checkpoint ("commit") */
  readonly transactional: boolean;
  /** The I/O thread's init data (structured-cloned into the thread). */
  init(spec: S, ctx: SinkContext): I;
}

/** One connector: its folder's name and the sides it has. */
export interface Connector {
  /** the folder's name under src/connectors/ */
  readonly name: string;
  readonly source?: SourceConnector<any, any>;
  readonly sink?: SinkConnector<any, any>;
}
