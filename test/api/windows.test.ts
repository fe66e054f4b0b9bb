import { describe, expect, it } from "vitest";
import { ApplicationBuilder } from "../../src/api/builder.js";
import { TCPSinkConfig, TCPSourceConfig } from "../../src/api/configs.js";
import { WallarooParameterError } from "../../src/api/errors.js";
import * as w from "../../src/api/wrappers.js";
import * as win from "../../src/api/windows.js";
import * as dur from "../../src/api/durations.js";
import { compilePlan } from "../../src/topology/plan.js";
import { WindowState } from "../../src/windows/state.js";

const dec = w.decoder((b: Buffer) => b.toString());
const enc = w.encoder((s: string) => s);
const byFirst = w.partition((s: string) => s[0] ?? "");
const count = win.aggregation({
  name: "count",
  initial: () => ({ n: 0 }),
  update: (_s: string, acc) => {
    acc.n++;
  },
  combine: (a, b) => ({ n: a.n + b.n }),
  output: (key, window, acc) => `${String(key)} ${window.start} ${window.end} ${acc.n}\n`,
});

function app(windows: unknown, fn?: unknown, keys?: unknown) {
  return new ApplicationBuilder("app")
    .newPipeline("p", new TCPSourceConfig("127.0.0.1", 0, dec))
    .toWindows(windows as never, fn as never, keys as never)
    .toSink(new TCPSinkConfig("127.0.0.1", 7000, enc));
}

const fails = (f: () => unknown, msg: RegExp) => {
  expect(f).toThrow(WallarooParameterError);
  expect(f).toThrow(msg);
};

describe("durations", () => {
  it("are milliseconds", () => {
    expect([dur.milliseconds(5), dur.seconds(2), dur.minutes(1.5), dur.hours(1)]).toEqual([5, 2000, 90_000, 3_600_000]);
    fails(() => dur.seconds(Number.NaN), /seconds\(n\): n must be a finite number/);
  });
});

describe("window builders", () => {
  it("record the options (defaults: tumbling, no delay, drop, aligned to the epoch)", () => {
    const t = win.rangeWindows(10).over(count);
    expect(t).toMatchObject({ kind: "range", range: 10, slide: 10, alignment: 0, delay: 0, late: "drop" });
    const s = win
      .rangeWindows(10)
      .withSlide(4)
      .withDelay(3)
      .withAlignment(-1)
      .withLateDataPolicy("place-in-oldest-window")
      .over(count);
    expect(s).toMatchObject({ range: 10, slide: 4, alignment: 3, delay: 3, late: "place-in-oldest-window" });
    expect(win.session_windows(7).with_delay(2).with_late_data_policy("fire-per-message").over(count)).toMatchObject({
      kind: "session",
      gap: 7,
      delay: 2,
      late: "fire-per-message",
    });
    expect(win.count_windows(3).over(count)).toMatchObject({ kind: "count", count: 3 });
  });

  it("each with* returns a new builder, so one can be shared", () => {
    const base = win.rangeWindows(10);
    expect(base.withSlide(5).over(count).slide).toBe(5);
    expect(base.withSlide(2).over(count).slide).toBe(2);
  });

  it("reject a with* called twice", () => {
    fails(() => win.rangeWindows(10).withDelay(1).withDelay(2), /withDelay\(\) is called twice .*call it once/);
    fails(() => win.sessionWindows(10).withLateDataPolicy("drop").withLateDataPolicy("drop"), /called twice/);
    fails(() => win.rangeWindows(10).withSlide(5).with_slide(5), /withSlide\(\) is called twice/);
  });

  it("reject a slide larger than the range", () => {
    fails(
      () => win.rangeWindows(10).withSlide(11),
      /the slide is larger than the range; give a slide at most the range/,
    );
  });

  it("reject non-positive durations and counts, naming the helpers", () => {
    fails(
      () => win.rangeWindows(0),
      /the range must be a positive whole number of milliseconds, got 0; write it with wallaroo.milliseconds/,
    );
    fails(() => win.rangeWindows(-5), /positive whole number/);
    fails(() => win.rangeWindows(1.5), /positive whole number/);
    fails(() => win.rangeWindows(10).withSlide(0), /the slide must be a positive/);
    fails(() => win.rangeWindows(10).withDelay(-1), /the delay must be a non-negative/);
    fails(() => win.sessionWindows(0), /the gap must be a positive/);
    fails(() => win.countWindows(0), /the count must be a positive whole number of events, got 0/);
    fails(() => win.countWindows("3" as never), /got "3"/);
  });

  it("reject an unknown late-data policy, listing the three", () => {
    fails(
      () => win.rangeWindows(10).withLateDataPolicy("keep" as never),
      /unknown late-data policy "keep"; use one of "drop", "fire-per-message", "place-in-oldest-window"/,
    );
  });

  it("reject an aggregation missing a method, naming it", () => {
    const { combine: _c, ...noCombine } = {
      name: "x",
      initial: () => 0,
      update: () => 1,
      combine: () => 0,
      output: () => null,
    };
    fails(
      () => win.aggregation(noCombine as never),
      /aggregation\("x"\): combine must be a function, got undefined; add combine: \(a, b\)/,
    );
    fails(
      () => win.aggregation({ ...noCombine, combine: () => 0, name: "" } as never),
      /name must be a non-empty string/,
    );
    fails(
      () => win.rangeWindows(10).over(noCombine as never),
      /over\(aggregation\): aggregation\("x"\): combine must be a function/,
    );
    class NoOutput {
      initialAccumulator() {
        return 0;
      }
      update() {}
      combine() {
        return 0;
      }
    }
    fails(() => win.countWindows(2).over(NoOutput as never), /class NoOutput has no method output\(\)/);
    fails(() => win.countWindows(2).over(42 as never), /give an aggregation made by wallaroo.aggregation/);
  });

  it("accept an aggregation class (instantiated once) and a plain definition object", () => {
    class Sum {
      initialAccumulator() {
        return 0;
      }
      update(n: number, acc: number) {
        return acc + n;
      }
      combine(a: number, b: number) {
        return a + b;
      }
      output(_k: unknown, _w: unknown, acc: number) {
        return acc;
      }
    }
    const a = win.countWindows(2).over(Sum).aggregation;
    expect(a.name).toBe("Sum");
    expect(a.update(2, a.initial())).toBe(2);
    const b = win
      .countWindows(2)
      .over({ name: "plain", initial: () => 1, update: () => {}, combine: (x) => x, output: () => 1 });
    expect(b.aggregation.name).toBe("plain");
  });
});

describe("toWindows at build()", () => {
  it("makes a partitioned window step whose state is of class WindowState, placed like toStatePartition", () => {
    const spec = app(win.rangeWindows(10).over(count), byFirst, ["a", "b"]).build();
    expect(spec.pipelines[0]!.steps[0]).toMatchObject({ kind: "window", stateName: "windows:count" });
    expect(spec.states[0]).toMatchObject({ name: "windows:count", stateClass: WindowState });
    expect(spec.states[0]!.partition!.keys).toEqual(["a", "b"]);
    const plan = compilePlan(spec, 2);
    expect(plan.steps[0]).toMatchObject({ kind: "state", multi: true, name: "count", state: 0 });
    expect(plan.steps[0]!.windows!.kind).toBe("range");
  });

  it("without a partition function: one global set of windows", () => {
    const spec = app(win.countWindows(2).over(count)).build();
    expect(spec.states[0]!.partition).toBeNull();
  });

  it("rejects what is not windows, naming the fix", () => {
    fails(
      () => app(count).build(),
      /toWindows\(\) needs windows made by wallaroo.rangeWindows\(range\).over\(aggregation\).*wrap it with rangeWindows/,
    );
    fails(() => app(win.rangeWindows(10)).build(), /a window builder: finish it with .over\(aggregation\)/);
    fails(
      () => app(win.rangeWindows(10).over(count), () => "k").build(),
      /partition function .* must be made by wallaroo.partition/,
    );
    fails(
      () => app(win.rangeWindows(10).over(count), undefined, ["a"]).build(),
      /declared keys need a partition function/,
    );
  });

  it("rejects two different windows with one aggregation name", () => {
    const b = new ApplicationBuilder("app")
      .newPipeline("p", new TCPSourceConfig("127.0.0.1", 0, dec))
      .toWindows(win.rangeWindows(10).over(count), byFirst)
      .toWindows(win.rangeWindows(20).over(count) as never, byFirst)
      .toSink(new TCPSinkConfig("127.0.0.1", 7000, enc));
    fails(() => b.build(), /two different steps are named "count".*give each aggregation a unique name/);
  });

  it("validates the source's eventTime option", () => {
    const bad = (o: unknown) =>
      new ApplicationBuilder("app")
        .newPipeline("p", new TCPSourceConfig("127.0.0.1", 0, dec, o as never))
        .toSink(new TCPSinkConfig("127.0.0.1", 7000, enc));
    fails(
      () => bad({ eventTime: 5 }).build(),
      /eventTime must be a function from a decoded message to its event time in ms/,
    );
    fails(
      () => bad({ evenTime: () => 1 }).build(),
      /unknown option "evenTime"; the options are framing, eventTime, event_time/,
    );
    const fn = (s: string) => s.length;
    expect(bad({ event_time: fn }).build().pipelines[0]!.source).toMatchObject({ eventTime: fn });
  });
});
