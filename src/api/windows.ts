/**
 * The windows API: `aggregation(...)`, the duration helpers, and the window builders
 * `rangeWindows(range)`, `countWindows(n)`, `sessionWindows(gap)` with their `with*`
 * options and `over(aggregation)`, as Wallaroo 0.6 named them (with event time).
 *
 * Like the other wrappers, a mistake here throws a WallarooParameterError at once,
 * naming the fix. Each `with*` returns a new builder (a builder can be shared), and
 * each may be called once per chain, as Wallaroo's did.
 */
import { WallarooParameterError } from "./errors.js";
import { KIND, type Key } from "../topology/spec.js";
import {
  LATE_DATA_POLICIES,
  type Aggregation,
  type CountWindows,
  type LateDataPolicy,
  type RangeWindows,
  type SessionWindows,
  type WindowBounds,
} from "../topology/windows.js";

export type { Aggregation, LateDataPolicy, WindowBounds, Windows } from "../topology/windows.js";

function shown(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null || v === undefined || typeof v === "number" || typeof v === "boolean") return String(v);
  if (typeof v === "function") return "a function";
  return Array.isArray(v) ? "an array" : `a ${typeof v}`;
}

/** A whole number of milliseconds, > 0 (or >= 0 with `zero`). */
function checkMs(what: string, v: unknown, zero = false): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || (!zero && v === 0)) {
    throw new WallarooParameterError(
      `${what} must be a ${zero ? "non-negative" : "positive"} whole number of milliseconds, got ${shown(v)}; ` +
        `write it with wallaroo.milliseconds(n), seconds(n), minutes(n) or hours(n)`,
    );
  }
  return v;
}

export interface AggregationDefinition<I, A, O> {
  /** the step's name (logs, metrics, errors); unique among the application's computations */
  name: string;
  initial: () => A;
  update: (input: I, acc: A) => A | void;
  combine: (a: A, b: A) => A;
  output: (key: Key, window: WindowBounds, acc: A) => O | null | undefined;
}

/** The class form of an aggregation (Wallaroo's `over(AggregationClass)`): instantiated once, with no arguments. */
export interface AggregationClass<I = any, A = any, O = any> {
  new (): {
    initialAccumulator(): A;
    update(input: I, acc: A): A | void;
    combine(a: A, b: A): A;
    output(key: Key, window: WindowBounds, acc: A): O | null | undefined;
  };
}

/** An aggregation of a window's events into one output. */
export function aggregation<I = any, A = any, O = any>(def: AggregationDefinition<I, A, O>): Aggregation<I, A, O> {
  if (def === null || typeof def !== "object") {
    throw new WallarooParameterError(
      `aggregation(definition): give an object { name, initial, update, combine, output }, got ${shown(def)}`,
    );
  }
  const what = `aggregation(${typeof def.name === "string" ? JSON.stringify(def.name) : "{...}"})`;
  if (typeof def.name !== "string" || def.name.trim() === "") {
    throw new WallarooParameterError(`${what}: name must be a non-empty string, got ${shown(def.name)}`);
  }
  const need: [keyof AggregationDefinition<I, A, O>, string][] = [
    ["initial", "initial: () => a fresh accumulator"],
    ["update", "update: (input, acc) => void (mutating acc) or the new accumulator"],
    ["combine", "combine: (a, b) => the combined accumulator (without mutating a or b)"],
    ["output", "output: (key, window, acc) => the output, or null for none"],
  ];
  for (const [k, form] of need) {
    if (typeof def[k] !== "function") {
      throw new WallarooParameterError(`${what}: ${k} must be a function, got ${shown(def[k])}; add ${form}`);
    }
  }
  return Object.freeze({
    [KIND]: "aggregation" as const,
    name: def.name,
    initial: def.initial,
    update: def.update,
    combine: def.combine,
    output: def.output,
  }) as Aggregation<I, A, O>;
}

function isConstructor(v: unknown): v is new () => object {
  if (typeof v !== "function") return false;
  try {
    Reflect.construct(String, [], v);
    return true;
  } catch {
    return false;
  }
}

/** What over() accepts, as an Aggregation. */
function asAggregation(what: string, a: unknown): Aggregation {
  if (a !== null && typeof a === "object" && (a as { [KIND]?: unknown })[KIND] === "aggregation")
    return a as Aggregation;
  if (isConstructor(a)) {
    const methods = ["initialAccumulator", "update", "combine", "output"] as const;
    const proto = a.prototype as Record<string, unknown>;
    for (const m of methods) {
      if (typeof proto[m] !== "function") {
        throw new WallarooParameterError(
          `${what}: the aggregation class ${a.name || "(anonymous)"} has no method ${m}(); an aggregation class needs ` +
            "initialAccumulator(), update(input, acc), combine(a, b) and output(key, window, acc)",
        );
      }
    }
    const inst = new a() as Record<(typeof methods)[number], (...args: any[]) => any>;
    return aggregation({
      name: a.name || "aggregation",
      initial: () => inst.initialAccumulator(),
      update: (input, acc) => inst.update(input, acc),
      combine: (x, y) => inst.combine(x, y),
      output: (key, window, acc) => inst.output(key, window, acc),
    });
  }
  if (a !== null && typeof a === "object" && !Array.isArray(a)) {
    try {
      return aggregation(a as AggregationDefinition<unknown, unknown, unknown>);
    } catch (e) {
      throw new WallarooParameterError(`${what}: ${(e as Error).message}`);
    }
  }
  throw new WallarooParameterError(
    `${what}: give an aggregation made by wallaroo.aggregation({ name, initial, update, combine, output }) ` +
      `or a class with initialAccumulator(), update(), combine() and output(), got ${shown(a)}`,
  );
}

function checkPolicy(what: string, p: unknown): LateDataPolicy {
  if (!LATE_DATA_POLICIES.includes(p as LateDataPolicy)) {
    throw new WallarooParameterError(
      `${what}: unknown late-data policy ${shown(p)}; use one of ${LATE_DATA_POLICIES.map((x) => JSON.stringify(x)).join(", ")}`,
    );
  }
  return p as LateDataPolicy;
}

type Options = Record<string, unknown>;

/** Records one `with*` per chain: a second call of the same option is an error, as in Wallaroo. */
function withOption<B>(make: (o: Options) => B, o: Options, key: string, method: string, value: unknown): B {
  if (key in o) {
    throw new WallarooParameterError(
      `${method}() is called twice on the same windows (first with ${shown(o[key])}, then ${shown(value)}); call it once`,
    );
  }
  return make({ ...o, [key]: value });
}

/** `rangeWindows(range)`: tumbling windows, sliding ones with `withSlide`. */
export class RangeWindowsBuilder {
  readonly #range: number;
  readonly #o: Options;
  constructor(range: number, options: Options = {}) {
    this.#range = range;
    this.#o = options;
  }
  #with(key: string, method: string, value: unknown): RangeWindowsBuilder {
    return withOption((o) => new RangeWindowsBuilder(this.#range, o), this.#o, key, method, value);
  }
  /** a window every `slide` ms (default: the range, tumbling windows); at most the range */
  withSlide(slide: number): RangeWindowsBuilder {
    checkMs(`rangeWindows(${this.#range}).withSlide(slide): the slide`, slide);
    if (slide > this.#range) {
      throw new WallarooParameterError(
        `rangeWindows(${this.#range}).withSlide(${slide}): the slide is larger than the range; ` +
          "give a slide at most the range (equal to it: tumbling windows), or a larger range",
      );
    }
    return this.#with("slide", "withSlide", slide);
  }
  /** how far behind the largest event time seen an event may come and still count (default 0) */
  withDelay(delay: number): RangeWindowsBuilder {
    checkMs(`rangeWindows(${this.#range}).withDelay(delay): the delay`, delay, true);
    return this.#with("delay", "withDelay", delay);
  }
  /** window starts are `offset + n * slide` (default 0: aligned to the epoch) */
  withAlignment(offset: number): RangeWindowsBuilder {
    if (typeof offset !== "number" || !Number.isSafeInteger(offset)) {
      throw new WallarooParameterError(
        `rangeWindows(${this.#range}).withAlignment(offset): the offset must be a whole number of milliseconds, got ${shown(offset)}`,
      );
    }
    return this.#with("alignment", "withAlignment", offset);
  }
  /** what happens to an event behind the watermark: "drop" (default), "fire-per-message", "place-in-oldest-window" */
  withLateDataPolicy(policy: LateDataPolicy): RangeWindowsBuilder {
    checkPolicy(`rangeWindows(${this.#range}).withLateDataPolicy(policy)`, policy);
    return this.#with("late", "withLateDataPolicy", policy);
  }
  /** the windows, each folded by `agg` */
  over<I, A, O>(
    agg: Aggregation<I, A, O> | AggregationDefinition<I, A, O> | AggregationClass<I, A, O>,
  ): RangeWindows<I, O> {
    const slide = (this.#o.slide as number | undefined) ?? this.#range;
    const offset = (this.#o.alignment as number | undefined) ?? 0;
    return Object.freeze({
      [KIND]: "windows" as const,
      kind: "range" as const,
      range: this.#range,
      slide,
      alignment: ((offset % slide) + slide) % slide,
      delay: (this.#o.delay as number | undefined) ?? 0,
      late: (this.#o.late as LateDataPolicy | undefined) ?? "drop",
      aggregation: asAggregation(`rangeWindows(${this.#range}).over(aggregation)`, agg),
    });
  }
  // Spellings of the Python API, for porting.
  with_slide(slide: number): RangeWindowsBuilder {
    return this.withSlide(slide);
  }
  with_delay(delay: number): RangeWindowsBuilder {
    return this.withDelay(delay);
  }
  with_alignment(offset: number): RangeWindowsBuilder {
    return this.withAlignment(offset);
  }
  with_late_data_policy(policy: LateDataPolicy): RangeWindowsBuilder {
    return this.withLateDataPolicy(policy);
  }
}

/** `sessionWindows(gap)`: a key's events less than `gap` apart in event time are one window. */
export class SessionWindowsBuilder {
  readonly #gap: number;
  readonly #o: Options;
  constructor(gap: number, options: Options = {}) {
    this.#gap = gap;
    this.#o = options;
  }
  #with(key: string, method: string, value: unknown): SessionWindowsBuilder {
    return withOption((o) => new SessionWindowsBuilder(this.#gap, o), this.#o, key, method, value);
  }
  withDelay(delay: number): SessionWindowsBuilder {
    checkMs(`sessionWindows(${this.#gap}).withDelay(delay): the delay`, delay, true);
    return this.#with("delay", "withDelay", delay);
  }
  withLateDataPolicy(policy: LateDataPolicy): SessionWindowsBuilder {
    checkPolicy(`sessionWindows(${this.#gap}).withLateDataPolicy(policy)`, policy);
    return this.#with("late", "withLateDataPolicy", policy);
  }
  over<I, A, O>(
    agg: Aggregation<I, A, O> | AggregationDefinition<I, A, O> | AggregationClass<I, A, O>,
  ): SessionWindows<I, O> {
    return Object.freeze({
      [KIND]: "windows" as const,
      kind: "session" as const,
      gap: this.#gap,
      delay: (this.#o.delay as number | undefined) ?? 0,
      late: (this.#o.late as LateDataPolicy | undefined) ?? "drop",
      aggregation: asAggregation(`sessionWindows(${this.#gap}).over(aggregation)`, agg),
    });
  }
  with_delay(delay: number): SessionWindowsBuilder {
    return this.withDelay(delay);
  }
  with_late_data_policy(policy: LateDataPolicy): SessionWindowsBuilder {
    return this.withLateDataPolicy(policy);
  }
}

/** `countWindows(n)`: a window per n events of a key. */
export class CountWindowsBuilder {
  constructor(readonly count: number) {}
  over<I, A, O>(
    agg: Aggregation<I, A, O> | AggregationDefinition<I, A, O> | AggregationClass<I, A, O>,
  ): CountWindows<I, O> {
    return Object.freeze({
      [KIND]: "windows" as const,
      kind: "count" as const,
      count: this.count,
      aggregation: asAggregation(`countWindows(${this.count}).over(aggregation)`, agg),
    });
  }
}

export function rangeWindows(range: number): RangeWindowsBuilder {
  return new RangeWindowsBuilder(checkMs("rangeWindows(range): the range", range));
}

export function sessionWindows(gap: number): SessionWindowsBuilder {
  return new SessionWindowsBuilder(checkMs("sessionWindows(gap): the gap", gap));
}

export function countWindows(count: number): CountWindowsBuilder {
  if (typeof count !== "number" || !Number.isSafeInteger(count) || count < 1) {
    throw new WallarooParameterError(
      `countWindows(count): the count must be a positive whole number of events, got ${shown(count)}`,
    );
  }
  return new CountWindowsBuilder(count);
}

// Spellings of the Python API, for porting.
export const range_windows = rangeWindows;
export const count_windows = countWindows;
export const session_windows = sessionWindows;
