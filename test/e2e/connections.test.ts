/**
 * Several source connections at once (engine as a CLI child process): every
 * message of every connection arrives exactly once, the per-key state saw each
 * key's messages one at a time (counts 1..n in output order), and within one
 * connection the messages of a key keep their order.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { frame, freePort, startCollector } from "../helpers/net.js";
import { checkTaggedOrder, fixture, parseTagged, startEngine, taggedMessages } from "../helpers/engine.js";

const CONNECTIONS = 4;
const PER_CONNECTION = 20_000;
const KEYS = 7;

/** Opens every connection first, then writes all of them at once, in slices, so they really overlap. */
async function sendConcurrently(port: number, payloads: Buffer[]): Promise<void> {
  const sockets = await Promise.all(
    payloads.map(
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(port, "127.0.0.1", () => resolve(s));
          s.on("error", reject);
        }),
    ),
  );
  const SLICE = 16 * 1024;
  await Promise.all(
    sockets.map(async (s, i) => {
      const data = payloads[i];
      for (let off = 0; off < data.length; off += SLICE) {
        // odd slice boundaries: frames are cut anywhere
        const end = Math.min(data.length, off + SLICE - 3);
        if (!s.write(data.subarray(off, end))) await new Promise((r) => s.once("drain", r));
        off = end - SLICE;
      }
      await new Promise<void>((r) => s.end(r));
    }),
  );
}

describe.each([2, 3])("%i workers", (workers) => {
  it(`${CONNECTIONS} concurrent connections, ${PER_CONNECTION} messages each`, async () => {
    const sink = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(fixture("e2e-app.ts"), [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      String(workers),
      "--mode",
      "tagged",
    ]);
    try {
      const conns = Array.from({ length: CONNECTIONS }, (_, i) => `c${i}`);
      const sent = conns.map((c) => taggedMessages(c, 0, PER_CONNECTION, KEYS));
      await sendConcurrently(
        inPort,
        sent.map((m) => frame(m)),
      );
      const total = CONNECTIONS * PER_CONNECTION;
      await sink.waitForLines(total, 30_000);
      const exit = await engine.stop("SIGTERM");
      expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });

      // every connection was accepted and bound to a worker
      const accepted = engine.logs().filter((l) => typeof l.msg === "string" && l.msg.startsWith("connection from"));
      expect(accepted.length).toBe(CONNECTIONS);
      expect(new Set(accepted.map((l) => l.worker)).size).toBe(Math.min(workers, CONNECTIONS));

      const outs = sink.lines().map(parseTagged);
      expect(outs.length).toBe(total);
      const seen = new Set(outs.map((o) => `${o.conn} ${o.seq} ${o.key}`));
      expect(seen.size).toBe(total);
      for (const m of sent.flat()) if (!seen.has(m)) expect.fail(`missing ${m}`);
      expect(checkTaggedOrder(outs)).toEqual([]);
    } finally {
      engine.kill();
      await sink.close();
    }
  });
});
