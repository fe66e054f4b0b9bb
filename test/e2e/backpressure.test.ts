/**
 * Backpressure end to end: the sink's receiver accepts the connection but does
 * not read, while a sender pushes hundreds of MB (1 KB to 64 KB messages)
 * through a passthrough pipeline. The engine (a CLI child process) must stop
 * reading its source, so its memory stays bounded (RSS sampled from
 * /proc/PID/status) and the sender ends up blocked with most of the data not
 * accepted. Then the receiver reads: every byte arrives, in order (SHA-256 of
 * the payloads sent = SHA-256 of the bytes received).
 */
import { createHash, randomBytes } from "node:crypto";
import net from "node:net";
import { expect, it } from "vitest";
import { freePort, startCollector } from "../helpers/net.js";
import { fixture, rssBytes, sleep, startEngine } from "../helpers/engine.js";

const TOTAL = 300 * 1024 * 1024;
const RSS_LIMIT = 400 * 1024 * 1024;
/** the sender counts as blocked once no 'drain' came for this long */
const BLOCKED_MS = 1500;

/** Deterministic message sizes in [1 KB, 64 KB]. */
function* sizes(): Generator<number> {
  let x = 0x9e3779b9;
  for (;;) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    yield 1024 + (x % (63 * 1024 + 1));
  }
}

it("a receiver that does not read blocks the sender with bounded engine memory; then every byte arrives in order", async () => {
  const block = randomBytes(128 * 1024);
  const received = createHash("sha256");
  const sink = await startCollector(0, { keep: false, onData: (d) => received.update(d) });
  sink.pause(); // accepts the engine's connection, never reads
  const inPort = await freePort();
  const engine = await startEngine(fixture("e2e-app.ts"), [
    "--in",
    `127.0.0.1:${inPort}`,
    "--out",
    `127.0.0.1:${sink.port}`,
    "--workers",
    "2",
    "--mode",
    "passthrough",
  ]);
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(inPort, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });
  try {
    const sent = createHash("sha256");
    const size = sizes();
    let seq = 0;
    let offered = 0; // payload bytes handed to socket.write
    let maxRss = 0;
    const sample = () => {
      maxRss = Math.max(maxRss, rssBytes(engine.pid));
    };
    const sampler = setInterval(sample, 50);

    /** Writes until TOTAL or, with `untilBlocked`, until no drain came for BLOCKED_MS. Returns true if it blocked. */
    const pump = async (untilBlocked: boolean): Promise<boolean> => {
      while (offered < TOTAL) {
        const len = Math.min(size.next().value as number, TOTAL - offered);
        const msg = Buffer.allocUnsafe(4 + len);
        msg.writeUInt32BE(len, 0);
        const from = (seq * 7919) % (block.length - len + 1);
        block.copy(msg, 4, from, from + len);
        if (len >= 8) msg.writeUInt32BE(seq, 4); // a counter inside every payload
        seq++;
        sent.update(msg.subarray(4));
        offered += len;
        if (!socket.write(msg)) {
          const drained = await Promise.race([
            new Promise<boolean>((r) => socket.once("drain", () => r(true))),
            sleep(untilBlocked ? BLOCKED_MS : 60_000).then(() => false),
          ]);
          if (!drained) {
            if (untilBlocked) return true;
            throw new Error(`the sender stayed blocked with the receiver reading (${offered} bytes offered)`);
          }
        }
      }
      return false;
    };

    const blocked = await pump(true);
    // The sender is blocked: most of the data was not accepted anywhere.
    expect(blocked, "the sender never blocked: the engine took all the data while the receiver did not read").toBe(
      true,
    );
    expect(offered).toBeLessThan(TOTAL / 2);
    // Keep it blocked a while longer and watch the engine's memory.
    const acceptedWhileBlocked = offered;
    for (let i = 0; i < 20; i++) {
      sample();
      await sleep(50);
    }
    expect(offered).toBe(acceptedWhileBlocked);
    expect(sink.received()).toBeLessThan(TOTAL / 2);
    expect(maxRss).toBeGreaterThan(0);
    expect(maxRss, `engine RSS ${(maxRss / 2 ** 20).toFixed(0)} MB`).toBeLessThan(RSS_LIMIT);

    // The receiver reads: everything flows, the sender finishes.
    sink.resume();
    await pump(false);
    await new Promise<void>((r) => socket.end(r));
    await sink.waitForBytes(TOTAL, 60_000);
    clearInterval(sampler);
    expect(maxRss, `engine RSS ${(maxRss / 2 ** 20).toFixed(0)} MB`).toBeLessThan(RSS_LIMIT);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
    expect(sink.received()).toBe(TOTAL);
    expect(received.digest("hex")).toBe(sent.digest("hex"));
  } finally {
    socket.destroy();
    engine.kill();
    await sink.close();
  }
}, 90_000);
