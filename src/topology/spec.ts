/**
 * The application description that `ApplicationBuilder.build()` returns: what the
 * user declared, validated, with nothing runtime-specific in it. The runtime turns
 * it into a plan (see plan.ts) in every thread.
 */

export type { Key } from "../core/hash.js";
import type { Key } from "../core/hash.js";
import type { Windows } from "./windows.js";
import type { KafkaSecuritySpec } from "./kafka.js";

// In a module of its own, so that windows.ts (which spec.ts imports) can use it without a cycle.
import { KIND } from "./kind.js";
export { KIND };

/**
 * What a state computation returns as the third element of its result to end its
 * instance: `[output, saveState, wallaroo.DELETE]`. The instance is removed (from the
 * next checkpoint too) and the next message for its key starts with a fresh one.
 * Symbol.for, like KIND: an application that loads a second copy of the package
 * still returns the symbol the runtime compares with.
 */
export const DELETE: unique symbol = Symbol.for("wallaroo.DELETE");

/**
 * Type-only marker of the output type a wrapper carries, so that a typed pipeline
 * (ApplicationBuilder.newPipeline) knows what the next step receives. It never
 * exists at run time.
 */
declare const OUTPUT: unique symbol;

/**
 * The type parameters are for the type checker only: `I` is what the step receives,
 * `O` what it sends on (for a multi computation: each element). They default to
 * `any`, so the runtime and untyped code see the same shapes as before.
 */
/**
 * How a step runs calls that return a Promise (src/runtime/async-steps.ts): at most
 * `concurrency` calls in flight per worker, each failing after `timeout` ms (0: none),
 * results passed on in input order unless `unordered`.
 */
export interface AsyncSettings {
  readonly concurrency: number;
  readonly timeout: number;
  readonly unordered: boolean;
}

export interface Computation<I = any, O = any> {
  readonly [KIND]: "computation";
  readonly name: string;
  readonly multi: boolean;
  /** returns the output (multi: an array of outputs), or a Promise of it; null/undefined sends nothing on */
  readonly fn: (input: I) => any;
  readonly async: AsyncSettings;
  readonly [OUTPUT]?: O;
}

export interface StateComputation<I = any, S = any, O = any> {
  readonly [KIND]: "stateComputation";
  readonly name: string;
  readonly multi: boolean;
  /**
   * returns [output | null, saveState] (multi: [outputs[] | null, saveState]), with
   * DELETE as a third element to end the instance
   */
  readonly fn: (input: I, state: S) => any;
  readonly async: AsyncSettings;
  readonly [OUTPUT]?: O;
}

export interface PartitionFunction<I = any> {
  readonly [KIND]: "partition";
  readonly fn: (input: I) => Key;
}

export interface Decoder<T = any> {
  readonly [KIND]: "decoder";
  /** bytes of the length header; 0 is not allowed for TCP */
  readonly headerLength: number;
  /** Python struct format of the length header, e.g. ">I" */
  readonly lengthFmt: string;
  /** null/undefined: nothing is sent on */
  readonly fn: (payload: Buffer) => T | null | undefined;
}

export interface Encoder<O = any> {
  readonly [KIND]: "encoder";
  /** TCP sink: returns Buffer | Uint8Array | string; Kafka sink: returns [value, key] */
  readonly fn: (output: O) => any;
}

/**
 * What every source and sink spec has. `kind` names the connector that runs it
 * (src/connectors/registry.ts); `endpoint` says where it reads or writes, for logs,
 * the plan's labels and the metrics ("tcp 127.0.0.1:7000", "kafka topic words").
 * The config that makes the spec (api/configs.ts) sets both.
 */
export interface EndpointSpec {
  readonly kind: string;
  readonly endpoint: string;
}

/**
 * How a byte stream (a TCP connection, a file) is cut into messages: "length", each
 * message behind the decoder's length header; "lines", each line (up to `\n`, one
 * `\r` before it stripped) is a message (core/framing.ts).
 */
export type StreamFraming = "length" | "lines";

export interface TCPSourceSpec extends EndpointSpec {
  readonly kind: "tcp-source";
  readonly host: string;
  readonly port: number;
  readonly framing: StreamFraming;
  readonly decoder: Decoder;
  /** the event time (ms) of a decoded message, for windows; null: ingest time */
  readonly eventTime: ((decoded: any) => number) | null;
}
export interface FileSourceSpec extends EndpointSpec {
  readonly kind: "file-source";
  /** absolute: a file, or a directory whose files are read in name order */
  readonly path: string;
  readonly framing: StreamFraming;
  /** at the end, wait for the file (the directory's last file, or new files) to grow */
  readonly follow: boolean;
  readonly decoder: Decoder;
  /** the event time (ms) of a decoded message, for windows; null: ingest time */
  readonly eventTime: ((decoded: any) => number) | null;
}
export interface FileSinkSpec extends EndpointSpec {
  readonly kind: "file-sink";
  /** absolute */
  readonly path: string;
  /** rotate once the file holds this many bytes (0: never) */
  readonly maxBytes: number;
  readonly encoder: Encoder;
}
export interface KafkaSourceSpec extends EndpointSpec {
  readonly kind: "kafka-source";
  readonly topic: string;
  readonly brokers: [string, number][];
  readonly logLevel: string;
  /** TLS / SASL (connectors/kafka/security.ts) */
  readonly security: KafkaSecuritySpec;
  readonly decoder: Decoder;
  /** the event time (ms) of a decoded message, for windows; null: ingest time */
  readonly eventTime: ((decoded: any) => number) | null;
}
export interface TCPSinkSpec extends EndpointSpec {
  readonly kind: "tcp-sink";
  readonly host: string;
  readonly port: number;
  readonly encoder: Encoder;
}
export interface KafkaSinkSpec extends EndpointSpec {
  readonly kind: "kafka-sink";
  readonly topic: string;
  readonly brokers: [string, number][];
  readonly logLevel: string;
  readonly maxProduceBufferMs: number;
  readonly maxMessageSize: number;
  /** TLS / SASL (connectors/kafka/security.ts) */
  readonly security: KafkaSecuritySpec;
  readonly encoder: Encoder;
}
export type SourceSpec = TCPSourceSpec | KafkaSourceSpec | FileSourceSpec;
export type SinkSpec = TCPSinkSpec | KafkaSinkSpec | FileSinkSpec;

export type StepSpec =
  | { readonly kind: "to"; readonly computation: Computation }
  | { readonly kind: "toParallel"; readonly computation: Computation }
  | { readonly kind: "state"; readonly computation: StateComputation; readonly stateName: string }
  /** toWindows: the windows' per-key state is the state `stateName` (class WindowState, see src/windows/) */
  | { readonly kind: "window"; readonly windows: Windows; readonly stateName: string };

export interface StateSpec {
  readonly name: string;
  readonly stateClass: new () => object;
  /** null for toStateful (one instance); otherwise one instance per key */
  readonly partition: null | {
    readonly fn: PartitionFunction;
    /** declared keys, normalized (u64 keys that fit in a double are numbers), in declaration order */
    readonly keys: readonly Key[];
    readonly u64: boolean;
  };
  /**
   * ms of processing time after which an instance that no message touched is removed
   * (partitioned states only); absent: instances live until the engine stops or
   * their computation returns DELETE
   */
  readonly ttl?: number;
}

export interface PipelineSpec {
  readonly name: string;
  readonly source: SourceSpec;
  readonly steps: readonly StepSpec[];
  /** empty when the pipeline was closed with done(): its outputs are discarded */
  readonly sinks: readonly SinkSpec[];
}

export interface ApplicationSpec {
  readonly [KIND]: "application";
  readonly name: string;
  readonly pipelines: readonly PipelineSpec[];
  readonly states: readonly StateSpec[];
}
