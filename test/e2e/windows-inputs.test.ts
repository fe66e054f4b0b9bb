/**
 * Watermarks per source connection (engine as a CLI child process, real sockets, 1 worker):
 * two connections land on the one worker; a slow one holds the watermark back while a fast
 * one runs ahead, so the slow one's events are not late. (When an input was one source as
 * read by one worker, the fast connection moved the shared mark and the slow one's next
 * event was dropped as late.)
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { frame, sendBytes, startCollector } from "../helpers/net.js";
import { fixture, startEngine } from "../helpers/engine.js";

const isStats = (l: { stats?: unknown }) => l.stats !== undefined;

async function connect(port: number): Promise<net.Socket> {
  const s = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => {
    s.once("connect", resolve);
    s.once("error", reject);
  });
  return s;
}

const write = (s: net.Socket, data: Buffer) => new Promise<void>((r) => s.write(data, () => r()));

describe("watermarks per connection", () => {
  it("a slow connection holds the watermark back while a fast one on the same worker runs ahead", async () => {
    const sink = await startCollector();
    const engine = await startEngine(fixture("windows-app.ts"), [
      "--in",
      "127.0.0.1:0",
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "1",
      // long enough that the slow connection stays live through the test
      "--idle-timeout",
      "60",
      "--stats-interval",
      "0.2",
    ]);
    let slow: net.Socket | null = null;
    try {
      const running = engine.logs().find((l) => / running on /.test(String(l.msg)))!;
      const port = Object.values(running.sourcePorts as Record<string, number>)[0]!;
      slow = await connect(port);
      await write(slow, frame(["a 100 1"]));
      await engine.waitForLog((l) => isStats(l) && /total in 1,/.test(String(l.msg)));
      // The fast connection runs 5 s of event time ahead, on the same (only) worker.
      await sendBytes(port, frame(["b 5100 2", "b 6200 3"]));
      const counted = await engine.waitForLog((l) => isStats(l) && /total in 3,/.test(String(l.msg)));
      // An interval later with nothing in: many window ticks have passed since the fast events.
      await engine.waitForLog((l) => isStats(l) && l.idle === true, 20_000, engine.lines.indexOf(counted) + 1);
      expect(sink.lines()).toEqual([]); // the slow connection (at 100) holds every window open
      await write(slow, frame(["a 900 4"])); // behind the fast connection, not behind the watermark
      await write(slow, frame(["a 7000 5"])); // the slow connection catches up: watermark 6200
      const lines = await sink.waitForLines(2);
      expect([...lines].sort()).toEqual(["a 0 1000 1,4", "b 5000 6000 2"]);
      expect(engine.lines.some((l) => /late event/.test(String(l.msg)))).toBe(false);
    } finally {
      slow?.destroy();
      await engine.stop();
      await sink.close();
    }
  }, 60_000);
});
