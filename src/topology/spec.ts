/**
 * The application description that `ApplicationBuilder.build()` returns: what the
 * user declared, validated, with nothing runtime-specific in it. The runtime turns
 * it into a plan (see plan.ts) in every thread.
 */

export type { Key } from "../core/hash.js";
import type { Key } from "../core/hash.js";

/** Marks objects made by the wrappers, so that build() can tell them from plain functions. */
export const KIND = Symbol.for("wallaroo.kind");

export interface Computation {
  readonly [KIND]: "computation";
  readonly name: string;
  readonly multi: boolean;
  /** returns the output (multi: an array of outputs); null/undefined sends nothing on */
  readonly fn: (input: any) => any;
}

export interface StateComputation {
  readonly [KIND]: "stateComputation";
  readonly name: string;
  readonly multi: boolean;
  /** returns [output | null, saveState] (multi: [outputs[] | null, saveState]) */
  readonly fn: (input: any, state: any) => [any, boolean];
}

export interface PartitionFunction {
  readonly [KIND]: "partition";
  readonly fn: (input: any) => Key;
}

export interface Decoder {
  readonly [KIND]: "decoder";
  /** bytes of the length header; 0 is not allowed for TCP */
  readonly headerLength: number;
  /** Python struct format of the length header, e.g. ">I" */
  readonly lengthFmt: string;
  readonly fn: (payload: Buffer) => any;
}

export interface Encoder {
  readonly [KIND]: "encoder";
  /** TCP sink: returns Buffer | Uint8Array | string; Kafka sink: returns [value, key] */
  readonly fn: (output: any) => any;
}

export interface TCPSourceSpec { readonly kind: "tcp-source"; readonly host: string; readonly port: number; readonly decoder: Decoder }
export interface KafkaSourceSpec {
  readonly kind: "kafka-source"; readonly topic: string; readonly brokers: [string, number][];
  readonly logLevel: string; readonly decoder: Decoder;
}
export interface TCPSinkSpec { readonly kind: "tcp-sink"; readonly host: string; readonly port: number; readonly encoder: Encoder }
export interface KafkaSinkSpec {
  readonly kind: "kafka-sink"; readonly topic: string; readonly brokers: [string, number][]; readonly logLevel: string;
  readonly maxProduceBufferMs: number; readonly maxMessageSize: number; readonly encoder: Encoder;
}
export type SourceSpec = TCPSourceSpec | KafkaSourceSpec;
export type SinkSpec = TCPSinkSpec | KafkaSinkSpec;

export type StepSpec =
  | { readonly kind: "to"; readonly computation: Computation }
  | { readonly kind: "toParallel"; readonly computation: Computation }
  | { readonly kind: "state"; readonly computation: StateComputation; readonly stateName: string };

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
