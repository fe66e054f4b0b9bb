/**
 * The windows of one worker thread, between the step runner (src/runtime/executor.ts)
 * and the pure per-key logic (state.ts, watermark.ts): event times of arriving
 * messages, the marks of this worker's inputs and of its peers', each window step's
 * watermark, and what happens to late events.
 *
 * Inputs: an input is one connection of a TCP source or one partition of a Kafka source
 * (the source thread names it in each frame's tag: transport/tags.ts sourceTag), so a slow
 * connection holds the watermark back even when a fast one feeds the same worker. A
 * worker observes its own inputs directly (arrive()), and sums them up per source into
 * one mark (watermark.ts summarize(), exact for watermarkOf()); it learns its peers'
 * summaries from the marks frames they send through the same rings as the messages
 * (marksFrame()/onPeerMarks()). A peer's marks frame follows every message that peer sent
 * before it, so an owner never sees a peer's mark before the messages that made it: a
 * watermark built from it cannot overtake those messages.
 *
 * Watermarks move only at tick(), and every key is fired at that tick, so between two
 * ticks a step's watermark is constant and the invariants of state.ts hold.
 */
import type { Key } from "../topology/spec.js";
import type { Windows } from "../topology/windows.js";
import { add, ADDED, fire, LATE_DROPPED, openCount, type WindowState } from "./state.js";
import { announce, newMark, observe, type InputMark, summarize, WatermarkClock, watermarkOf } from "./watermark.js";

/** What the runtime needs of the plan (a subset of topology/plan.ts's Plan). */
export interface WindowPlan {
  readonly workers: number;
  readonly sources: readonly {
    readonly id: number;
    readonly pipeline: number;
    readonly spec: { readonly eventTime: ((decoded: any) => number) | null };
  }[];
  readonly steps: readonly {
    readonly id: number;
    readonly pipeline: number;
    readonly state: number;
    readonly windows: Windows | null;
  }[];
  readonly states: readonly unknown[];
}

export interface WindowOptions {
  /** wall-clock ms (epoch); the test driver gives its own clock */
  readonly clock: () => number;
  /** an input silent this long stops holding the watermark back (--idle-timeout) */
  readonly idleTimeoutMs: number;
}

/** how often a worker with window steps ticks (fires closed windows, sends its marks) */
export const WINDOW_TICK_MS = 50;

/** Bytes of a marks frame: per source, its largest event time and when it last spoke (float64 LE each). */
export function marksFrameBytes(sources: number): number {
  return sources * 16;
}

export class WindowRuntime {
  /** per source: whether its pipeline has a window step (only those sources take event times) */
  readonly timed: boolean[];
  /** per step: its windows, or null */
  readonly windows: (Windows | null)[];
  /** per step: its watermark (window steps only) */
  private readonly clocks: (WatermarkClock | null)[];
  /** per step: its state id */
  private readonly stateOf: number[];
  /** per step: the source of its pipeline */
  private readonly stepSource: number[];
  /**
   * [worker][source]: each worker's summary of its inputs of that source; this worker's own
   * at [index] (made from `inputs` at each advance()), its peers' as their latest frames said
   */
  private readonly marks: InputMark[][];
  /** per source: this worker's inputs heard from within the idle timeout, by input number */
  private readonly inputs: Map<number, InputMark>[];
  /** per source: what this worker's idle inputs left (watermark.ts summarize()) */
  private readonly retired: InputMark[];
  /** per source: the input of the last message and its mark (null: look it up) */
  private readonly lastInput: number[];
  private readonly lastMark: (InputMark | null)[];
  /** per step: late events (counted here; the executor copies them to its metrics slots) */
  readonly late: number[];
  /**
   * Per state id (window states only): this worker's keys holding open range or session
   * windows, the ones a tick must fire. A tick visits these, not every key ever seen.
   */
  private readonly open: (Map<Key, WindowState> | null)[];
  /** per state id: the windows of the step(s) using it (null: not a window state) */
  private readonly stateWindows: (Windows | null)[];
  private readonly frame: Buffer;

  constructor(
    plan: WindowPlan,
    private readonly index: number,
    readonly options: WindowOptions,
  ) {
    this.windows = plan.steps.map((s) => s.windows);
    this.clocks = plan.steps.map((s) => (s.windows !== null ? new WatermarkClock() : null));
    this.stateOf = plan.steps.map((s) => s.state);
    this.stepSource = plan.steps.map((s) => plan.sources.find((src) => src.pipeline === s.pipeline)?.id ?? -1);
    this.timed = plan.sources.map((src) => plan.steps.some((s) => s.windows !== null && s.pipeline === src.pipeline));
    this.marks = Array.from({ length: plan.workers }, () => plan.sources.map(() => newMark()));
    this.inputs = plan.sources.map(() => new Map());
    this.retired = plan.sources.map(() => newMark());
    this.lastInput = plan.sources.map(() => -1);
    this.lastMark = plan.sources.map(() => null);
    this.late = plan.steps.map(() => 0);
    this.frame = Buffer.alloc(marksFrameBytes(plan.sources.length));
    this.eventTimeFns = plan.sources.map((s) => s.spec.eventTime);
    this.stateWindows = plan.states.map(
      (_, id) => plan.steps.find((s) => s.state === id && s.windows !== null)?.windows ?? null,
    );
    this.open = this.stateWindows.map((w) => (w !== null && w.kind !== "count" ? new Map() : null));
  }

  private readonly eventTimeFns: (((decoded: any) => number) | null)[];

  now(): number {
    return this.options.clock();
  }

  /**
   * The event time of a message just decoded from input `input` of `source` (its eventTime
   * option, else `stamp`: a Kafka record's timestamp, else `now`: ingest time), recorded in
   * this worker's mark of that input. `now`: when its source frame arrived (the clock read
   * once per frame: a frame's messages arrived together). Throws (the message is then
   * dropped as a decoder error) when eventTime does not give a finite number.
   */
  arrive(source: number, input: number, decoded: unknown, stamp: number | null, now: number): number {
    const fn = this.eventTimeFns[source];
    const et = fn !== null ? fn(decoded) : stamp !== null ? stamp : now;
    if (typeof et !== "number" || !Number.isFinite(et)) {
      throw new TypeError(
        `eventTime must return the event time as a finite number of ms, got ${typeof et === "number" ? et : typeof et}; the message is dropped`,
      );
    }
    // A run of messages comes from one input: its mark is looked up once per run, not per message.
    let mark = this.lastMark[source];
    if (this.lastInput[source] !== input || mark === null) {
      const inputs = this.inputs[source];
      mark = inputs.get(input) ?? null;
      if (mark === null) {
        mark = newMark();
        inputs.set(input, mark);
      }
      this.lastInput[source] = input;
      this.lastMark[source] = mark;
    }
    observe(mark, et, now);
    return et;
  }

  /**
   * Input `input` of `source` exists though it gave nothing yet (a Kafka partition assigned to
   * this worker): it holds the watermark back until it speaks or the idle timeout passes.
   */
  announce(source: number, input: number): void {
    if (!this.timed[source]) return;
    const inputs = this.inputs[source];
    if (!inputs.has(input)) {
      const mark = newMark();
      announce(mark, this.options.clock());
      inputs.set(input, mark);
    }
  }

  /** The watermark of window step `step` as of the last tick (-Infinity: none yet). */
  watermark(step: number): number {
    return this.clocks[step]!.value;
  }

  /**
   * A message for window step `step` and key `key` (its windows `st`). Returns the outputs
   * it causes now (a count window's, a late event fired on its own), or null; calls `onLate`
   * for a late event, counted, whatever the policy did with it.
   */
  onMessage(
    step: number,
    st: WindowState,
    key: Key,
    value: unknown,
    eventTime: number,
    onLate: (step: number, value: unknown, eventTime: number, watermark: number, dropped: boolean) => void,
  ): unknown[] | null {
    const out: unknown[] = [];
    const wm = this.clocks[step]!.value;
    const w = this.windows[step]!;
    // A key holding open windows is in `open` already (kept so by this, forEachOpen and
    // restored): only a key that held none is added, not one Map.set per event.
    const held = w.kind !== "count" && st.open.length > 0;
    const r = add(w, st, key, value, eventTime, wm, out);
    if (!held && w.kind !== "count" && openCount(w, st) > 0) this.open[this.stateOf[step]]!.set(key, st);
    if (r !== ADDED) {
      this.late[step]++;
      onLate(step, value, eventTime, wm, r === LATE_DROPPED);
    }
    return out.length > 0 ? out : null;
  }

  /**
   * Moves every window step's watermark to what the marks say at `now`; returns the ids of
   * the steps whose watermark advanced (their keys must be fired).
   */
  advance(now: number): number[] {
    this.summarizeOwn(now);
    const moved: number[] = [];
    for (let s = 0; s < this.clocks.length; s++) {
      const clock = this.clocks[s];
      const w = this.windows[s];
      if (clock === null || w === null || w.kind === "count") continue;
      const src = this.stepSource[s];
      const wm = watermarkOf(
        this.marks.map((m) => m[src]),
        w.delay,
        now,
        this.options.idleTimeoutMs,
      );
      if (clock.advance(wm)) moved.push(s);
    }
    return moved;
  }

  /**
   * Calls `visit` for every key of step `step` holding open windows on this worker (it fires
   * them with fireKey); a key left with none is then no longer visited.
   */
  forEachOpen(step: number, visit: (key: Key, st: WindowState) => void): void {
    const open = this.open[this.stateOf[step]]!;
    const w = this.windows[step]!;
    for (const [key, st] of open) {
      visit(key, st);
      if (openCount(w, st) === 0) open.delete(key);
    }
  }

  /** Windows (panes, sessions, count windows) one key of step `step` holds open. */
  openWindows(step: number, st: WindowState): number {
    return openCount(this.windows[step]!, st);
  }

  /** A restored instance of a window state: a tick must visit it if it holds open windows. */
  restored(state: number, key: Key, st: WindowState): void {
    const w = this.stateWindows[state];
    const open = this.open[state];
    if (w != null && open != null && openCount(w, st) > 0) open.set(key, st);
  }

  /** Emits the closed windows of one key of step `step` at its watermark; returns its open windows. */
  fireKey(step: number, st: WindowState, key: Key, out: unknown[]): number {
    return fire(this.windows[step]!, st, key, this.clocks[step]!.value, out);
  }

  /** This worker's own mark per source: the summary of its inputs at `now`. */
  private summarizeOwn(now: number): void {
    // summarize() may retire the cached input's mark (an idle input): look it up again next time.
    this.lastMark.fill(null);
    const own = this.marks[this.index];
    for (let src = 0; src < own.length; src++) {
      summarize(this.inputs[src], this.retired[src], now, this.options.idleTimeoutMs, own[src]);
    }
  }

  /** This worker's marks (its summaries now), as the frame its peers read with onPeerMarks(); valid until the next call. */
  marksFrame(): Buffer {
    this.summarizeOwn(this.options.clock());
    const own = this.marks[this.index];
    for (let i = 0; i < own.length; i++) {
      this.frame.writeDoubleLE(own[i].maxEventTime, i * 16);
      this.frame.writeDoubleLE(own[i].lastSeen, i * 16 + 8);
    }
    return this.frame;
  }

  onPeerMarks(worker: number, buf: Buffer, off: number, len: number): void {
    const m = this.marks[worker];
    if (worker === this.index || m === undefined || len !== this.frame.length) {
      throw new Error(`a marks frame from worker ${worker} of ${len} bytes does not match this plan`);
    }
    for (let i = 0; i < m.length; i++) {
      m[i].maxEventTime = buf.readDoubleLE(off + i * 16);
      m[i].lastSeen = buf.readDoubleLE(off + i * 16 + 8);
    }
  }

  /** Watermarks and marks, for a checkpoint: [step watermarks], [own marks as [max, lastSeen]]. */
  snapshot(): { watermarks: number[]; marks: [number, number][] } {
    return {
      watermarks: this.clocks.map((c) => (c === null ? -Infinity : c.value)),
      marks: this.marks[this.index].map((m) => [m.maxEventTime, m.lastSeen]),
    };
  }
}
