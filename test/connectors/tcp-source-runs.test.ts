/**
 * The TCP source (run in this thread, reading a real socket on loopback, writing a real
 * ring that the test reads as a worker would): a frame cut across socket reads is
 * completed from its pieces and sent, with the whole frames after it in the same read,
 * as one run. Every ring message must be whole frames, and all of them together exactly
 * the bytes sent, in order, whatever the cuts.
 */
import net from "node:net";
import { MessageChannel } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { runTcpSource } from "../../dist/connectors/tcp/source.js";
import { ChannelReader } from "../../dist/transport/channel.js";
import { RingReader, createRing } from "../../dist/transport/ring.js";
import { createDoorbell } from "../../dist/transport/doorbell.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** frame i: u32 BE payload length, then a payload of varying length whose bytes depend on i */
function frame(i: number): Buffer {
  const len = i % 11 === 3 ? 0 : 1 + ((i * 7919) % 300);
  const b = Buffer.allocUnsafe(4 + len);
  b.writeUInt32BE(len, 0);
  for (let k = 0; k < len; k++) b[4 + k] = (i * 31 + k) & 255;
  return b;
}

/** the frames of one ring message; throws if it does not hold whole frames */
function framesOf(m: Buffer): number {
  let pos = 0;
  let n = 0;
  while (pos < m.length) {
    if (m.length - pos < 4) throw new Error(`a ring message ends inside a header (${m.length - pos} bytes)`);
    pos += 4 + m.readUInt32BE(pos);
    n++;
  }
  if (pos !== m.length) throw new Error("a ring message ends inside a frame");
  return n;
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

async function startSource(maxFrameBytes = 1 << 20) {
  const ring = createRing(1 << 20);
  const { port1, port2 } = new MessageChannel();
  runTcpSource(
    {
      kind: "tcp-source",
      sourceId: 0,
      pipeline: "test",
      host: "127.0.0.1",
      port: 0,
      headerLength: 4,
      lengthFmt: ">I",
      maxFrameBytes,
      rings: [ring],
      workerBells: [createDoorbell()],
    },
    port1,
  );
  const port = await new Promise<number>((resolve) => {
    port2.on("message", (m: { type: string; port?: number }) => {
      if (m.type === "listening") resolve(m.port!);
    });
  });
  const messages: Buffer[] = [];
  const reader = new ChannelReader(new RingReader(ring), (_tag, bytes, off, len) => {
    messages.push(Buffer.from(bytes.subarray(off, off + len)));
  });
  const poll = setInterval(() => reader.read(1 << 20), 1);
  cleanup.push(() => {
    clearInterval(poll);
    port2.postMessage({ type: "stop" });
    setTimeout(() => {
      port1.close();
      port2.close();
    }, 50);
  });
  return { port, messages, drain: () => reader.read(1 << 20) };
}

async function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.setNoDelay(true);
    s.on("error", reject);
  });
}

async function until(cond: () => boolean, what: string) {
  const end = Date.now() + 20000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe("TCP source runs", () => {
  it("frames cut anywhere across reads arrive as runs of whole frames, every byte in order", async () => {
    const src = await startSource();
    const s = await connect(src.port);
    const frames = Array.from({ length: 3000 }, (_, i) => frame(i));
    const all = Buffer.concat(frames);
    // Cuts inside headers, inside payloads and on boundaries; a pause after each write so
    // that each piece is most likely a read of its own.
    let seed = 12345;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let pos = 0; pos < all.length; ) {
      const next = Math.min(all.length, pos + 1 + rand(pos % 3 === 0 ? 7 : 2000));
      s.write(all.subarray(pos, next));
      pos = next;
      await sleep(rand(4) === 0 ? 2 : 0);
    }
    await until(() => src.messages.reduce((n, m) => n + m.length, 0) >= all.length, "every byte in the ring");
    src.drain();
    const got = Buffer.concat(src.messages);
    expect(got.length).toBe(all.length);
    expect(got.equals(all)).toBe(true);
    expect(src.messages.reduce((n, m) => n + framesOf(m), 0)).toBe(frames.length);
    s.destroy();
  }, 60000);

  it("a bad header right after a completed cut frame: the frames before it are delivered, the connection is closed", async () => {
    const src = await startSource(1000);
    const s = await connect(src.port);
    const closed = new Promise<void>((r) => s.on("close", () => r()));
    const good = Buffer.concat([frame(1), frame(2), frame(4)]);
    const bad = Buffer.alloc(8);
    bad.writeUInt32BE(5000, 0); // over --max-frame-bytes (1000)
    // The first frame is cut inside its payload; the second write completes it, then two
    // whole frames, then the bad header.
    s.write(good.subarray(0, 10));
    await sleep(50);
    s.write(Buffer.concat([good.subarray(10), bad]));
    await closed;
    await until(() => src.messages.reduce((n, m) => n + m.length, 0) >= good.length, "the good frames");
    src.drain();
    expect(Buffer.concat(src.messages).equals(good)).toBe(true);
  }, 30000);
});
