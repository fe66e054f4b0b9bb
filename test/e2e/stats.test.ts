/**
 * The stats line: one line per interval while messages flow, a single "idle" line once
 * nothing moves, and lines again with the next message (an engine waiting for input
 * does not fill its log).
 */
import { describe, expect, it } from "vitest";
import { example, sleep, startEngine, type LogLine } from "../helpers/engine.js";
import { frame, sendBytes, startCollector } from "../helpers/net.js";

const isStats = (l: LogLine) => l.stats !== undefined;

describe("stats lines", () => {
  it("go quiet after one idle line and resume with traffic", async () => {
    const sink = await startCollector();
    const engine = await startEngine(example("reverse"), [
      "--in",
      "127.0.0.1:0",
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "1",
      "--stats-interval",
      "0.5",
    ]);
    try {
      const running = engine.logs().find((l) => / running on /.test(String(l.msg)))!;
      const port = Object.values(running.sourcePorts as Record<string, number>)[0]!;
      await sendBytes(port, frame(["hello"]));
      await sink.waitForLines(1);
      const counted = await engine.waitForLog((l) => isStats(l) && /total in 1, out 1/.test(String(l.msg)), 15_000);
      const idle = await engine.waitForLog(
        (l) => isStats(l) && l.idle === true,
        15_000,
        engine.lines.indexOf(counted) + 1,
      );
      const idleAt = engine.lines.indexOf(idle);
      await sleep(2500); // five intervals with nothing in or out
      expect(engine.lines.slice(idleAt + 1).filter(isStats)).toEqual([]);
      await sendBytes(port, frame(["again"]));
      await sink.waitForLines(2);
      const back = await engine.waitForLog((l) => isStats(l) && l.idle !== true, 15_000, idleAt + 1);
      expect(String(back.msg)).toMatch(/total in 2, out 2/);
    } finally {
      engine.kill();
      await sink.close();
    }
  });
});
