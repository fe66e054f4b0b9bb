/**
 * The library's stop() and done (engine in this process, real threads and
 * sockets): they resolve to a StopReport when nothing was lost, and reject with
 * an EngineStopError carrying the report (what was not delivered, per sink) when
 * output was lost, within the drain timeout.
 */
import { describe, expect, it } from "vitest";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";

process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication, EngineStopError } = await import("../../dist/index.js");
const APP = fileURLToPath(new URL("../fixtures/e2e-app.ts", import.meta.url));

describe("stop() and done", () => {
  it("resolve to a report saying nothing was lost after a complete drain", async () => {
    const sink = await startCollector();
    const inPort = await freePort();
    const app = await runApplication({
      module: APP,
      args: ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${sink.port}`, "--mode", "tagged"],
      workers: 2,
      statsInterval: 0,
    });
    try {
      await sendBytes(inPort, frame(["s 0 k0", "s 1 k1", "s 2 k0"]));
      await sink.waitForLines(3);
      const report = await app.stop();
      expect(report).toMatchObject({
        lost: false,
        reason: "requested",
        drained: true,
        undelivered: {},
        unprocessed: {},
        finalCheckpoint: "off",
      });
      await expect(app.done).resolves.toEqual(report);
    } finally {
      await app.stop().catch(() => {});
      await sink.close();
    }
  }, 60_000);

  it("reject with an EngineStopError counting the undelivered output when the receiver does not read", async () => {
    const sink = await startCollector(0, { keep: false });
    sink.pause();
    const inPort = await freePort();
    const app = await runApplication({
      module: APP,
      args: ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${sink.port}`, "--mode", "passthrough"],
      workers: 2,
      statsInterval: 0,
      ringBytes: 65536,
      drainTimeoutMs: 1000,
    });
    const socket = net.connect(inPort, "127.0.0.1");
    socket.on("error", () => {});
    try {
      const payload = frame(Array.from({ length: 64 }, () => Buffer.alloc(16 * 1024, 0x62)));
      for (let i = 0; i < 32; i++) socket.write(payload);
      await new Promise((r) => setTimeout(r, 1500));
      const err = await app.stop().then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EngineStopError);
      const report = (err as InstanceType<typeof EngineStopError>).report;
      expect(report.lost).toBe(true);
      expect(report.drained).toBe(false);
      expect(report.failure).toBeUndefined();
      const [label] = Object.keys(report.undelivered);
      expect(label).toMatch(/^passthrough -> tcp /);
      expect(report.undelivered[label]).toBeGreaterThan(0);
      // 16 KiB outputs: the byte count is exact, the output count follows from it
      expect(report.undeliveredBytes[label]).toBeGreaterThanOrEqual(16 * 1024 * report.undelivered[label] - 16 * 1024);
      await expect(app.done).rejects.toBe(err);
    } finally {
      socket.destroy();
      await sink.close();
    }
  }, 60_000);
});
