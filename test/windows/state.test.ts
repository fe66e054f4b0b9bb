import { describe, expect, it } from "vitest";
import * as win from "../../src/api/windows.js";
import type { Windows } from "../../src/topology/windows.js";
import {
  ADDED,
  add,
  fire,
  LATE_DROPPED,
  LATE_FIRED,
  LATE_PLACED,
  openCount,
  WindowState,
} from "../../src/windows/state.js";

/** Collects events' values: the output is `start-end:values` (combine calls counted). */
let combines = 0;
const collect = win.aggregation({
  name: "collect",
  initial: () => [] as number[],
  update: (v: number, acc) => {
    acc.push(v);
  },
  combine: (a, b) => {
    combines++;
    return [...a, ...b];
  },
  output: (_key, w, acc) => `${w.start}-${w.end}:${[...acc].sort((x, y) => x - y).join(",")}`,
});

/** Feeds [eventTime, value] pairs at watermark wm; returns what add() emitted. */
function feed(w: Windows, st: WindowState, events: [number, number][], wm = -Infinity): unknown[] {
  const out: unknown[] = [];
  for (const [et, v] of events) expect(add(w, st, "k", v, et, wm, out)).toBe(ADDED);
  return out;
}

function fired(w: Windows, st: WindowState, wm: number): unknown[] {
  const out: unknown[] = [];
  fire(w, st, "k", wm, out);
  return out;
}

describe("tumbling windows", () => {
  const w = win.rangeWindows(10).over(collect);
  it("assign by epoch-aligned start and fire when the watermark passes the end, in end order", () => {
    const st = new WindowState();
    feed(w, st, [
      [3, 1],
      [12, 2],
      [9, 3],
      [25, 4],
      [-1, 5],
    ]);
    expect(fired(w, st, 9)).toEqual(["-10-0:5"]);
    expect(fired(w, st, 20)).toEqual(["0-10:1,3", "10-20:2"]);
    expect(fired(w, st, 20)).toEqual([]); // never twice
    expect(openCount(w, st)).toBe(1);
    expect(fired(w, st, 1000)).toEqual(["20-30:4"]);
    expect(openCount(w, st)).toBe(0); // closed windows free their state
  });
  it("withAlignment shifts the starts", () => {
    const a = win.rangeWindows(10).withAlignment(3).over(collect);
    const st = new WindowState();
    feed(a, st, [
      [2, 1],
      [3, 2],
      [12, 3],
    ]);
    expect(fired(a, st, 13)).toEqual(["-7-3:1", "3-13:2,3"]);
  });
  it("an event in a window already closed is late; one in an open window is not", () => {
    const st = new WindowState();
    const out: unknown[] = [];
    expect(add(w, st, "k", 1, 5, 10, out)).toBe(LATE_DROPPED); // [0,10) closed at wm 10
    expect(add(w, st, "k", 2, 10, 10, out)).toBe(ADDED);
    expect(out).toEqual([]);
    expect(fired(w, st, 20)).toEqual(["10-20:2"]);
  });
});

describe("sliding windows", () => {
  it("use one accumulator per pane (the slide), combined per window", () => {
    const w = win.rangeWindows(10).withSlide(5).over(collect);
    const st = new WindowState();
    feed(w, st, [
      [1, 1],
      [2, 2],
      [6, 3],
      [7, 4],
      [8, 5],
      [11, 6],
    ]);
    expect(st.open.length / 2).toBe(3); // panes 0, 5, 10: not one accumulator per window per event
    combines = 0;
    expect(fired(w, st, 15)).toEqual(["-5-5:1,2", "0-10:1,2,3,4,5", "5-15:3,4,5,6"]);
    expect(combines).toBe(2);
    expect(openCount(w, st)).toBe(1); // pane 10 is still in [10,20)
    expect(fired(w, st, 25)).toEqual(["10-20:6"]);
  });
  it("a slide that does not divide the range uses the gcd as pane", () => {
    const w = win.rangeWindows(10).withSlide(4).over(collect);
    const st = new WindowState();
    feed(w, st, [
      [0, 1],
      [5, 2],
      [9, 3],
    ]);
    expect(fired(w, st, 100)).toEqual(["-8-2:1", "-4-6:1,2", "0-10:1,2,3", "4-14:2,3", "8-18:3"]);
  });
  it("an event whose last window is open counts only in the open windows", () => {
    const w = win.rangeWindows(10).withSlide(5).over(collect);
    const st = new WindowState();
    feed(w, st, [[1, 1]]);
    expect(fired(w, st, 10)).toEqual(["-5-5:1", "0-10:1"]);
    const out: unknown[] = [];
    expect(add(w, st, "k", 2, 7, 10, out)).toBe(ADDED); // [0,10) is closed, [5,15) open
    expect(fired(w, st, 15)).toEqual(["5-15:2"]);
  });
});

describe("late-data policies", () => {
  it("fire-per-message: the late event alone, in its last window", () => {
    const w = win.rangeWindows(10).withLateDataPolicy("fire-per-message").over(collect);
    const st = new WindowState();
    const out: unknown[] = [];
    expect(add(w, st, "k", 7, 3, 50, out)).toBe(LATE_FIRED);
    expect(out).toEqual(["0-10:7"]);
    expect(openCount(w, st)).toBe(0);
  });
  it("place-in-oldest-window: into the oldest window still open", () => {
    const w = win.rangeWindows(10).withLateDataPolicy("place-in-oldest-window").over(collect);
    const st = new WindowState();
    feed(w, st, [[55, 1]], 50);
    const out: unknown[] = [];
    expect(add(w, st, "k", 2, 3, 50, out)).toBe(LATE_PLACED);
    expect(fired(w, st, 60)).toEqual(["50-60:1,2"]);
  });
  it("sessions: fire-per-message and place-in-oldest-window; with no open session the latter drops", () => {
    const fpm = win.sessionWindows(5).withLateDataPolicy("fire-per-message").over(collect);
    const out: unknown[] = [];
    expect(add(fpm, new WindowState(), "k", 1, 3, 20, out)).toBe(LATE_FIRED);
    expect(out).toEqual(["3-8:1"]);
    const oldest = win.sessionWindows(5).withLateDataPolicy("place-in-oldest-window").over(collect);
    const st = new WindowState();
    expect(add(oldest, st, "k", 1, 3, 20, out)).toBe(LATE_DROPPED);
    feed(oldest, st, [[30, 2]], 20);
    expect(add(oldest, st, "k", 3, 3, 20, out)).toBe(LATE_PLACED);
    expect(fired(oldest, st, 100)).toEqual(["30-35:2,3"]);
  });
});

describe("session windows", () => {
  const w = win.sessionWindows(10).over(collect);
  it("merge events less than the gap apart, including a late-arriving event that bridges two sessions", () => {
    const st = new WindowState();
    feed(w, st, [
      [0, 1],
      [5, 2],
      [30, 3],
      [48, 4],
    ]);
    expect(st.open.length / 3).toBe(3); // [0,15) [30,40) [48,58): 30 and 40 would be a gap apart, not less
    feed(w, st, [[39, 5]]); // [39,49) bridges [30,40) and [48,58)
    expect(st.open.length / 3).toBe(2);
    expect(fired(w, st, 15)).toEqual(["0-15:1,2"]);
    expect(fired(w, st, 57)).toEqual([]);
    expect(fired(w, st, 58)).toEqual(["30-58:3,4,5"]);
  });
  it("an event whose session would already be closed is late", () => {
    const st = new WindowState();
    const out: unknown[] = [];
    expect(add(w, st, "k", 1, 5, 15, out)).toBe(LATE_DROPPED);
    expect(add(w, st, "k", 1, 6, 15, out)).toBe(ADDED);
  });
});

describe("count windows", () => {
  it("fire at their count with the first and last event time, and never late", () => {
    const w = win.countWindows(3).over(collect);
    const st = new WindowState();
    const out = feed(
      w,
      st,
      [
        [5, 1],
        [3, 2],
        [9, 3],
        [1, 4],
      ],
      1000,
    );
    expect(out).toEqual(["5-9:1,2,3"]);
    expect(openCount(w, st)).toBe(1);
  });
});

describe("aggregations", () => {
  it("update may return a new accumulator (numbers)", () => {
    const sum = win.aggregation({
      name: "sum",
      initial: () => 0,
      update: (v: number, acc: number) => acc + v,
      combine: (a: number, b: number) => a + b,
      output: (_k, _w, acc: number) => acc,
    });
    const w = win.rangeWindows(10).withSlide(5).over(sum);
    const st = new WindowState();
    const out: unknown[] = [];
    for (const [et, v] of [
      [1, 1],
      [6, 2],
    ])
      add(w, st, "k", v, et!, -Infinity, out);
    expect(fired(w, st, 100)).toEqual([1, 3, 2]);
  });
  it("output null sends nothing", () => {
    const none = win.aggregation({
      name: "n",
      initial: () => 0,
      update: () => {},
      combine: () => 0,
      output: () => null,
    });
    const w = win.countWindows(1).over(none);
    expect(feed(w, new WindowState(), [[1, 1]])).toEqual([]);
  });
});

describe("a key whose windows had all closed", () => {
  it("does not reopen a window that closed while it held nothing (found by the generated test)", () => {
    const w = win.rangeWindows(10).withSlide(5).over(collect);
    const st = new WindowState();
    feed(w, st, [[1, 1]]);
    expect(fired(w, st, 10)).toEqual(["-5-5:1", "0-10:1"]);
    // the engine fires only keys holding windows: this key did not see the watermarks since 10
    const out: unknown[] = [];
    expect(add(w, st, "k", 2, 27, 30, out)).toBe(ADDED); // [20,30) closed at 30, [25,35) open
    expect(fired(w, st, 40)).toEqual(["25-35:2"]);
  });
});
