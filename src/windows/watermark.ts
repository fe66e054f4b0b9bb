/**
 * Watermarks: how far event time has got, per input and for a windowed step.
 *
 * An input is one stream of events in arrival order (in the engine: one connection of a
 * TCP source, one partition of a Kafka source). Its mark is the largest event time it has given, and the
 * wall-clock time it last spoke. A step's event-time frontier is the minimum mark
 * over its live inputs; its watermark is the frontier minus the step's delay.
 *
 * Idleness: an input silent for `idleMs` stops holding the frontier back, and holds
 * it again once it speaks. When every input is idle, nothing else will move event
 * time, so it follows the wall clock from the largest mark, starting the moment the
 * last input went idle: a quiet stream's last window closes about idleMs after the
 * wall clock has passed its end (measured from the last event), not never. The
 * delay is not subtracted then: it allows for disorder among events still coming,
 * and the idle timeout already waited for them.
 *
 * Pure: `now` is given (the engine's wall clock, or the test driver's).
 */

/**
 * One input's mark: its largest event time (-Infinity: none yet) and when it last spoke (wall
 * ms; -Infinity: never, and not announced either).
 */
export interface InputMark {
  maxEventTime: number;
  lastSeen: number;
}

export function newMark(): InputMark {
  return { maxEventTime: -Infinity, lastSeen: -Infinity };
}

/** An input known to exist before its first event (a Kafka partition just assigned): live from `now`. */
export function announce(mark: InputMark, now: number): void {
  if (mark.lastSeen === -Infinity) mark.lastSeen = now;
}

export function observe(mark: InputMark, eventTime: number, now: number): void {
  if (eventTime > mark.maxEventTime) mark.maxEventTime = eventTime;
  if (now > mark.lastSeen) mark.lastSeen = now;
}

/**
 * The watermark of a step with `delay`, over `marks`, at wall time `now`; -Infinity
 * while no input has given an event. Callers keep the result monotone (see WatermarkClock).
 */
export function watermarkOf(marks: Iterable<InputMark>, delay: number, now: number, idleMs: number): number {
  let liveMin = Infinity;
  let anyLive = false;
  let max = -Infinity;
  let lastSeen = -Infinity;
  for (const m of marks) {
    // An input never heard of holds nothing back; one announced (lastSeen set, no event yet)
    // holds the watermark at -Infinity while it is live: its first events may be the oldest.
    if (m.lastSeen === -Infinity) continue;
    if (m.maxEventTime > max) max = m.maxEventTime;
    if (m.lastSeen > lastSeen) lastSeen = m.lastSeen;
    if (now - m.lastSeen < idleMs) {
      anyLive = true;
      if (m.maxEventTime < liveMin) liveMin = m.maxEventTime;
    }
  }
  if (anyLive) return liveMin - delay;
  if (max === -Infinity) return -Infinity;
  // All idle since lastSeen + idleMs: event time follows the wall clock from there.
  return max + Math.max(0, now - (lastSeen + idleMs));
}

/**
 * What a set of inputs says, as one mark that watermarkOf() treats exactly as it would treat
 * the inputs themselves (at `now`; a worker sends its peers this per source instead of a mark
 * per connection or partition): while one of them is live, the smallest live mark, live as
 * long as the latest live one; once all are idle, the largest mark and the latest time any
 * spoke. It is written into `into`. Inputs idle at `now` are folded into `retired` (the
 * component-wise maximum, which is all watermarkOf() uses of idle inputs) and removed from
 * `inputs`, so the map holds only the inputs heard from within the idle timeout.
 *
 * Exactness: watermarkOf(summaries of several sets) = watermarkOf(all the inputs) at `now`.
 * Later the summary may hold the watermark back a little longer than the inputs would (its
 * smallest live input may go idle before the next summary), never let it run ahead.
 */
export function summarize(
  inputs: Map<number, InputMark>,
  retired: InputMark,
  now: number,
  idleMs: number,
  into: InputMark,
): void {
  let liveMin = Infinity;
  let liveSeen = -Infinity;
  for (const [id, m] of inputs) {
    if (now - m.lastSeen < idleMs) {
      if (m.maxEventTime < liveMin) liveMin = m.maxEventTime;
      if (m.lastSeen > liveSeen) liveSeen = m.lastSeen;
    } else {
      if (m.maxEventTime > retired.maxEventTime) retired.maxEventTime = m.maxEventTime;
      if (m.lastSeen > retired.lastSeen) retired.lastSeen = m.lastSeen;
      inputs.delete(id);
    }
  }
  if (liveSeen > -Infinity) {
    into.maxEventTime = liveMin;
    into.lastSeen = liveSeen;
  } else {
    into.maxEventTime = retired.maxEventTime;
    into.lastSeen = retired.lastSeen;
  }
}

/** A step's watermark, kept monotone: it never goes back when a late input speaks again. */
export class WatermarkClock {
  value = -Infinity;
  advance(wm: number): boolean {
    if (wm > this.value) {
      this.value = wm;
      return true;
    }
    return false;
  }
}
