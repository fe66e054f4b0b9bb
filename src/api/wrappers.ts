/**
 * The wrappers that stand for the decorators of Wallaroo's Python API
 * (`@computation(name)`, `@state_computation(name)`, `@partition`, `@decoder(...)`,
 * `@encoder`). Each returns a frozen description tagged with KIND, which is how
 * build() tells a wrapped function from a plain one.
 *
 * Mistakes made here (a non-function, a missing name, a bad header format) are
 * programming errors at definition time, so they throw at once instead of at build().
 */
import { WallarooParameterError } from "./errors.js";
import type { KafkaRecordMeta } from "../topology/kafka.js";
import { parseLengthFormat } from "../core/struct.js";
import {
  KIND,
  type AsyncSettings,
  type DELETE,
  type Computation,
  type Decoder,
  type Encoder,
  type Key,
  type PartitionFunction,
  type StateComputation,
} from "../topology/spec.js";

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return typeof v === "object" ? "an object" : `a ${typeof v}`;
}

function checkName(wrapper: string, name: unknown): string {
  if (typeof name !== "string" || name.trim() === "") {
    throw new WallarooParameterError(
      `${wrapper}(name, fn): the name must be a non-empty string, got ${describe(name)}`,
    );
  }
  return name;
}

function checkFn<F>(wrapper: string, what: string, fn: F): F {
  if (typeof fn !== "function") {
    throw new WallarooParameterError(`${wrapper}: ${what} must be a function, got ${describe(fn)}`);
  }
  return fn;
}

/**
 * Options of the computation wrappers, for a function that returns a Promise (an `async`
 * function): like Flink's async I/O. A function that returns a plain value runs as before.
 */
export interface AsyncOptions {
  /** calls of this step in flight at once, per worker; at the limit the worker stops taking input (default 64) */
  concurrency?: number;
  /** ms after which a call that has not settled fails like a throwing computation (default 0: no timeout) */
  timeout?: number;
  /** pass results on as they complete instead of in input order (a state step still keeps each key's order) */
  unordered?: boolean;
}

/** concurrency when the options do not say */
export const DEFAULT_CONCURRENCY = 64;
const ASYNC_OPTIONS = new Set(["concurrency", "timeout", "unordered"]);

function asyncSettings(wrapper: string, options: unknown): AsyncSettings {
  if (options === undefined) return Object.freeze({ concurrency: DEFAULT_CONCURRENCY, timeout: 0, unordered: false });
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new WallarooParameterError(
      `${wrapper}: options must be an object such as { concurrency: 64, timeout: 5000, unordered: false }, got ${describe(options)}`,
    );
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!ASYNC_OPTIONS.has(k)) {
      throw new WallarooParameterError(
        `${wrapper}: unknown option "${k}"; the options are concurrency, timeout and unordered`,
      );
    }
  }
  const concurrency = o.concurrency ?? DEFAULT_CONCURRENCY;
  if (typeof concurrency !== "number" || !Number.isInteger(concurrency) || concurrency < 1) {
    throw new WallarooParameterError(`${wrapper}: concurrency must be an integer >= 1, got ${describe(concurrency)}`);
  }
  const timeout = o.timeout ?? 0;
  if (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout < 0) {
    throw new WallarooParameterError(
      `${wrapper}: timeout must be a number of ms >= 0 (0: no timeout), got ${describe(timeout)}`,
    );
  }
  const unordered = o.unordered ?? false;
  if (typeof unordered !== "boolean") {
    throw new WallarooParameterError(`${wrapper}: unordered must be true or false, got ${describe(unordered)}`);
  }
  return Object.freeze({ concurrency, timeout, unordered });
}

/** A state computation's result: `[output | null, saveState]`, or with wallaroo.DELETE as a third element. */
export type StateResult<O> = [O | null | undefined, boolean] | [O | null | undefined, boolean, typeof DELETE];
/** A multi state computation's result: `[outputs[] | null, saveState]`, or with wallaroo.DELETE. */
export type StateMultiResult<O> =
  | [readonly (O | null | undefined)[] | null | undefined, boolean]
  | [readonly (O | null | undefined)[] | null | undefined, boolean, typeof DELETE];

/**
 * A stateless computation: `fn` returns the output; null/undefined sends nothing on.
 * `fn` may return a Promise of it (see AsyncOptions for `options`).
 */
export function computation<I = any, O = any>(
  name: string,
  fn: (input: I) => PromiseLike<O | null | undefined>,
  options?: AsyncOptions,
): Computation<I, O>;
export function computation<I = any, O = any>(
  name: string,
  fn: (input: I) => O | null | undefined,
  options?: AsyncOptions,
): Computation<I, O>;
export function computation(name: string, fn: (input: unknown) => unknown, options?: AsyncOptions): Computation {
  const n = checkName("computation", name);
  return Object.freeze({
    [KIND]: "computation" as const,
    name: n,
    multi: false,
    fn: checkFn(`computation("${n}")`, "fn", fn),
    async: asyncSettings(`computation("${n}")`, options),
  });
}

/**
 * A stateless computation with many outputs: `fn` returns an array (each element goes on)
 * or null, or a Promise of it (see AsyncOptions).
 */
export function computationMulti<I = any, O = any>(
  name: string,
  fn: (input: I) => PromiseLike<readonly (O | null | undefined)[] | null | undefined>,
  options?: AsyncOptions,
): Computation<I, O>;
export function computationMulti<I = any, O = any>(
  name: string,
  // null/undefined elements are skipped (nothing sent for them), so O is the type of the others
  fn: (input: I) => readonly (O | null | undefined)[] | null | undefined,
  options?: AsyncOptions,
): Computation<I, O>;
export function computationMulti(name: string, fn: (input: unknown) => unknown, options?: AsyncOptions): Computation {
  const n = checkName("computationMulti", name);
  return Object.freeze({
    [KIND]: "computation" as const,
    name: n,
    multi: true,
    fn: checkFn(`computationMulti("${n}")`, "fn", fn),
    async: asyncSettings(`computationMulti("${n}")`, options),
  });
}

/**
 * A state computation: `fn(input, state)` returns `[output | null, saveState]`, or
 * `[output | null, saveState, wallaroo.DELETE]` to end the instance after this message
 * (the output still goes on; the next message for the key starts with a fresh instance).
 * `fn` may return a Promise of it (see AsyncOptions): a key's next message then waits
 * until its call settles, so the state is never used by two calls at once.
 */
export function stateComputation<I = any, S = any, O = any>(
  name: string,
  // One signature with a union (not overloads): the union keeps a returned array literal a
  // tuple, in an async function too, where overloads made it (O | boolean)[].
  fn: (input: I, state: S) => StateResult<O> | PromiseLike<StateResult<O>>,
  options?: AsyncOptions,
): StateComputation<I, S, O>;
export function stateComputation(
  name: string,
  fn: (input: unknown, state: unknown) => unknown,
  options?: AsyncOptions,
): StateComputation {
  const n = checkName("stateComputation", name);
  return Object.freeze({
    [KIND]: "stateComputation" as const,
    name: n,
    multi: false,
    fn: checkFn(`stateComputation("${n}")`, "fn", fn),
    async: asyncSettings(`stateComputation("${n}")`, options),
  });
}

/**
 * A state computation with many outputs: `fn(input, state)` returns `[outputs[] | null, saveState]`,
 * or `[outputs[] | null, saveState, wallaroo.DELETE]` to end the instance (see stateComputation),
 * or a Promise of it.
 */
export function stateComputationMulti<I = any, S = any, O = any>(
  name: string,
  fn: (input: I, state: S) => StateMultiResult<O> | PromiseLike<StateMultiResult<O>>,
  options?: AsyncOptions,
): StateComputation<I, S, O>;
export function stateComputationMulti(
  name: string,
  fn: (input: unknown, state: unknown) => unknown,
  options?: AsyncOptions,
): StateComputation {
  const n = checkName("stateComputationMulti", name);
  return Object.freeze({
    [KIND]: "stateComputation" as const,
    name: n,
    multi: true,
    fn: checkFn(`stateComputationMulti("${n}")`, "fn", fn),
    async: asyncSettings(`stateComputationMulti("${n}")`, options),
  });
}

/** The partition function of a partitioned state: maps an input to its key. */
export function partition<I = any>(fn: (input: I) => Key): PartitionFunction<I> {
  return Object.freeze({ [KIND]: "partition" as const, fn: checkFn("partition(fn)", "fn", fn) });
}

/** TCP sink: `fn` returns Buffer | Uint8Array | string; Kafka sink: `[value, key]`. */
export function encoder<O = any>(fn: (output: O) => unknown): Encoder<O> {
  return Object.freeze({ [KIND]: "encoder" as const, fn: checkFn("encoder(fn)", "fn", fn) });
}

export interface DecoderOptions {
  /** bytes of the length header; must be the size of lengthFmt (default 4) */
  headerLength?: number;
  /** Python struct format of the length header (default ">I") */
  lengthFmt?: string;
  /** spelling of the Python API, accepted for porting */
  header_length?: number;
  /** spelling of the Python API, accepted for porting */
  length_fmt?: string;
}

const DECODER_OPTIONS = new Set(["headerLength", "lengthFmt", "header_length", "length_fmt"]);

/**
 * A decoder for a source. `fn` receives the payload bytes (a TCP frame without its
 * header, or a Kafka message value). `decoder(fn)` uses the defaults (4, ">I").
 * For a Kafka source, a function that declares a second parameter gets the record's
 * metadata there (KafkaRecordMeta: key, timestamp, headers, topic, partition, offset);
 * one that does not is called with the value alone (the faster path: see message-frame.ts).
 * A TCP source calls it with the payload alone.
 * A null/undefined result sends nothing on, so the pipeline's type is `T` without them.
 */
export function decoder<T = any>(fn: (payload: Buffer, meta: KafkaRecordMeta) => T | null | undefined): Decoder<T>;
export function decoder<T = any>(
  options: DecoderOptions,
  fn: (payload: Buffer, meta: KafkaRecordMeta) => T | null | undefined,
): Decoder<T>;
export function decoder(a: unknown, b?: unknown): Decoder {
  if (typeof a === "function" && b === undefined) return makeDecoder({}, a as Decoder["fn"]);
  if (a === null || typeof a !== "object" || Array.isArray(a)) {
    throw new WallarooParameterError(
      `decoder(options, fn): options must be an object such as { headerLength: 4, lengthFmt: ">I" } ` +
        `(or call decoder(fn) for those defaults), got ${describe(a)}`,
    );
  }
  return makeDecoder(a as DecoderOptions, checkFn("decoder(options, fn)", "fn", b) as Decoder["fn"]);
}

function makeDecoder(options: DecoderOptions, fn: Decoder["fn"]): Decoder {
  for (const k of Object.keys(options)) {
    if (!DECODER_OPTIONS.has(k)) {
      throw new WallarooParameterError(
        `decoder(options, fn): unknown option "${k}"; the options are headerLength and lengthFmt`,
      );
    }
  }
  const pick = <T>(camel: T | undefined, snake: T | undefined, name: string): T | undefined => {
    if (camel !== undefined && snake !== undefined && camel !== snake) {
      throw new WallarooParameterError(
        `decoder(options, fn): give ${name} once (it was given in two spellings with different values)`,
      );
    }
    return camel ?? snake;
  };
  const lengthFmt = pick(options.lengthFmt, options.length_fmt, "lengthFmt") ?? ">I";
  let size: number;
  try {
    size = parseLengthFormat(lengthFmt).size;
  } catch (e) {
    throw new WallarooParameterError(`decoder(options, fn): ${(e as Error).message}`);
  }
  // headerLength defaults to the size of lengthFmt (4 for the default ">I"), so that
  // { lengthFmt: ">H" } alone is right instead of a guaranteed mismatch.
  const headerLength = pick(options.headerLength, options.header_length, "headerLength") ?? size;
  if (headerLength !== size) {
    throw new WallarooParameterError(
      `decoder(options, fn): headerLength ${String(headerLength)} does not match lengthFmt ${JSON.stringify(lengthFmt)}, ` +
        `which is ${size} byte${size === 1 ? "" : "s"}; use headerLength: ${size} or a ${String(headerLength)}-byte format`,
    );
  }
  return Object.freeze({ [KIND]: "decoder" as const, headerLength, lengthFmt, fn });
}

// Spellings of the Python API, for porting.
export const computation_multi = computationMulti;
export const state_computation = stateComputation;
export const state_computation_multi = stateComputationMulti;
