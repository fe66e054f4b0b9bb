/**
 * Backpressure stays per path (engine as a CLI child process, 2 workers, real
 * sockets on loopback): pipeline "stalled" has a sink whose receiver accepts the
 * connection and never reads, and a sender pushing into it until the engine stops
 * reading its source; pipeline "free" has its own source and sink. While the
 * stalled sink stays stalled, every message of the free pipeline must still be
 * delivered (a delivery count, not a time), the stall must be logged with the
 * sink's address and the bytes queued, and once the receiver reads, every message
 * of the stalled pipeline arrives too. The stalled pipeline's messages cross
 * between the workers (state partition), so the peer rings are exercised; the
 * second case gives the free pipeline a state step as well.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { fixture, sleep, startEngine } from "../helpers/engine.js";

/** the sender counts as blocked once no 'drain' came for this long */
const BLOCKED_MS = 1500;
const LIMIT = 400 * 1024 * 1024;
const FREE_MESSAGES = 20_000;

async function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });
}

describe.each([
  ["a stateless free pipeline", [] as string[]],
  ["a free pipeline whose messages cross workers too", ["--free-state"]],
])("one stalled sink, %s", (_name, extra) => {
  it("the other pipeline delivers every message while the stalled sink does not read; then the stalled one catches up", async () => {
    const stalledSink = await startCollector(0, { keep: false });
    stalledSink.pause();
    const freeSink = await startCollector();
    const [stalledIn, freeIn] = [await freePort(), await freePort()];
    const engine = await startEngine(fixture("two-paths.ts"), [
      "--in",
      `127.0.0.1:${stalledIn},127.0.0.1:${freeIn}`,
      "--out",
      `127.0.0.1:${stalledSink.port},127.0.0.1:${freeSink.port}`,
      "--workers",
      "2",
      ...extra,
    ]);
    const socket = await connect(stalledIn);
    try {
      // Push into the stalled pipeline until the engine stops reading it.
      const filler = "x".repeat(1000);
      let sent = 0;
      let sentBytes = 0;
      let blocked = false;
      while (sentBytes < LIMIT && !blocked) {
        const batch = frame(Array.from({ length: 64 }, (_, i) => `k${(sent + i) % 16} ${sent + i} ${filler}`));
        sent += 64;
        sentBytes += batch.length;
        if (!socket.write(batch)) {
          blocked = !(await Promise.race([
            new Promise<boolean>((r) => socket.once("drain", () => r(true))),
            sleep(BLOCKED_MS).then(() => false),
          ]));
        }
      }
      expect(blocked, "the stalled pipeline's sender never blocked").toBe(true);
      const stalledLog = await engine.waitForLog(
        (l) =>
          typeof l.msg === "string" && l.msg.includes(`sink stalled -> tcp 127.0.0.1:${stalledSink.port} is backed up`),
      );
      expect(stalledLog.level).toBe(40);
      expect(stalledLog.queuedBytes as number).toBeGreaterThan(0);
      expect(stalledLog.msg).toContain('pipeline(s) "stalled" stop reading their sources');
      const before = stalledSink.received();

      // The free pipeline still delivers everything, end to end.
      await sendBytes(freeIn, frame(Array.from({ length: FREE_MESSAGES }, (_, i) => String(i))));
      await freeSink.waitForLines(FREE_MESSAGES, 30_000);
      const got = freeSink
        .lines()
        .map(Number)
        .sort((a, b) => a - b);
      expect(got).toEqual(Array.from({ length: FREE_MESSAGES }, (_, i) => i));
      // ... while the stalled sink's receiver still did not read a byte
      expect(stalledSink.received()).toBe(before);
      // the stall is logged once per episode, by one worker
      expect(engine.logs().filter((l) => typeof l.msg === "string" && l.msg.includes("is backed up")).length).toBe(1);

      // The receiver reads: everything sent into the stalled pipeline arrives.
      stalledSink.resume();
      await new Promise<void>((r) => socket.end(r));
      const stalledBytes =
        sent * (filler.length + 1) +
        Array.from({ length: sent }, (_, i) => `k${i % 16} ${i} `.length).reduce((a, b) => a + b, 0);
      await stalledSink.waitForBytes(stalledBytes, 60_000);
      await engine.waitForLog(
        (l) =>
          typeof l.msg === "string" &&
          l.msg.includes(`sink stalled -> tcp 127.0.0.1:${stalledSink.port} takes output again`),
      );
      const exit = await engine.stop("SIGTERM");
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
      expect(stalledSink.received()).toBe(stalledBytes);
    } finally {
      socket.destroy();
      engine.kill();
      await stalledSink.close();
      await freeSink.close();
    }
  }, 120_000);
});
