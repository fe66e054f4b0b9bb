/**
 * The TCP sink's gather chunks (run in this thread, fed through a real ring, writing
 * to a real socket on loopback): the sink hands the socket views of pooled chunks and
 * refills a chunk only once every write of it has succeeded. These tests hold writes
 * back (a receiver that does not read, then one that drops the connection) while
 * outputs keep arriving, so that a chunk reused too early, or a view re-written after
 * a reconnect from a reused chunk, would show as a corrupt or missing record.
 */
import net from "node:net";
import { MessageChannel } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { runTcpSink } from "../../dist/connectors/tcp/sink.js";
import { ChannelWriter } from "../../dist/transport/channel.js";
import { RingWriter, createRing } from "../../dist/transport/ring.js";
import { Doorbell, createDoorbell } from "../../dist/transport/doorbell.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** record `seq`: u32 BE body length, u32 BE seq, then bytes that depend on seq and position */
const bodyLength = (seq: number) => 4 + ((seq * 7919) % 700);
function record(seq: number): Buffer {
  const len = bodyLength(seq);
  const b = Buffer.allocUnsafe(4 + len);
  b.writeUInt32BE(len, 0);
  b.writeUInt32BE(seq, 4);
  for (let i = 8; i < b.length; i++) b[i] = (seq + i) & 255;
  return b;
}

/** The seqs of a received stream, checking every record byte for byte; throws on a corrupt or cut one. */
function parse(all: Buffer): number[] {
  const out: number[] = [];
  let pos = 0;
  while (pos < all.length) {
    if (all.length - pos < 8) throw new Error(`a cut record at ${pos}`);
    const seq = all.readUInt32BE(pos + 4);
    const want = record(seq);
    if (!want.equals(all.subarray(pos, pos + want.length))) throw new Error(`record ${seq} at ${pos} is corrupt`);
    out.push(seq);
    pos += want.length;
  }
  return out;
}

/**
 * Ring messages of whole records, as the workers send them: mostly up to 64 KiB, some of
 * one small record, and now and then one over half a chunk (150 KiB) or over a whole chunk
 * (300 KiB), which the sink writes on their own.
 */
function* messages(total: number): Generator<Buffer> {
  let seq = 0;
  for (let m = 0; seq < total; m++) {
    const target = m % 97 === 50 ? 300 * 1024 : m % 89 === 40 ? 150 * 1024 : m % 5 === 0 ? 1 : 64 * 1024;
    const parts: Buffer[] = [];
    let size = 0;
    do {
      const r = record(seq++);
      parts.push(r);
      size += r.length;
    } while (seq < total && size + 4 + 704 <= target);
    yield Buffer.concat(parts);
  }
}

interface Sink {
  stop(): Promise<number>;
}

function startSink(port: number, ring: SharedArrayBuffer, bell: SharedArrayBuffer): Sink {
  const { port1, port2 } = new MessageChannel();
  runTcpSink(
    {
      kind: "tcp-sink",
      sinkId: 0,
      label: "test",
      host: "127.0.0.1",
      port,
      rings: [ring],
      bell,
      status: new SharedArrayBuffer(16),
      statusSlot: 1,
    },
    port1,
  );
  return {
    stop: () =>
      new Promise<number>((resolve) => {
        port2.on("message", (m: { type: string; deliveredBytes?: number }) => {
          if (m.type !== "closed") return;
          port1.close();
          port2.close();
          resolve(m.deliveredBytes ?? -1);
        });
        port2.postMessage({ type: "close" });
      }),
  };
}

/** Feeds the messages into the ring, waiting for room (the sink stops reading while its writes are held back). */
async function produce(ring: SharedArrayBuffer, bell: SharedArrayBuffer, total: number): Promise<number> {
  const ch = new ChannelWriter(new RingWriter(ring, new Doorbell(bell)));
  let bytes = 0;
  for (const m of messages(total)) {
    ch.send(1, m, 0, m.length);
    bytes += m.length;
    ch.commit();
    while (!ch.flush()) await ch.waitForSpace(20);
    ch.commit();
    await new Promise((r) => setImmediate(r)); // the sink runs on this thread too
  }
  return bytes;
}

const cleanup: (() => void)[] = [];
afterEach(() => {
  for (const f of cleanup.splice(0)) f();
});

/** A receiver: each accepted connection's bytes, in order; `hold` pauses new connections. */
async function receiver(hold: boolean) {
  const conns: { socket: net.Socket; chunks: Buffer[] }[] = [];
  let holding = hold;
  const srv = net.createServer((socket) => {
    const c = { socket, chunks: [] as Buffer[] };
    conns.push(c);
    if (holding) socket.pause();
    socket.on("data", (d) => c.chunks.push(d));
    socket.on("error", () => {});
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  cleanup.push(() => {
    for (const c of conns) c.socket.destroy();
    srv.close();
  });
  return {
    port: (srv.address() as net.AddressInfo).port,
    conns,
    release() {
      holding = false;
      for (const c of conns) c.socket.resume();
    },
    received: (i: number) => Buffer.concat(conns[i]?.chunks ?? []),
  };
}

async function until(cond: () => boolean, what: string, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Reads the held-back first connection up to `breakAt` bytes, breaks it, then reads everything on the second. */
async function breakAndCheck(total: number, breakAt: number) {
  const rx = await receiver(true);
  const ring = createRing(2 * 1024 * 1024);
  const bell = createDoorbell();
  const sink = startSink(rx.port, ring, bell);
  const producing = produce(ring, bell, total);
  await until(() => rx.conns.length === 1, "the sink to connect");
  await sleep(300); // the kernel buffers fill, writes stay pending, the sink stops reading its ring
  // What the first connection had not delivered (writes still pending on views of chunks,
  // pieces the replay log holds) is written again on the next connection.
  rx.conns[0].socket.resume();
  await until(() => rx.received(0).length > breakAt, `${breakAt} bytes on the first connection`);
  rx.conns[0].socket.destroy();
  // The sink reconnects after a backoff; meanwhile outputs keep arriving into reused chunks.
  rx.release();
  const bytes = await producing;
  await until(() => rx.conns.length === 2, "the reconnect");
  const last = record(total - 1);
  await until(() => {
    const b = rx.received(1);
    return b.length >= last.length && b.subarray(b.length - last.length).equals(last);
  }, "the last record on the second connection");
  // The first connection may end inside a record (it was cut); every whole record in it is intact.
  const first = rx.received(0);
  let cut = 0;
  while (first.length - cut >= 8 && cut + record(first.readUInt32BE(cut + 4)).length <= first.length) {
    cut += record(first.readUInt32BE(cut + 4)).length;
  }
  const before = parse(first.subarray(0, cut));
  const after = parse(rx.received(1));
  expect(before.every((s, i) => s === i)).toBe(true);
  // The replay starts at a record the first connection had (or the one after its last whole record)...
  expect(after[0]).toBeLessThanOrEqual(before.length);
  // ...and from there every record comes exactly once, in order, to the last.
  expect(after.every((s, i) => s === after[0] + i)).toBe(true);
  expect(after[after.length - 1]).toBe(total - 1);
  expect(await sink.stop()).toBe(bytes);
}

describe("TCP sink gather chunks", () => {
  it("a receiver that reads late gets every record whole and in order while chunks are reused", async () => {
    const rx = await receiver(true);
    const ring = createRing(2 * 1024 * 1024);
    const bell = createDoorbell();
    const sink = startSink(rx.port, ring, bell);
    const total = 60_000; // ~22 MB of records: several times what the kernel buffers and HIGH_WATER hold
    const producing = produce(ring, bell, total);
    await until(() => rx.conns.length === 1, "the sink to connect");
    await sleep(300); // the kernel buffers fill, writes stay pending, the sink stops reading its ring
    rx.release();
    const bytes = await producing;
    await until(() => rx.received(0).length >= bytes, "every byte");
    const seqs = parse(rx.received(0));
    expect(seqs.length).toBe(total);
    expect(seqs.every((s, i) => s === i)).toBe(true);
    expect(await sink.stop()).toBe(bytes);
  }, 60000);

  it("after a connection breaks with writes pending, the new one re-sends from a record boundary and nothing is lost", async () => {
    await breakAndCheck(60_000, 1_000_000);
  }, 60000);

  it("the same after more than the replay log holds went through: chunks it let go of were refilled, its replay is still exact", async () => {
    // ~55 MB of records; the break comes after 40 MB: the log (16 MiB) has long let go of
    // the first chunks, which the sink refilled while it held newer pieces.
    await breakAndCheck(150_000, 40_000_000);
  }, 90000);
});
