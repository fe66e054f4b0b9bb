/**
 * Windows end to end (engine as a CLI child process, real sockets on loopback, 1 and 2
 * workers): every event lands in exactly one tumbling window of its key, each key's
 * windows come out in end order, and the last window of a stream that goes quiet closes
 * by the idle timeout. A late event is counted (stats line), logged and dead-lettered.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { fixture, startEngine } from "../helpers/engine.js";

interface Out {
  key: string;
  start: number;
  end: number;
  values: number[];
}
const parse = (l: string): Out => {
  const [key, start, end, values] = l.split(" ");
  return { key: key!, start: Number(start), end: Number(end), values: values ? values.split(",").map(Number) : [] };
};

async function start(workers: number, extra: string[]) {
  const sink = await startCollector();
  const inPort = await freePort();
  const engine = await startEngine(fixture("windows-app.ts"), [
    "--in",
    `127.0.0.1:${inPort}`,
    "--out",
    `127.0.0.1:${sink.port}`,
    "--workers",
    String(workers),
    "--idle-timeout",
    "0.3",
    ...extra,
  ]);
  return { sink, inPort, engine };
}

describe.each([1, 2])("tumbling windows on %i worker(s)", (workers) => {
  it("every event in exactly one window of its key, in end order, and a quiet stream closes its last window", async () => {
    const { sink, inPort, engine } = await start(workers, ["--delay", "200"]);
    try {
      const keys = ["a", "b", "c", "d", "e", "f", "g"];
      const events: string[] = [];
      // event times 0..4990 in steps of 10, each shuffled within 150 ms (less than the delay)
      for (let i = 0; i < 500; i++) {
        const ts = Math.max(0, i * 10 - ((i * 7919) % 15) * 10);
        events.push(`${keys[i % keys.length]} ${ts} ${i}`);
      }
      await sendBytes(inPort, frame(events));
      // Every window holds at least one event, so 5 windows per key; the last ones ([4000, 5000))
      // only close because every input went idle (nothing is sent after the burst).
      const lines = await sink.waitForLines(5 * keys.length, 20_000);
      const outs = lines.map(parse);
      const seen = outs.flatMap((o) => o.values).sort((x, y) => x - y);
      expect(seen).toEqual(events.map((_, i) => i));
      for (const o of outs) {
        expect(o.end - o.start).toBe(1000);
        for (const v of o.values) {
          const ts = Number(events[v]!.split(" ")[1]);
          expect(ts >= o.start && ts < o.end).toBe(true);
          expect(events[v]!.startsWith(`${o.key} `)).toBe(true);
        }
      }
      for (const k of keys) {
        const ends = outs.filter((o) => o.key === k).map((o) => o.end);
        expect(ends).toEqual([1000, 2000, 3000, 4000, 5000]);
      }
    } finally {
      await engine.stop();
      await sink.close();
    }
  }, 60_000);
});

it("a late event is counted in the stats line, logged and written to --dead-letter with its value (2 workers)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wallaroo-late-"));
  const { sink, inPort, engine } = await start(2, ["--dead-letter", dir, "--stats-interval", "0.2"]);
  try {
    await sendBytes(inPort, frame(["a 100 1", "a 5100 2"]));
    // [0, 1000) closes once the watermark (5100, no delay) passes it
    await sink.waitForLines(1);
    expect(sink.lines()[0]).toBe("a 0 1000 1");
    await sendBytes(inPort, frame(["a 200 3"]));
    await engine.waitForLog((l) => typeof l.msg === "string" && /late event in computation "collect"/.test(l.msg));
    await engine.waitForLog(
      (l) => typeof l.msg === "string" && / \| late events 1$/.test(l.msg) && (l.stats as { late: number }).late === 1,
    );
    // the last window still comes out (by the idle timeout), without the late event
    await sink.waitForLines(2);
    await engine.stop();
    const records = readdirSync(dir)
      .filter((f) => f.endsWith(".jsonl"))
      .flatMap((f) => readFileSync(join(dir, f), "utf8").split("\n").filter(Boolean))
      .map((l) => JSON.parse(l) as { error: string; value: { key: string; ts: number; value: number } });
    expect(records).toHaveLength(1);
    expect(records[0]!.error).toMatch(/late event: event time 200 is behind the watermark 5100/);
    expect(records[0]!.value).toMatchObject({ key: "a", ts: 200, value: 3 });
    expect(sink.lines()).toEqual(["a 0 1000 1", "a 5000 6000 2"]);
  } finally {
    await engine.stop();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

it("windows still open at a stop are counted and logged, not dropped silently (2 workers)", async () => {
  const { sink, inPort, engine } = await start(2, ["--idle-timeout", "60"]);
  try {
    await sendBytes(inPort, frame(["a 100 1", "a 1500 2", "b 1600 3"]));
    await sink.waitForLines(1);
    expect(sink.lines()).toEqual(["a 0 1000 1"]);
    await engine.stop();
    const line = engine.lines.find((l) => typeof l.msg === "string" && /still open at the stop/.test(l.msg));
    expect(line).toMatchObject({ openWindows: 2, keys: 2 });
    expect(line!.msg).toMatch(/without --resilience-dir they are lost/);
  } finally {
    await engine.stop();
    await sink.close();
  }
}, 60_000);
