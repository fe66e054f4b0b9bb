/**
 * The plan: an ApplicationSpec compiled into numbered sources, steps, states and
 * sinks, identical in every thread (each thread compiles it from the same module),
 * so that a step id or sink id in a ring frame means the same thing everywhere.
 */
import type {
  ApplicationSpec,
  AsyncSettings,
  Computation,
  Decoder,
  Encoder,
  Key,
  SinkSpec,
  SourceSpec,
  StateComputation,
  StateSpec,
} from "./spec.js";
import type { Windows } from "./windows.js";
import { hashKey, hashString } from "../core/hash.js";

export interface SourcePlan {
  readonly id: number;
  readonly pipeline: number;
  readonly spec: SourceSpec;
  readonly decoder: Decoder;
  /** first step of the pipeline, or -1 when the decoded message goes straight to the sinks */
  readonly firstStep: number;
}

export interface SinkPlan {
  readonly id: number;
  readonly pipeline: number;
  readonly spec: SinkSpec;
  readonly encoder: Encoder;
  /** "pipeline name -> tcp 127.0.0.1:7002", for logs */
  readonly label: string;
}

export interface StepPlan {
  readonly id: number;
  readonly pipeline: number;
  readonly name: string;
  /** "to" and "toParallel" run where the message is; "state" runs on the worker owning the state instance */
  readonly kind: "stateless" | "state";
  readonly multi: boolean;
  readonly stateless: Computation["fn"] | null;
  readonly stateful: StateComputation["fn"] | null;
  readonly state: number;
  /** next step id, or -1: the output goes to the pipeline's sinks */
  readonly next: number;
  /**
   * toWindows: a state step (its state holds the per-key windows, placed like any
   * partitioned state) whose messages the window runtime handles (src/windows/runtime.ts);
   * always multi. null for other steps.
   */
  readonly windows: Windows | null;
  /** how calls that return a Promise run (null: a window step, never async) */
  readonly async: AsyncSettings | null;
}

export interface StatePlan {
  readonly id: number;
  readonly spec: StateSpec;
  readonly partitioned: boolean;
  readonly partitionFn: ((input: any) => Key) | null;
  /** owner worker of each declared key: declared keys are dealt round-robin in declaration order */
  readonly declaredOwner: Map<Key, number>;
  /** owner of the single instance of a toStateful state */
  readonly singleOwner: number;
}

export interface PipelinePlan {
  readonly id: number;
  readonly name: string;
  readonly source: number;
  readonly sinks: readonly number[];
}

export interface Plan {
  readonly app: ApplicationSpec;
  readonly workers: number;
  readonly pipelines: readonly PipelinePlan[];
  readonly sources: readonly SourcePlan[];
  readonly sinks: readonly SinkPlan[];
  readonly steps: readonly StepPlan[];
  readonly states: readonly StatePlan[];
}

/** "tcp 127.0.0.1:7000", "kafka topic words": where a source reads (set by its config, see EndpointSpec) */
export function describeSource(spec: SourceSpec): string {
  return spec.endpoint;
}

/** where a sink writes (set by its config, see EndpointSpec) */
export function describeSink(spec: SinkSpec): string {
  return spec.endpoint;
}

/** Stands for a window step's computation: the executor hands window steps' messages to the window runtime instead. */
function windowStepFn(): never {
  throw new Error("a window step runs in the window runtime, not as a state computation");
}

export function compilePlan(app: ApplicationSpec, workers: number): Plan {
  const states: StatePlan[] = app.states.map((spec, id) => {
    const declaredOwner = new Map<Key, number>();
    spec.partition?.keys.forEach((k, i) => declaredOwner.set(k, i % workers));
    return {
      id,
      spec,
      partitioned: spec.partition !== null,
      partitionFn: spec.partition ? spec.partition.fn.fn : null,
      declaredOwner,
      singleOwner: hashString(spec.name) % workers,
    };
  });
  const stateIndex = new Map(app.states.map((s, i) => [s.name, i]));
  const pipelines: PipelinePlan[] = [];
  const sources: SourcePlan[] = [];
  const sinks: SinkPlan[] = [];
  const steps: StepPlan[] = [];
  app.pipelines.forEach((p, pid) => {
    const first = steps.length;
    p.steps.forEach((s, i) => {
      const next = i + 1 < p.steps.length ? first + i + 1 : -1;
      if (s.kind === "window") {
        steps.push({
          id: steps.length,
          pipeline: pid,
          name: s.windows.aggregation.name,
          kind: "state",
          multi: true,
          stateless: null,
          stateful: windowStepFn,
          state: stateIndex.get(s.stateName)!,
          next,
          windows: s.windows,
          async: null,
        });
      } else if (s.kind === "state") {
        steps.push({
          id: steps.length,
          pipeline: pid,
          name: s.computation.name,
          kind: "state",
          multi: s.computation.multi,
          stateless: null,
          stateful: s.computation.fn,
          state: stateIndex.get(s.stateName)!,
          next,
          windows: null,
          async: s.computation.async,
        });
      } else {
        steps.push({
          id: steps.length,
          pipeline: pid,
          name: s.computation.name,
          kind: "stateless",
          multi: s.computation.multi,
          stateless: s.computation.fn,
          stateful: null,
          state: -1,
          next,
          windows: null,
          async: s.computation.async,
        });
      }
    });
    const sinkIds = p.sinks.map((spec) => {
      const id = sinks.length;
      sinks.push({ id, pipeline: pid, spec, encoder: spec.encoder, label: `${p.name} -> ${describeSink(spec)}` });
      return id;
    });
    sources.push({
      id: pid,
      pipeline: pid,
      spec: p.source,
      decoder: p.source.decoder,
      firstStep: p.steps.length ? first : -1,
    });
    pipelines.push({ id: pid, name: p.name, source: pid, sinks: sinkIds });
  });
  return { app, workers, pipelines, sources, sinks, steps, states };
}

/** The worker that owns the state instance for `key` (ignored for a toStateful state). */
export function ownerOf(state: StatePlan, key: Key, workers: number): number {
  if (!state.partitioned) return state.singleOwner;
  const declared = state.declaredOwner.get(key);
  return declared !== undefined ? declared : hashKey(key) % workers;
}
