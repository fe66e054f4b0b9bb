/**
 * The windows of one key: which window(s) an event goes into, and which windows a
 * watermark closes. Pure: no clock, no engine; the caller gives the event time and
 * the watermark (see watermark.ts) and collects the outputs.
 *
 * Range windows keep one accumulator per pane, the largest duration dividing both the
 * range and the slide (tumbling: the window itself; sliding with a slide dividing the
 * range: the slide). A window's accumulator is combined from its panes when it fires,
 * so an event costs one update, not one per overlapping window. Panes that no open
 * window covers any more are freed at each firing.
 *
 * Invariants the engine relies on (they give per-key outputs in window-end order):
 * - the watermark given to add() and fire() never goes down;
 * - after fire(wm) every window still held ends after wm (fired records wm);
 * - add() never puts an event into a window ending at or before the watermark (that
 *   event is late and follows the policy), so a window that fired never gets more data.
 */
import type { Key } from "../topology/spec.js";
import type { CountWindows, RangeWindows, SessionWindows, WindowBounds, Windows } from "../topology/windows.js";

/**
 * The per-key state of a windowed step (a state instance of the engine: it crosses
 * threads and goes into checkpoints with the state serialization). Plain fields only.
 */
export class WindowState {
  /** range: [paneStart, acc, ...] flat pairs, by start; session: [start, end, acc, ...] triples, by start */
  open: unknown[] = [];
  /** range, session: every window ending at or before this was emitted (NaN: no watermark seen yet) */
  fired = Number.NaN;
  /** count: events in the current window, its first and last event time, its accumulator */
  n = 0;
  first = 0;
  last = 0;
  acc: unknown = undefined;
}

/** What add() did with an event. */
export const ADDED = 0;
/** behind the watermark, dropped ("drop", or "place-in-oldest-window" with no open window) */
export const LATE_DROPPED = 1;
/** behind the watermark, emitted in a window of its own ("fire-per-message") */
export const LATE_FIRED = 2;
/** behind the watermark, added to the key's oldest open window ("place-in-oldest-window") */
export const LATE_PLACED = 3;
export type AddResult = typeof ADDED | typeof LATE_DROPPED | typeof LATE_FIRED | typeof LATE_PLACED;

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** The pane of range windows: the largest duration that divides both range and slide. */
export function paneOf(w: { range: number; slide: number }): number {
  return gcd(w.range, w.slide);
}

/** paneOf() of the last windows asked about (a step's windows are one object): no gcd per event. */
let paneW: RangeWindows | null = null;
let paneV = 0;
function paneFor(w: RangeWindows): number {
  if (w !== paneW) {
    paneW = w;
    paneV = paneOf(w);
  }
  return paneV;
}

/** The largest `alignment + n * step` at or below t. */
function floorTo(t: number, step: number, alignment: number): number {
  return Math.floor((t - alignment) / step) * step + alignment;
}

function update(w: Windows, input: unknown, acc: unknown): unknown {
  const r = w.aggregation.update(input, acc);
  return r === undefined ? acc : r;
}

function emit(w: Windows, key: Key, window: WindowBounds, acc: unknown, out: unknown[]): void {
  const o = w.aggregation.output(key, window, acc);
  if (o != null) out.push(o);
}

/**
 * Puts an event of time `et` into the key's windows, given the step's watermark `wm`
 * (-Infinity: none yet). Outputs it causes (a count window's, a late event fired on its
 * own) are pushed to `out`.
 */
export function add(
  w: Windows,
  st: WindowState,
  key: Key,
  input: unknown,
  et: number,
  wm: number,
  out: unknown[],
): AddResult {
  if (w.kind === "count") return addCount(w, st, key, input, et, out);
  // Windows ending at or before wm are closed for this key, whether they fired (the engine
  // fires every key holding windows at each watermark) or held nothing of it (a new key, or
  // one whose windows had all closed): an event must not reopen them. (NaN: a new key.)
  if (Number.isNaN(st.fired) || wm > st.fired) st.fired = wm;
  return w.kind === "range" ? addRange(w, st, key, input, et, wm, out) : addSession(w, st, key, input, et, wm, out);
}

function addCount(w: CountWindows, st: WindowState, key: Key, input: unknown, et: number, out: unknown[]): AddResult {
  if (st.n === 0) {
    st.acc = w.aggregation.initial();
    st.first = et;
  }
  st.acc = update(w, input, st.acc);
  st.last = et;
  if (++st.n === w.count) {
    const acc = st.acc;
    st.n = 0;
    st.acc = undefined;
    emit(w, key, { start: st.first, end: st.last }, acc, out);
  }
  return ADDED;
}

/** Adds `input` to the pane starting at `start`, creating it in order. */
function addToPane(w: RangeWindows, st: WindowState, start: number, input: unknown): void {
  const open = st.open;
  let i = open.length - 2;
  // Events mostly go to the newest pane: search from the end.
  while (i >= 0 && (open[i] as number) > start) i -= 2;
  if (i >= 0 && open[i] === start) open[i + 1] = update(w, input, open[i + 1]);
  else open.splice(i + 2, 0, start, update(w, input, w.aggregation.initial()));
}

function addRange(
  w: RangeWindows,
  st: WindowState,
  key: Key,
  input: unknown,
  et: number,
  wm: number,
  out: unknown[],
): AddResult {
  const pane = paneFor(w);
  // The last window holding et ends at lastStart + range: at or before the watermark, every
  // window holding it is closed. (Some of its windows may be closed while others are open: it
  // then counts in the open ones only, since closed ones never fire again.)
  const lastStart = floorTo(et, w.slide, w.alignment);
  const closed = Math.max(wm, st.fired);
  if (lastStart + w.range > closed) {
    addToPane(w, st, floorTo(et, pane, w.alignment), input);
    return ADDED;
  }
  if (w.late === "fire-per-message") {
    emit(w, key, { start: lastStart, end: lastStart + w.range }, update(w, input, w.aggregation.initial()), out);
    return LATE_FIRED;
  }
  if (w.late === "place-in-oldest-window") {
    // The oldest open window starts at the first slide start whose window ends after the watermark;
    // its first pane is in no closed window that has not fired yet.
    const oldest = floorTo(closed - w.range, w.slide, w.alignment) + w.slide;
    addToPane(w, st, oldest, input);
    return LATE_PLACED;
  }
  return LATE_DROPPED;
}

function addSession(
  w: SessionWindows,
  st: WindowState,
  key: Key,
  input: unknown,
  et: number,
  wm: number,
  out: unknown[],
): AddResult {
  const open = st.open;
  const closed = Math.max(wm, st.fired);
  if (et + w.gap <= closed) {
    if (w.late === "fire-per-message") {
      emit(w, key, { start: et, end: et + w.gap }, update(w, input, w.aggregation.initial()), out);
      return LATE_FIRED;
    }
    if (w.late === "place-in-oldest-window" && open.length > 0) {
      open[2] = update(w, input, open[2]);
      return LATE_PLACED;
    }
    return LATE_DROPPED;
  }
  // A session of its own [et, et + gap), merged with every open session it overlaps.
  let start = et;
  let end = et + w.gap;
  let acc = update(w, input, w.aggregation.initial());
  let i = 0;
  while (i < open.length && (open[i + 1] as number) <= start) i += 3;
  // open[i..] are the sessions ending after `start`; those starting before `end` overlap.
  let j = i;
  while (j < open.length && (open[j] as number) < end) {
    start = Math.min(start, open[j] as number);
    end = Math.max(end, open[j + 1] as number);
    // The older session's accumulator first: combine need not be commutative.
    acc = (open[j] as number) <= et ? w.aggregation.combine(open[j + 2], acc) : w.aggregation.combine(acc, open[j + 2]);
    j += 3;
  }
  open.splice(i, j - i, start, end, acc);
  return ADDED;
}

/**
 * Emits every window of the key that ends at or before `wm` and was not emitted yet,
 * in window-end order, and frees what no open window needs. Returns the number of
 * windows (panes or sessions) still open.
 */
export function fire(w: Windows, st: WindowState, key: Key, wm: number, out: unknown[]): number {
  if (w.kind === "count") return st.n > 0 ? 1 : 0;
  if (!(wm > st.fired)) {
    if (Number.isNaN(st.fired)) st.fired = wm;
    return w.kind === "range" ? st.open.length / 2 : st.open.length / 3;
  }
  const from = st.fired;
  st.fired = wm;
  return w.kind === "range" ? fireRange(w, st, key, from, wm, out) : fireSessions(w, st, key, wm, out);
}

function fireRange(w: RangeWindows, st: WindowState, key: Key, from: number, wm: number, out: unknown[]): number {
  const open = st.open;
  const { range, slide, alignment } = w;
  if (open.length === 0) return 0;
  // The window starts to emit: those ending in (from, wm] that hold a pane, in order.
  // Windows holding pane p start in (p - range, p]; walking panes by start gives starts in
  // order, and a start already taken is skipped.
  let next = -Infinity;
  for (let i = 0; i < open.length; i += 2) {
    const p = open[i] as number;
    let s = Math.max(floorTo(p - range, slide, alignment) + slide, next);
    const last = floorTo(p, slide, alignment);
    for (; s <= last; s += slide) {
      const end = s + range;
      if (end > wm) break;
      if (end > from) emit(w, key, { start: s, end }, accOf(w, open, i, s, end), out);
    }
    next = Math.max(next, s);
  }
  // Panes before the oldest open window are in no open window: freed.
  const oldest = floorTo(wm - range, slide, alignment) + slide;
  let k = 0;
  while (k < open.length && (open[k] as number) < oldest) k += 2;
  if (k > 0) open.splice(0, k);
  return open.length / 2;
}

/** The accumulator of window [start, end), combined from its panes (open[i] is one of them). */
function accOf(w: RangeWindows, open: unknown[], i: number, start: number, end: number): unknown {
  while (i >= 2 && (open[i - 2] as number) >= start) i -= 2;
  let acc = open[i + 1];
  for (let j = i + 2; j < open.length && (open[j] as number) < end; j += 2)
    acc = w.aggregation.combine(acc, open[j + 1]);
  return acc;
}

function fireSessions(w: SessionWindows, st: WindowState, key: Key, wm: number, out: unknown[]): number {
  const open = st.open;
  // Open sessions do not overlap and are sorted by start, so also by end.
  let k = 0;
  while (k < open.length && (open[k + 1] as number) <= wm) {
    emit(w, key, { start: open[k] as number, end: open[k + 1] as number }, open[k + 2], out);
    k += 3;
  }
  if (k > 0) open.splice(0, k);
  return open.length / 3;
}

/** Windows (panes, sessions, count windows) the key holds open. */
export function openCount(w: Windows, st: WindowState): number {
  if (w.kind === "count") return st.n > 0 ? 1 : 0;
  return w.kind === "range" ? st.open.length / 2 : st.open.length / 3;
}
