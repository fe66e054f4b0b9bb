/**
 * What a windowed step is, as the builder validated it: the aggregation (how events
 * of one key and one window fold into an accumulator) and the windows (which events
 * go together, and when a window is complete). Plain data and user functions only;
 * the per-key logic is in state.ts, the watermark in watermark.ts.
 */
import type { Key } from "../core/hash.js";
import type { KIND } from "./kind.js";

/** A window as `output` sees it: ms of event time, half-open `[start, end)` (count windows: first and last event time). */
export interface WindowBounds {
  readonly start: number;
  readonly end: number;
}

export interface Aggregation<I = any, A = any, O = any> {
  readonly [KIND]: "aggregation";
  readonly name: string;
  /** a fresh accumulator */
  readonly initial: () => A;
  /** folds one input into `acc`: mutates it, or returns the new accumulator (a value other than undefined) */
  readonly update: (input: I, acc: A) => A | void;
  /** associative; must not mutate its inputs (a pane's accumulator is combined into several windows) */
  readonly combine: (a: A, b: A) => A;
  /** the window's output, or null/undefined for none */
  readonly output: (key: Key, window: WindowBounds, acc: A) => O | null | undefined;
}

export type LateDataPolicy = "drop" | "fire-per-message" | "place-in-oldest-window";
export const LATE_DATA_POLICIES: readonly LateDataPolicy[] = ["drop", "fire-per-message", "place-in-oldest-window"];

interface WindowsBase<I, O> {
  readonly [KIND]: "windows";
  /** its input and output types are those of the windowed step */
  readonly aggregation: Aggregation<I, any, O>;
}

/** Range windows: tumbling when slide === range, else sliding. Starts are `alignment + n * slide`. */
export interface RangeWindows<I = any, O = any> extends WindowsBase<I, O> {
  readonly kind: "range";
  readonly range: number;
  readonly slide: number;
  /** in [0, slide) */
  readonly alignment: number;
  readonly delay: number;
  readonly late: LateDataPolicy;
}

/** A window per `count` events of a key; fires at its count (no watermark, never late). */
export interface CountWindows<I = any, O = any> extends WindowsBase<I, O> {
  readonly kind: "count";
  readonly count: number;
}

/** Session windows: a key's events less than `gap` apart are one window `[first, last + gap)`. */
export interface SessionWindows<I = any, O = any> extends WindowsBase<I, O> {
  readonly kind: "session";
  readonly gap: number;
  readonly delay: number;
  readonly late: LateDataPolicy;
}

export type Windows<I = any, O = any> = RangeWindows<I, O> | CountWindows<I, O> | SessionWindows<I, O>;
