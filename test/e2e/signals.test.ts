/**
 * SIGTERM and SIGINT while messages are in flight (engine as a CLI child
 * process): the sources stop reading, every message the engine had read is
 * processed and reaches the sink, and the engine exits 0.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import {
  checkTaggedOrder,
  fixture,
  parseTagged,
  startEngine,
  taggedMessages,
  type LogLine,
} from "../helpers/engine.js";

const APP = fixture("e2e-app.ts");
const msgOf = (l: LogLine) => (typeof l.msg === "string" ? l.msg : "");
const closedAfter = (l: LogLine) => /^connection \S+ closed after \d+ messages$/.test(msgOf(l));

describe.each(["SIGTERM", "SIGINT"] as const)("%s", (signal) => {
  it("with the pipeline still holding messages: all of them arrive, exit 0", async () => {
    const N = 6000;
    const sink = await startCollector();
    const inPort = await freePort();
    // 300 µs of busy work per message, all of one connection on one worker: about 2 s of work queued
    const engine = await startEngine(APP, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "2",
      "--mode",
      "slow",
      "--slow-us",
      "300",
    ]);
    try {
      await sendBytes(inPort, frame(taggedMessages("s", 0, N, 4)));
      // the source has read every message (they are in the engine's rings), the sender is gone
      const closed = await engine.waitForLog(closedAfter);
      expect(closed.messages).toBe(N);
      const atSignal = sink.lines().length;
      const exit = await engine.stop(signal);
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
      expect(engine.stderr()).toContain(`${signal}: draining`);
      expect(engine.stderr()).not.toContain("did not reach the sinks");
      // the test is about in-flight messages: most were still queued when the signal came
      expect(atSignal).toBeLessThan(N);
      const outs = sink.lines().map(parseTagged);
      expect(outs.map((o) => o.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, i) => i));
      expect(checkTaggedOrder(outs)).toEqual([]);
    } finally {
      engine.kill();
      await sink.close();
    }
  });

  it("while a sender is still sending: what the engine read arrives, nothing else, exit 0", async () => {
    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(APP, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "2",
      "--mode",
      "tagged",
    ]);
    const socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(inPort, "127.0.0.1", () => resolve(s));
      s.on("error", reject);
    });
    let stopSending = false;
    socket.on("error", () => {
      stopSending = true;
    });
    socket.on("close", () => {
      stopSending = true;
    });
    try {
      // an endless stream of messages, 1000 per write
      const sending = (async () => {
        for (let seq = 0; !stopSending; seq += 1000) {
          if (!socket.write(frame(taggedMessages("s", seq, seq + 1000, 5)))) {
            await new Promise<void>((r) => {
              socket.once("drain", r);
              socket.once("close", r);
            });
          }
        }
      })();
      await sink.waitForLines(20_000, 20_000);
      const exit = await engine.stop(signal);
      stopSending = true;
      await sending;
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
      // how many messages the engine took from the connection before it stopped reading
      const closed = engine.logs().find(closedAfter);
      expect(closed, engine.stderr().slice(-3000)).toBeDefined();
      const read = closed!.messages as number;
      expect(read).toBeGreaterThanOrEqual(20_000);
      const outs = sink.lines().map(parseTagged);
      expect(outs.length).toBe(read);
      expect(outs.map((o) => o.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: read }, (_, i) => i));
      expect(checkTaggedOrder(outs)).toEqual([]);
    } finally {
      socket.destroy();
      engine.kill();
      await sink.close();
    }
  });
});
