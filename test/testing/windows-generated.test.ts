/**
 * Generated test of windows: random event streams (out of order within the delay, events
 * behind it, bursts, pauses shorter and longer than the idle timeout, a final silence) on
 * 1-3 simulated workers, tumbling, sliding and session windows, each late-data policy, against a
 * single-threaded reference written here from the documented semantics:
 * - an input is one simulated worker's share of the source (pipeInput calls go round-robin);
 *   its mark is the largest event time it gave and the time it last spoke;
 * - the watermark moves after each pipeInput and advanceTime: the minimum mark over the
 *   inputs that spoke less than the idle timeout ago, minus the delay; when none did, the
 *   largest mark plus the time since the last input went idle; it never goes back;
 * - an event is late when the last window holding it ends at or before the watermark (a
 *   session: when its own session [t, t + gap) would);
 * - a window fires when the watermark reaches its end, with the events that arrived while
 *   it was open; each key's windows come out in end order.
 * The driver runs the engine's own step runner, serialization between workers and marks frames.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { createTestDriver } from "wallaroo/testing";

const APP = fileURLToPath(new URL("../fixtures/windows-app.ts", import.meta.url));
const RANGE = 1000;
/** the fixture's session gap */
const GAP = 300;
const IDLE = 1000;

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Policy = "drop" | "fire-per-message" | "place-in-oldest-window";
interface Ev {
  key: string;
  et: number;
  value: number;
}
type Step = { batch: Ev[] } | { advance: number };

class Reference {
  private readonly marks: { max: number; last: number }[];
  private wm = -Infinity;
  private now = 0;
  private calls = 0;
  /** counted events: their (effective) event time and the watermark when they arrived */
  private readonly held = new Map<string, { et: number; value: number; wmAt: number }[]>();
  /** session mode (slide 0): each key's open sessions, by start */
  private readonly sessions = new Map<string, { start: number; end: number; values: number[] }[]>();
  readonly out = new Map<string, string[]>();

  constructor(
    private readonly workers: number,
    private readonly slide: number,
    private readonly delay: number,
    private readonly policy: Policy,
  ) {
    this.marks = Array.from({ length: workers }, () => ({ max: -Infinity, last: -Infinity }));
  }

  private emit(key: string, start: number, values: number[], end = start + RANGE): void {
    if (!this.out.has(key)) this.out.set(key, []);
    this.out.get(key)!.push(`${key} ${start} ${end} ${[...values].sort((a, b) => a - b).join(",")}`);
  }

  /** Sessions: an event less than GAP after (or before) a session's events joins it; sessions it bridges merge. */
  private session(e: Ev): void {
    const open = this.sessions.get(e.key) ?? [];
    this.sessions.set(e.key, open);
    if (e.et + GAP <= this.wm) {
      if (this.policy === "fire-per-message") this.emit(e.key, e.et, [e.value], e.et + GAP);
      else if (this.policy === "place-in-oldest-window" && open.length > 0) open[0]!.values.push(e.value);
      return;
    }
    let merged = { start: e.et, end: e.et + GAP, values: [e.value] };
    const rest = [];
    for (const x of open) {
      if (x.start < merged.end && merged.start < x.end) {
        merged = {
          start: Math.min(x.start, merged.start),
          end: Math.max(x.end, merged.end),
          values: [...x.values, ...merged.values],
        };
      } else rest.push(x);
    }
    this.sessions.set(
      e.key,
      [...rest, merged].sort((a, b) => a.start - b.start),
    );
  }

  batch(events: Ev[]): void {
    const input = this.marks[this.calls++ % this.workers]!;
    for (const e of events) {
      input.max = Math.max(input.max, e.et);
      input.last = this.now;
      if (this.slide === 0) {
        this.session(e);
        continue;
      }
      const lastStart = Math.floor(e.et / this.slide) * this.slide;
      let et = e.et;
      if (lastStart + RANGE <= this.wm) {
        if (this.policy === "drop") continue;
        if (this.policy === "fire-per-message") {
          this.emit(e.key, lastStart, [e.value]);
          continue;
        }
        et = Math.floor((this.wm - RANGE) / this.slide) * this.slide + this.slide; // the oldest open window
      }
      if (!this.held.has(e.key)) this.held.set(e.key, []);
      this.held.get(e.key)!.push({ et, value: e.value, wmAt: this.wm });
    }
    this.tick();
  }

  advance(ms: number): void {
    this.now += ms;
    this.tick();
  }

  private tick(): void {
    const seen = this.marks.filter((m) => m.max > -Infinity);
    const live = seen.filter((m) => this.now - m.last < IDLE);
    let wm = -Infinity;
    if (live.length > 0) wm = Math.min(...live.map((m) => m.max)) - this.delay;
    else if (seen.length > 0) {
      const idleSince = Math.max(...seen.map((m) => m.last)) + IDLE;
      wm = Math.max(...seen.map((m) => m.max)) + Math.max(0, this.now - idleSince);
    }
    if (!(wm > this.wm)) return;
    const from = this.wm;
    this.wm = wm;
    for (const [key, open] of [...this.sessions].sort(([a], [b]) => (a < b ? -1 : 1))) {
      for (const x of open.filter((y) => y.end <= wm)) this.emit(key, x.start, x.values, x.end);
      this.sessions.set(
        key,
        open.filter((y) => y.end > wm),
      );
    }
    for (const [key, events] of [...this.held].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const windows = new Map<number, number[]>();
      for (const e of events) {
        for (let s = Math.floor(e.et / this.slide) * this.slide; s > e.et - RANGE; s -= this.slide) {
          const end = s + RANGE;
          if (end > from && end <= wm && end > e.wmAt) windows.set(s, [...(windows.get(s) ?? []), e.value]);
        }
      }
      for (const s of [...windows.keys()].sort((a, b) => a - b)) this.emit(key, s, windows.get(s)!);
    }
  }
}

function generate(rand: () => number, delay: number): Step[] {
  const steps: Step[] = [];
  let t = 10_000;
  let value = 0;
  const n = 30 + Math.floor(rand() * 40);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.6) {
      const batch: Ev[] = [];
      const m = 1 + Math.floor(rand() * 15);
      for (let j = 0; j < m; j++) {
        t += Math.floor(rand() * 150);
        const late = rand() < 0.1;
        const et = late ? t - Math.floor(rand() * 2500) : t - Math.floor(rand() * (delay + 1));
        batch.push({ key: `k${Math.floor(rand() * 5)}`, et, value: value++ });
      }
      steps.push({ batch });
    } else if (r < 0.85) steps.push({ advance: Math.floor(rand() * 400) });
    else steps.push({ advance: 800 + Math.floor(rand() * 2500) }); // a pause: inputs go idle
  }
  steps.push({ advance: IDLE + 5 * RANGE }); // a final silence closes every window
  return steps;
}

const byKey = (lines: string[]) => {
  const m = new Map<string, string[]>();
  for (const l of lines) {
    const [key, start, end, values] = l.split(" ");
    const sorted = (values ?? "")
      .split(",")
      .filter(Boolean)
      .map(Number)
      .sort((a, b) => a - b);
    if (!m.has(key!)) m.set(key!, []);
    m.get(key!)!.push(`${key} ${start} ${end} ${sorted.join(",")}`);
  }
  return m;
};

const CASES = Array.from({ length: 30 }, (_, i) => i + 1);

describe("windows against a single-threaded reference", () => {
  it.each(CASES)("seed %i", async (seed) => {
    const rand = rng(seed * 7919);
    const workers = 1 + (seed % 3);
    const r = rand();
    const mode = r < 0.35 ? "tumbling" : r < 0.7 ? "sliding" : "session";
    const delay = rand() < 0.5 ? 0 : 300;
    const policy = (["drop", "fire-per-message", "place-in-oldest-window"] as const)[Math.floor(rand() * 3)]!;
    const steps = generate(rand, delay);
    const args = ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2", "--delay", String(delay), "--late", policy];
    args.push("--mode", mode);
    const d = await createTestDriver({ module: APP, args, workers, idleTimeout: IDLE / 1000 });
    const ref = new Reference(workers, mode === "sliding" ? RANGE / 2 : mode === "tumbling" ? RANGE : 0, delay, policy);
    const got: string[] = [];
    try {
      for (const s of steps) {
        if ("batch" in s) {
          await d.pipeInput("events", ...s.batch.map((e) => `${e.key} ${e.et} ${e.value}`));
          ref.batch(s.batch);
        } else {
          await d.advanceTime(s.advance);
          ref.advance(s.advance);
        }
        got.push(...d.readOutput().map((b) => b.toString().trimEnd()));
      }
    } finally {
      await d.close();
    }
    const want = new Map([...ref.out].sort(([a], [b]) => (a < b ? -1 : 1)));
    const have = new Map([...byKey(got)].sort(([a], [b]) => (a < b ? -1 : 1)));
    const diff = [...want].map(([k, v]) => {
      const h = have.get(k) ?? [];
      const at = v.findIndex((x, n) => x !== h[n]);
      return at >= 0 || h.length !== v.length ? `${k} from #${at}: want ${v[at]}, have ${h[at]}` : "";
    });
    expect(have, `workers ${workers}, ${mode}, delay ${delay}, ${policy}; ${diff.filter(Boolean)[0] ?? ""}`).toEqual(
      want,
    );
  });
});
