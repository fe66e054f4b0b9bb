/**
 * ApplicationBuilder, the TypeScript form of Wallaroo's Python ApplicationBuilder.
 *
 * Every method but build() only records what was asked and returns the builder, so a
 * chain never throws halfway; build() replays the record in declaration order and
 * throws a WallarooParameterError for the FIRST mistake, naming the pipeline and the
 * step to fix. What it returns is the ApplicationSpec of topology/spec.ts.
 *
 * Choices where Wallaroo's Python API was silent or loose:
 * - A pipeline must end with toSink()/toSinks() or done(). Python let an open pipeline
 *   through and the Pony runtime then dropped it silently; here it is an error, both
 *   when the next newPipeline() starts and at build().
 * - done() on a pipeline that already ended (after a sink or done()) is a no-op.
 * - Partition keys are normalized with normalizeKey() (a bigint that is a safe integer
 *   becomes a number, -0 becomes 0), so 5 and 5n are one key; the runtime must apply
 *   normalizeKey() to what partition functions return.
 * - u64 keys given as numbers above Number.MAX_SAFE_INTEGER are rejected: such a
 *   number may already have been rounded (2**53 + 1 === 2**53), so the user must
 *   write it as a bigint.
 * - A state name reused across pipelines must use the same class, the same partition
 *   scheme (stateful / partitioned / u64), the same partition function and the same
 *   key set (compared as sets: order does not matter; omitted keys are the empty set).
 */
import { asSinkConfig, asSourceConfig, kindOf, type SinkConfig, type SourceConfig } from "./configs.js";
import { WallarooParameterError } from "./errors.js";
import { normalizeKey } from "../core/hash.js";
import type { Windows } from "../topology/windows.js";
import { WindowState } from "../windows/state.js";
import {
  KIND,
  type ApplicationSpec,
  type Computation,
  type Key,
  type PartitionFunction,
  type PipelineSpec,
  type SinkSpec,
  type SourceSpec,
  type StateComputation,
  type StateSpec,
  type StepSpec,
} from "../topology/spec.js";

export type StateClass<S extends object = object> = new () => S;

/**
 * Options of a partitioned state (the last argument of toStatePartition and
 * toStatePartitionU64, after the keys or in their place).
 */
export interface StateOptions {
  /**
   * Processing time in ms (e.g. `wallaroo.minutes(30)`) after which an instance that no
   * message touched is removed, as if its computation had returned wallaroo.DELETE:
   * the next message for its key starts with a fresh instance. Absent: instances live
   * until the engine stops or their computation returns DELETE.
   */
  ttl?: number;
}

/**
 * The open pipeline that newPipeline() returns, typed by what flows through it: `T`
 * is the output of the previous step (at first, of the source's decoder). A step
 * whose input type is not `T`, or a sink whose encoder does not take `T`, is a type
 * error; each step returns the pipeline of its own output type. toSink()/toSinks()/
 * done() end the pipeline and return the builder, so a chain can go on with the next
 * newPipeline() or build(). At run time this is the builder itself: the types cost
 * nothing and plain JavaScript sees the same object as before.
 */
export interface Pipeline<T> {
  /** A stateless step that runs where the previous step ran. */
  to<O>(computation: Computation<T, O>): Pipeline<O>;
  /** A stateless step with one copy per worker thread. */
  toParallel<O>(computation: Computation<T, O>): Pipeline<O>;
  /** A step on one state instance named `stateName`. */
  toStateful<S extends object, O>(
    computation: StateComputation<T, S, O>,
    stateClass: StateClass<S>,
    stateName: string,
  ): Pipeline<O>;
  /**
   * A step on one state instance per key; keys not listed are created on first use.
   * `options` (StateOptions, e.g. `{ ttl: wallaroo.minutes(30) }`) come last, after the
   * keys or in their place.
   */
  toStatePartition<S extends object, O>(
    computation: StateComputation<T, S, O>,
    stateClass: StateClass<S>,
    partitionName: string,
    partitionFn: PartitionFunction<T>,
    partitionKeys?: readonly Key[],
    options?: StateOptions,
  ): Pipeline<O>;
  toStatePartition<S extends object, O>(
    computation: StateComputation<T, S, O>,
    stateClass: StateClass<S>,
    partitionName: string,
    partitionFn: PartitionFunction<T>,
    options: StateOptions,
  ): Pipeline<O>;
  /** As toStatePartition, with keys that are non-negative integers below 2^64. */
  toStatePartitionU64<S extends object, O>(
    computation: StateComputation<T, S, O>,
    stateClass: StateClass<S>,
    partitionName: string,
    partitionFn: PartitionFunction<T>,
    partitionKeys?: readonly (number | bigint)[],
    options?: StateOptions,
  ): Pipeline<O>;
  toStatePartitionU64<S extends object, O>(
    computation: StateComputation<T, S, O>,
    stateClass: StateClass<S>,
    partitionName: string,
    partitionFn: PartitionFunction<T>,
    options: StateOptions,
  ): Pipeline<O>;
  /**
   * A windowed step: events are grouped into `windows` per key of `partitionFn`, placed
   * on workers as toStatePartition places keys (declared `partitionKeys` optional);
   * without a partition function, one global set of windows. Each closed window sends
   * on what the aggregation's output() returns.
   */
  toWindows<O>(windows: Windows<T, O>, partitionFn?: PartitionFunction<T>, partitionKeys?: readonly Key[]): Pipeline<O>;
  /** Ends the pipeline with a sink. */
  toSink(sinkConfig: SinkConfig<T>): ApplicationBuilder;
  /** Ends the pipeline with several sinks; every output goes to every sink. */
  toSinks(sinkConfigs: readonly SinkConfig<T>[]): ApplicationBuilder;
  /** Closes the pipeline without a sink: its outputs are discarded. */
  done(): ApplicationBuilder;

  // Spellings of the Python API, for porting: the same methods, with the same types.
  to_parallel: Pipeline<T>["toParallel"];
  to_stateful: Pipeline<T>["toStateful"];
  to_state_partition: Pipeline<T>["toStatePartition"];
  to_state_partition_u64: Pipeline<T>["toStatePartitionU64"];
  to_windows: Pipeline<T>["toWindows"];
  to_sink: Pipeline<T>["toSink"];
  to_sinks: Pipeline<T>["toSinks"];
}

const U64_LIMIT = 1n << 64n;

/** Why `key` cannot be a partition key, or undefined when it can. */
function badKey(key: unknown, u64: boolean): string | undefined {
  const shown = typeof key === "bigint" ? `${key}n` : typeof key === "string" ? JSON.stringify(key) : String(key);
  if (u64) {
    if (typeof key === "number") {
      if (!Number.isInteger(key) || key < 0) return `u64 key ${shown} is not a non-negative integer`;
      if (!Number.isSafeInteger(key))
        return `u64 key ${shown} is above Number.MAX_SAFE_INTEGER and may have been rounded; write it as a bigint (e.g. ${BigInt(key)}n)`;
      return undefined;
    }
    if (typeof key === "bigint") {
      return key < 0n || key >= U64_LIMIT ? `u64 key ${shown} is outside 0 .. 2^64-1` : undefined;
    }
    return `u64 key ${shown} (${typeof key}) must be a non-negative integer number or bigint below 2^64`;
  }
  if (typeof key === "string" || typeof key === "bigint") return undefined;
  if (typeof key === "number") return Number.isFinite(key) ? undefined : `key ${shown} is not a finite number`;
  return `key ${shown} (${key === null ? "null" : typeof key}) is not hashable; partition keys must be strings, numbers or bigints`;
}

/** Tells a class from an arrow function or a method without calling it. */
function isConstructor(v: unknown): v is StateClass {
  if (typeof v !== "function") return false;
  try {
    Reflect.construct(String, [], v);
    return true;
  } catch {
    return false;
  }
}

function isKind<T>(v: unknown, kind: string): v is T {
  return v !== null && typeof v === "object" && (v as { [KIND]?: unknown })[KIND] === kind;
}

function quote(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

type Action =
  | { op: "newPipeline"; method: string; name: unknown; source: unknown }
  | { op: "done"; method: string }
  | { op: "to" | "toParallel"; method: string; computation: unknown }
  | {
      op: "state";
      method: string;
      computation: unknown;
      stateClass: unknown;
      stateName: unknown;
      scheme: null;
      /** arguments after the state name (toStateful takes none: see #state) */
      extra: number;
    }
  | {
      op: "state";
      method: string;
      computation: unknown;
      stateClass: unknown;
      stateName: unknown;
      scheme: { u64: boolean; fn: unknown; keys: unknown; options: unknown; extra: boolean };
    }
  | { op: "sinks"; method: string; sinks: unknown; single: boolean }
  | { op: "windows"; method: string; windows: unknown; fn: unknown; keys: unknown };

interface OpenPipeline {
  name: string;
  source: SourceSpec;
  steps: StepSpec[];
  sinks: SinkSpec[];
  ended: null | "sink" | "done";
  actions: number;
}

/**
 * The step methods on the builder itself (used when a pipeline is written as separate
 * statements, `ab.newPipeline(...); ab.to(c); ...`) are untyped: only the chain that
 * starts at newPipeline() knows what flows.
 */
export class ApplicationBuilder {
  readonly #name: unknown;
  readonly #actions: Action[] = [];

  constructor(name: string) {
    this.#name = name;
  }

  #record(a: Action): this {
    this.#actions.push(a);
    return this;
  }

  /** Starts a pipeline fed by a source; the steps chained on what it returns are type-checked. */
  newPipeline<T>(name: string, sourceConfig: SourceConfig<T>): Pipeline<T> {
    // The builder is the pipeline at run time (see Pipeline): only the static type narrows.
    return this.#record({
      op: "newPipeline",
      method: "newPipeline",
      name,
      source: sourceConfig,
    }) as unknown as Pipeline<T>;
  }
  /** Closes the current pipeline without a sink: its outputs are discarded. */
  done(): this {
    return this.#record({ op: "done", method: "done" });
  }
  /** A stateless step that runs where the previous step ran. */
  to(computation: Computation): this {
    return this.#record({ op: "to", method: "to", computation });
  }
  /** A stateless step with one copy per worker thread. */
  toParallel(computation: Computation): this {
    return this.#record({ op: "toParallel", method: "toParallel", computation });
  }
  /**
   * A step on one state instance named `stateName`. It takes no options: a ttl is per
   * key (toStatePartition); the one instance ends when its computation returns DELETE.
   */
  toStateful(computation: StateComputation, stateClass: StateClass, stateName: string, ...extra: never[]): this {
    return this.#record({
      op: "state",
      method: "toStateful",
      computation,
      stateClass,
      stateName,
      scheme: null,
      extra: extra.length,
    });
  }
  /** A step on one state instance per key; keys not listed are created on first use. */
  toStatePartition(
    computation: StateComputation,
    stateClass: StateClass,
    partitionName: string,
    partitionFn: PartitionFunction,
    partitionKeys?: readonly Key[] | StateOptions,
    options?: StateOptions,
    ...extra: never[]
  ): this {
    return this.#record({
      op: "state",
      method: "toStatePartition",
      computation,
      stateClass,
      stateName: partitionName,
      scheme: { u64: false, fn: partitionFn, keys: partitionKeys, options, extra: extra.length > 0 },
    });
  }
  /** As toStatePartition, with keys that are non-negative integers below 2^64. */
  toStatePartitionU64(
    computation: StateComputation,
    stateClass: StateClass,
    partitionName: string,
    partitionFn: PartitionFunction,
    partitionKeys?: readonly (number | bigint)[] | StateOptions,
    options?: StateOptions,
    ...extra: never[]
  ): this {
    return this.#record({
      op: "state",
      method: "toStatePartitionU64",
      computation,
      stateClass,
      stateName: partitionName,
      scheme: { u64: true, fn: partitionFn, keys: partitionKeys, options, extra: extra.length > 0 },
    });
  }
  /** A windowed step (see Pipeline.toWindows). */
  toWindows(windows: Windows, partitionFn?: PartitionFunction, partitionKeys?: readonly Key[]): this {
    return this.#record({ op: "windows", method: "toWindows", windows, fn: partitionFn, keys: partitionKeys });
  }
  /** Ends the pipeline with a sink. */
  toSink(sinkConfig: SinkConfig): this {
    return this.#record({ op: "sinks", method: "toSink", sinks: [sinkConfig], single: true });
  }
  /** Ends the pipeline with several sinks; every output goes to every sink. */
  toSinks(sinkConfigs: readonly SinkConfig[]): this {
    return this.#record({ op: "sinks", method: "toSinks", sinks: sinkConfigs, single: false });
  }

  // Spellings of the Python API, for porting.
  new_pipeline<T>(name: string, sourceConfig: SourceConfig<T>): Pipeline<T> {
    return this.newPipeline(name, sourceConfig);
  }
  to_parallel(computation: Computation): this {
    return this.toParallel(computation);
  }
  to_stateful(computation: StateComputation, stateClass: StateClass, stateName: string, ...extra: never[]): this {
    return this.toStateful(computation, stateClass, stateName, ...extra);
  }
  to_state_partition(
    computation: StateComputation,
    stateClass: StateClass,
    partitionName: string,
    partitionFn: PartitionFunction,
    partitionKeys?: readonly Key[] | StateOptions,
    options?: StateOptions,
    ...extra: never[]
  ): this {
    return this.toStatePartition(computation, stateClass, partitionName, partitionFn, partitionKeys, options, ...extra);
  }
  to_state_partition_u64(
    computation: StateComputation,
    stateClass: StateClass,
    partitionName: string,
    partitionFn: PartitionFunction,
    partitionKeys?: readonly (number | bigint)[] | StateOptions,
    options?: StateOptions,
    ...extra: never[]
  ): this {
    return this.toStatePartitionU64(
      computation,
      stateClass,
      partitionName,
      partitionFn,
      partitionKeys,
      options,
      ...extra,
    );
  }
  to_windows(windows: Windows, partitionFn?: PartitionFunction, partitionKeys?: readonly Key[]): this {
    return this.toWindows(windows, partitionFn, partitionKeys);
  }
  to_sink(sinkConfig: SinkConfig): this {
    return this.toSink(sinkConfig);
  }
  to_sinks(sinkConfigs: readonly SinkConfig[]): this {
    return this.toSinks(sinkConfigs);
  }

  /** Validates everything recorded and returns the application description. */
  build(): ApplicationSpec {
    return new Validator(this.#name).run(this.#actions);
  }
}

/** One pass over the recorded actions; throws at the first mistake. */
class Validator {
  readonly #app: string;
  readonly #pipelines: PipelineSpec[] = [];
  readonly #states = new Map<string, { spec: StateSpec; where: string }>();
  readonly #computations = new Map<string, { c: Computation | StateComputation | Windows; where: string }>();
  #current: OpenPipeline | null = null;

  constructor(readonly name: unknown) {
    this.#app = typeof name === "string" ? `Application ${JSON.stringify(name)}` : "ApplicationBuilder";
  }

  #fail(where: string, msg: string): never {
    throw new WallarooParameterError(`${this.#app}${where ? `, ${where}` : ""}: ${msg}`);
  }

  run(actions: readonly Action[]): ApplicationSpec {
    if (typeof this.name !== "string" || this.name.trim() === "") {
      this.#fail(
        "",
        `the application name must be a non-empty string, got ${quote(this.name)}; pass it to new ApplicationBuilder(name)`,
      );
    }
    for (const a of actions) {
      if (a.op === "newPipeline") this.#newPipeline(a);
      else this.#step(a);
    }
    this.#closeCurrent("at build()");
    if (this.#pipelines.length === 0) {
      this.#fail(
        "",
        "the application has no pipeline; add one with newPipeline(name, sourceConfig) ... toSink(sinkConfig)",
      );
    }
    if (!this.#pipelines.some((p) => p.sinks.length > 0)) {
      this.#fail("", "no pipeline ends in a sink; end at least one pipeline with toSink(sinkConfig) or toSinks([...])");
    }
    return Object.freeze({
      [KIND]: "application" as const,
      name: this.name as string,
      pipelines: Object.freeze(this.#pipelines),
      states: Object.freeze([...this.#states.values()].map((s) => s.spec)),
    });
  }

  /** A pipeline still open when the next one starts or at build() is a mistake (see the file comment). */
  #closeCurrent(when: string): void {
    const p = this.#current;
    if (p === null) return;
    if (p.ended === null) {
      this.#fail(
        `pipeline ${JSON.stringify(p.name)}`,
        `the pipeline is left open ${when}; end it with toSink(sinkConfig), toSinks([...]) or done()`,
      );
    }
    this.#pipelines.push(
      Object.freeze({
        name: p.name,
        source: p.source,
        steps: Object.freeze(p.steps),
        sinks: Object.freeze(p.sinks),
      }),
    );
    this.#current = null;
  }

  #newPipeline(a: Extract<Action, { op: "newPipeline" }>): void {
    const index = this.#pipelines.length + (this.#current ? 2 : 1);
    const label = typeof a.name === "string" ? JSON.stringify(a.name) : `#${index}`;
    this.#closeCurrent(`when ${a.method}(${label}) starts the next one`);
    const where = `pipeline ${label}`;
    if (typeof a.name !== "string" || a.name.trim() === "") {
      this.#fail(
        `pipeline #${index}`,
        `${a.method}(name, sourceConfig): the name must be a non-empty string, got ${quote(a.name)}`,
      );
    }
    if (this.#pipelines.some((p) => p.name === a.name)) {
      this.#fail(where, `two pipelines are named ${JSON.stringify(a.name)}; give each pipeline a unique name`);
    }
    const config = asSourceConfig(a.source);
    if (config === undefined) {
      this.#fail(
        where,
        `the source must be a TCPSourceConfig, a KafkaSourceConfig or a FileSourceConfig (made with new), got ${kindOf(a.source)}`,
      );
    }
    this.#current = {
      name: a.name,
      source: this.#spec(where, () => config.toSpec()),
      steps: [],
      sinks: [],
      ended: null,
      actions: 0,
    };
  }

  /** Runs a config's toSpec(), prefixing its error with where it was used. */
  #spec<T>(where: string, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (e instanceof WallarooParameterError) this.#fail(where, e.message);
      throw e;
    }
  }

  #step(a: Exclude<Action, { op: "newPipeline" }>): void {
    const p = this.#current;
    const named =
      a.op === "windows"
        ? isKind<Windows>(a.windows, "windows")
          ? JSON.stringify(a.windows.aggregation.name)
          : ""
        : a.op !== "done" && a.op !== "sinks" && isNamed(a.computation)
          ? JSON.stringify(a.computation.name)
          : "";
    const call = `${a.method}(${named})`;
    // The current pipeline stays current after it ends, until the next newPipeline(),
    // so no current pipeline means no newPipeline() yet.
    if (p === null) {
      this.#fail(
        "",
        `${call} comes before any newPipeline(); start a pipeline with newPipeline(name, sourceConfig) first`,
      );
    }
    p.actions++;
    const where = `pipeline ${JSON.stringify(p.name)}, step ${p.actions} ${call}`;
    if (p.ended !== null) {
      if (a.op === "done") return; // ending an ended pipeline again is harmless
      const end = p.ended === "sink" ? "its sink" : "done()";
      const hint = a.op === "sinks" && p.ended === "sink" ? "; to send to several sinks use toSinks([a, b])" : "";
      this.#fail(
        where,
        `this step comes after ${end}; start a new pipeline with newPipeline(name, sourceConfig) before adding steps${hint}`,
      );
    }
    switch (a.op) {
      case "done":
        p.ended = "done";
        return;
      case "to":
      case "toParallel":
        p.steps.push({
          kind: a.op,
          computation: this.#computation(where, a.method, a.computation, false) as Computation,
        });
        return;
      case "state":
        p.steps.push({
          kind: "state",
          computation: this.#computation(where, a.method, a.computation, true) as StateComputation,
          stateName: this.#state(where, a),
        });
        return;
      case "windows":
        p.steps.push(this.#windows(where, a));
        return;
      case "sinks":
        p.sinks = this.#sinks(where, a);
        p.ended = "sink";
        return;
    }
  }

  #computation(where: string, method: string, c: unknown, stateful: boolean): Computation | StateComputation {
    const want = stateful ? "stateComputation" : "computation";
    if (!isKind<Computation | StateComputation>(c, want)) {
      if (isKind(c, stateful ? "computation" : "stateComputation")) {
        this.#fail(
          where,
          stateful
            ? `${method}() needs a state computation but got a stateless one; wrap it with wallaroo.stateComputation(name, (input, state) => [output, saveState]) or use to()/toParallel()`
            : `${method}() needs a stateless computation but got a state computation; use toStateful()/toStatePartition() for it, or wrap a stateless function with wallaroo.computation(name, fn)`,
        );
      }
      this.#fail(
        where,
        stateful
          ? `${method}() needs a state computation made by wallaroo.stateComputation(name, fn) or stateComputationMulti(name, fn), got ${kindOf(c)}`
          : `${method}() needs a computation made by wallaroo.computation(name, fn) or computationMulti(name, fn), got ${kindOf(c)}`,
      );
    }
    const seen = this.#computations.get(c.name);
    if (seen === undefined) this.#computations.set(c.name, { c, where });
    else if (seen.c !== c) {
      this.#fail(
        where,
        `two different computations are named ${JSON.stringify(c.name)} (the other one is at ${seen.where}); give each computation a unique name, or reuse the same object`,
      );
    }
    return c;
  }

  /**
   * A toWindows step: its windows are a state named after the aggregation ("windows:" +
   * name), of class WindowState, partitioned by the partition function if one is given.
   */
  #windows(where: string, a: Extract<Action, { op: "windows" }>): StepSpec {
    const w = a.windows;
    if (!isKind<Windows>(w, "windows")) {
      this.#fail(
        where,
        `toWindows() needs windows made by wallaroo.rangeWindows(range).over(aggregation), countWindows(n).over(...) ` +
          `or sessionWindows(gap).over(...), got ${kindOf(w)}${isKind(w, "aggregation") ? " (an aggregation: wrap it with rangeWindows(...).over(it))" : typeof w === "object" && w !== null && "over" in w ? " (a window builder: finish it with .over(aggregation))" : ""}`,
      );
    }
    const name = w.aggregation.name;
    const seen = this.#computations.get(name);
    if (seen === undefined) this.#computations.set(name, { c: w, where });
    else if (seen.c !== w) {
      this.#fail(
        where,
        `two different steps are named ${JSON.stringify(name)} (the other one is at ${seen.where}); give each aggregation a unique name, or reuse the same windows object`,
      );
    }
    if (a.fn === undefined && a.keys !== undefined) {
      this.#fail(
        where,
        "toWindows(windows, undefined, keys): declared keys need a partition function; give wallaroo.partition(fn)",
      );
    }
    const stateName = this.#state(where, {
      op: "state",
      method: a.method,
      computation: null,
      stateClass: WindowState,
      stateName: `windows:${name}`,
      scheme: a.fn === undefined ? null : { u64: false, fn: a.fn, keys: a.keys },
    } as Extract<Action, { op: "state" }>);
    return { kind: "window", windows: w, stateName };
  }

  /** Checks a state step and merges it into the state of that name; returns the name. */
  #state(where: string, a: Extract<Action, { op: "state" }>): string {
    if (typeof a.stateName !== "string" || a.stateName.trim() === "") {
      this.#fail(where, `the state name must be a non-empty string, got ${quote(a.stateName)}`);
    }
    const name = a.stateName;
    if (a.scheme === null && a.extra > 0) {
      this.#fail(
        where,
        `toStateful(computation, StateClass, stateName) takes no further argument (got ${a.extra}): a ttl expires the instances of a partitioned state, toStatePartition(..., { ttl }); to end the one instance of ${JSON.stringify(name)}, return [output, saveState, wallaroo.DELETE] from its computation`,
      );
    }
    if (!isConstructor(a.stateClass)) {
      this.#fail(
        where,
        `the state class of ${JSON.stringify(name)} must be a class (constructed with new StateClass()), got ${kindOf(a.stateClass)}`,
      );
    }
    // A plain object where the keys go is the options (build() may run twice: the action is not changed).
    const options = a.scheme === null ? null : this.#options(where, name, a.scheme);
    const spec: StateSpec = {
      name,
      stateClass: a.stateClass,
      partition: a.scheme === null ? null : this.#partition(where, name, { ...a.scheme, keys: options!.keys }),
      ...(options?.ttl !== undefined ? { ttl: options.ttl } : {}),
    };
    const seen = this.#states.get(name);
    if (seen === undefined) {
      this.#states.set(name, { spec: Object.freeze(spec), where });
      return name;
    }
    const clash = stateClash(seen.spec, spec);
    if (clash !== undefined) {
      this.#fail(
        where,
        `the state ${JSON.stringify(name)} is already declared at ${seen.where} with ${clash}; use one class and one partition scheme per state name, or another name`,
      );
    }
    return name;
  }

  /**
   * The options of a partitioned state: the last argument, after the keys or in their
   * place (a plain object where the keys go is the options).
   */
  #options(
    where: string,
    name: string,
    scheme: { keys: unknown; options: unknown; extra: boolean },
  ): { keys: unknown; ttl?: number } {
    const method = "toStatePartition(computation, StateClass, name, partitionFn, keys?, options?)";
    if (scheme.extra) this.#fail(where, `${method} takes at most 6 arguments; pass the options as one object`);
    let options = scheme.options;
    if (isPlainObject(scheme.keys)) {
      if (options !== undefined) {
        this.#fail(
          where,
          `partition ${JSON.stringify(name)}: an options object is given in place of the keys and another one after it; pass one options object (after the keys, or in their place)`,
        );
      }
      options = scheme.keys;
    }
    const keys = options === scheme.keys ? undefined : scheme.keys;
    if (options === undefined) return { keys };
    if (!isPlainObject(options)) {
      this.#fail(
        where,
        `partition ${JSON.stringify(name)}: the options must be an object such as { ttl: wallaroo.minutes(30) }, got ${kindOf(options)}`,
      );
    }
    for (const k of Object.keys(options)) {
      if (k !== "ttl") {
        this.#fail(
          where,
          `partition ${JSON.stringify(name)}: unknown option ${JSON.stringify(k)}; the options are: ttl`,
        );
      }
    }
    const ttl = (options as StateOptions).ttl;
    if (ttl === undefined) return { keys };
    if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 1) {
      this.#fail(
        where,
        `partition ${JSON.stringify(name)}: ttl must be a duration in ms of at least 1, such as wallaroo.minutes(30), got ${typeof ttl === "number" ? ttl : kindOf(ttl)}`,
      );
    }
    return { keys, ttl };
  }

  #partition(
    where: string,
    name: string,
    scheme: { u64: boolean; fn: unknown; keys: unknown },
  ): NonNullable<StateSpec["partition"]> {
    if (!isKind<PartitionFunction>(scheme.fn, "partition")) {
      this.#fail(
        where,
        `the partition function of ${JSON.stringify(name)} must be made by wallaroo.partition(fn), got ${kindOf(scheme.fn)}`,
      );
    }
    const given = scheme.keys ?? [];
    if (!Array.isArray(given)) {
      this.#fail(
        where,
        `the partition keys of ${JSON.stringify(name)} must be an array (or left out), got ${kindOf(given)}`,
      );
    }
    const keys: Key[] = [];
    const seen = new Set<Key>();
    for (const k of given as unknown[]) {
      const bad = badKey(k, scheme.u64);
      if (bad !== undefined) this.#fail(where, `partition ${JSON.stringify(name)}: ${bad}`);
      const key = normalizeKey(k as Key);
      if (seen.has(key)) {
        this.#fail(
          where,
          `partition ${JSON.stringify(name)}: key ${typeof key === "string" ? JSON.stringify(key) : String(key)} is listed twice; list each key once`,
        );
      }
      seen.add(key);
      keys.push(key);
    }
    return Object.freeze({ fn: scheme.fn, keys: Object.freeze(keys), u64: scheme.u64 });
  }

  #sinks(where: string, a: Extract<Action, { op: "sinks" }>): SinkSpec[] {
    if (!Array.isArray(a.sinks)) this.#fail(where, `toSinks() needs an array of sink configs, got ${kindOf(a.sinks)}`);
    if (a.sinks.length === 0)
      this.#fail(where, "toSinks([]) has no sink; give at least one sink config, or end the pipeline with done()");
    return a.sinks.map((s: unknown, i: number) => {
      const config = asSinkConfig(s);
      const at = a.single ? where : `${where}, sink ${i + 1}`;
      if (config === undefined)
        this.#fail(
          at,
          `a sink must be a TCPSinkConfig, a KafkaSinkConfig or a FileSinkConfig (made with new), got ${kindOf(s)}`,
        );
      return this.#spec(at, () => config.toSpec());
    });
  }
}

/** An object literal (or Object.create(null)): what options are; arrays, class instances and null are not. */
function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isNamed(c: unknown): c is { name: string } {
  return (
    (isKind(c, "computation") || isKind(c, "stateComputation")) && typeof (c as { name?: unknown }).name === "string"
  );
}

function schemeName(s: StateSpec): string {
  return s.partition === null
    ? "toStateful (one instance)"
    : s.partition.u64
      ? "toStatePartitionU64"
      : "toStatePartition";
}

/** How `b` differs from the earlier declaration `a` of the same state, or undefined. */
function stateClash(a: StateSpec, b: StateSpec): string | undefined {
  if (a.stateClass !== b.stateClass) {
    return `class ${a.stateClass.name || "(anonymous)"}, not ${b.stateClass.name || "(anonymous)"}`;
  }
  if (a.partition === null || b.partition === null || a.partition.u64 !== b.partition.u64) {
    return a.partition === null && b.partition === null
      ? undefined
      : `the scheme ${schemeName(a)}, not ${schemeName(b)}`;
  }
  if (a.partition.fn !== b.partition.fn && a.partition.fn.fn !== b.partition.fn.fn) {
    return "another partition function";
  }
  const ka = new Set(a.partition.keys);
  if (ka.size !== b.partition.keys.length || !b.partition.keys.every((k) => ka.has(k))) {
    return `another key set (${a.partition.keys.length} keys there, ${b.partition.keys.length} here)`;
  }
  if (a.ttl !== b.ttl) {
    const ttl = (t: number | undefined) => (t === undefined ? "no ttl" : `ttl ${t} ms`);
    return `${ttl(a.ttl)}, not ${ttl(b.ttl)}`;
  }
  return undefined;
}
