/**
 * Generated streams through the engine itself (worker threads, rings, marks frames, real
 * sockets): 1-3 workers, tumbling or sliding windows, events out of order within the delay,
 * over several connections one after the other, then silence. No event is late (each is
 * within the delay of the largest event time sent before it), so the windows are exactly
 * what a single-threaded reference computes: every window of every key with its events,
 * each key's windows in end order, the last ones closed by the idle timeout.
 * (Late events, pauses and idleness against a reference: test/testing/windows-generated.test.ts.)
 */
import { expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { fixture, startEngine } from "../helpers/engine.js";

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

const RANGE = 1000;
const DELAY = 300;

it.each([1, 2, 3])(
  "seed %i",
  async (seed) => {
    const rand = rng(seed * 104729);
    const workers = seed; // 1, 2, 3
    const slide = rand() < 0.5 ? RANGE : RANGE / 2;
    const keys = Array.from({ length: 2 + Math.floor(rand() * 6) }, (_, i) => `k${i}`);
    const events: { key: string; et: number; value: number }[] = [];
    let t = 0;
    for (let i = 0; i < 400; i++) {
      t += Math.floor(rand() * 40);
      events.push({ key: keys[Math.floor(rand() * keys.length)]!, et: t - Math.floor(rand() * (DELAY + 1)), value: i });
    }
    // the reference: every window holding an event, with its values
    const want = new Map<string, string[]>();
    for (const k of keys) {
      const windows = new Map<number, number[]>();
      for (const e of events.filter((x) => x.key === k)) {
        for (let s = Math.floor(e.et / slide) * slide; s > e.et - RANGE; s -= slide) {
          windows.set(s, [...(windows.get(s) ?? []), e.value]);
        }
      }
      const starts = [...windows.keys()].sort((a, b) => a - b);
      if (starts.length > 0)
        want.set(
          k,
          starts.map((s) => `${k} ${s} ${s + RANGE} ${windows.get(s)!.join(",")}`),
        );
    }
    const total = [...want.values()].reduce((n, l) => n + l.length, 0);

    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(fixture("windows-app.ts"), [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      String(workers),
      "--mode",
      slide === RANGE ? "tumbling" : "sliding",
      "--delay",
      String(DELAY),
      "--idle-timeout",
      "2",
    ]);
    try {
      const connections = 1 + Math.floor(rand() * 3);
      const per = Math.ceil(events.length / connections);
      for (let c = 0; c < connections; c++) {
        await sendBytes(inPort, frame(events.slice(c * per, (c + 1) * per).map((e) => `${e.key} ${e.et} ${e.value}`)));
      }
      const lines = await sink.waitForLines(total, 30_000);
      const have = new Map<string, string[]>();
      for (const l of lines) {
        const [k, s, e, vs] = l.split(" ");
        // values in event-value order (arrival order within a window may differ across workers)
        const sorted = vs!
          .split(",")
          .map(Number)
          .sort((a, b) => a - b)
          .join(",");
        have.set(k!, [...(have.get(k!) ?? []), `${k} ${s} ${e} ${sorted}`]);
      }
      expect(have).toEqual(want);
    } finally {
      await engine.stop();
      await sink.close();
    }
  },
  60_000,
);
