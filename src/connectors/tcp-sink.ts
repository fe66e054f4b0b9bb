/**
 * TCP sink, run in its own I/O thread: connects to the receiver (retrying with
 * backoff until it is up), gathers the encoded outputs of all workers into large
 * writes, and never drops output: what was not handed to the socket before a
 * connection broke is written again after reconnecting. While the receiver is
 * away or slow the sink stops reading its rings, which backs the workers up.
 */
import net from "node:net";
import type { MessagePort } from "node:worker_threads";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { ChannelReader, copyBytes } from "../transport/channel.js";
import { RingReader } from "../transport/ring.js";
import { Doorbell } from "../transport/doorbell.js";
import { StatusWord } from "../runtime/wiring.js";
import { SINK_RECONNECTS, SINK_REPLAYED_BYTES } from "../metrics/layout.js";
import { createLogger } from "../runtime/log.js";

export interface TcpSinkInit {
  kind: "tcp-sink";
  sinkId: number;
  label: string;
  host: string;
  port: number;
  /** one ring per worker */
  rings: SharedArrayBuffer[];
  bell: SharedArrayBuffer;
  status: SharedArrayBuffer;
  statusSlot: number;
  /** metrics on: [reconnects, bytes written again after reconnecting] (metrics/layout.ts) */
  counters?: SharedArrayBuffer;
}

/** size of the buffers outputs are gathered into */
const CHUNK = 256 * 1024;
/** bytes handed to the socket but not yet flushed to the kernel before the sink stops reading its rings */
const HIGH_WATER = 4 * 1024 * 1024;
const BATCH = 4096;
/**
 * What the kernel accepted may still be lost with a connection that breaks (it sat
 * in socket buffers, or the receiver died before reading it). The sink keeps the
 * last REPLAY_BYTES it wrote and sends them again after reconnecting: at-least-once,
 * so a receiver can see a repeated tail after a reconnect, never a gap (as long as
 * less than this much was in flight).
 */
const REPLAY_BYTES = 16 * 1024 * 1024;

/**
 * The most recent bytes written, in one buffer allocated once: keeping the written
 * chunks themselves held far more memory than their bytes (measured: ~55 MB of RSS
 * for 16 MiB of replay).
 */
class ReplayBuffer {
  private buf: Buffer | null = null;
  /** bytes appended since the last take(); the next write goes at end % size */
  private end = 0;
  constructor(private readonly size: number) {}

  append(b: Buffer): void {
    if (this.size === 0) return;
    this.buf ??= Buffer.allocUnsafe(this.size);
    let src = b;
    if (src.length > this.size) src = src.subarray(src.length - this.size);
    const at = this.end % this.size;
    const first = Math.min(src.length, this.size - at);
    src.copy(this.buf, at, 0, first);
    if (first < src.length) src.copy(this.buf, 0, first);
    this.end += src.length;
  }

  /** The kept bytes, oldest first, as copies; empties the buffer. */
  take(): Buffer[] {
    if (this.buf === null || this.end === 0) return [];
    const n = Math.min(this.end, this.size);
    const at = this.end % this.size;
    const out = this.end < this.size || at === 0
      ? [Buffer.from(this.buf.subarray(0, n))]
      : [Buffer.from(this.buf.subarray(at)), Buffer.from(this.buf.subarray(0, at))];
    this.end = 0;
    return out;
  }
}

export function runTcpSink(init: TcpSinkInit, control: MessagePort): void {
  const log = createLogger("wallaroo.sink.tcp", { sink: init.label });
  const status = new StatusWord(init.status, init.statusSlot);
  const bell = new Doorbell(init.bell);

  let socket: net.Socket | null = null;
  let connected = false;
  let closing = false;
  /** chunks written to the socket whose write has not completed, oldest first */
  const unflushed: Buffer[] = [];
  let unflushedBytes = 0;
  /** the last REPLAY_BYTES the kernel accepted */
  const replay = new ReplayBuffer(REPLAY_BYTES);
  let out = Buffer.allocUnsafe(CHUNK);
  let outLen = 0;
  let wake: (() => void) | null = null;
  const wakeUp = () => { const w = wake; wake = null; w?.(); };

  const write = (buf: Buffer) => {
    unflushed.push(buf);
    unflushedBytes += buf.length;
    socket!.write(buf, (err) => {
      if (err) return; // the chunk stays in `unflushed` and is written again after reconnecting
      const done = unflushed.shift()!;
      unflushedBytes -= done.length;
      replay.append(done);
      if (unflushedBytes < HIGH_WATER / 2) wakeUp();
    });
  };

  const flushOut = () => {
    if (outLen === 0) return;
    if (outLen < CHUNK / 4) {
      // A small batch is copied out so the big buffer is reused: a written chunk is kept
      // for replay, and a 256 KiB buffer kept for a few KiB of output wasted most of it.
      write(Buffer.from(out.subarray(0, outLen)));
    } else {
      write(out.subarray(0, outLen));
      out = Buffer.allocUnsafe(CHUNK);
    }
    outLen = 0;
  };

  const onMessage = (_tag: number, bytes: Uint8Array, off: number, len: number) => {
    if (len > CHUNK) {
      flushOut();
      write(Buffer.from(bytes.subarray(off, off + len)));
      return;
    }
    if (outLen + len > CHUNK) flushOut();
    copyBytes(bytes, off, off + len, out, outLen);
    outLen += len;
  };
  const readers = init.rings.map((sab) => new ChannelReader(new RingReader(sab), onMessage));
  const ringsEmpty = () => !readers.some((r) => r.hasData());

  let attempt = 0;
  let everConnected = false;
  const counters = init.counters ? new Float64Array(init.counters) : null;
  const connect = () => {
    if (closing) return;
    const s = net.createConnection({ host: init.host, port: init.port });
    socket = s;
    s.setNoDelay(true);
    s.on("connect", () => {
      connected = true;
      if (attempt > 0) log.info(`connected to ${init.host}:${init.port}`);
      attempt = 0;
      // The recent tail the kernel had accepted, then what was never flushed, in order.
      const again = [...replay.take(), ...unflushed.splice(0)];
      const replayBytes = again.reduce((n, b) => n + b.length, 0) - unflushedBytes;
      if (counters && everConnected) {
        counters[SINK_RECONNECTS]++;
        counters[SINK_REPLAYED_BYTES] += replayBytes + unflushedBytes;
      }
      everConnected = true;
      if (replayBytes + unflushedBytes > 0) {
        log.info({ replayBytes, unflushedBytes }, `re-sending the last ${replayBytes + unflushedBytes} bytes after reconnecting`);
      }
      unflushedBytes = 0;
      for (const b of again) write(b);
      wakeUp();
    });
    s.on("error", (err) => {
      if (attempt === 0 || attempt % 20 === 0) {
        log.warn({ err: err.message, attempt }, `cannot write to ${init.host}:${init.port} (${err.message}); retrying`);
      }
    });
    s.on("close", () => {
      const was = connected;
      connected = false;
      if (closing) return;
      if (was) log.warn(`connection to ${init.host}:${init.port} lost; reconnecting (${unflushedBytes} bytes to write again)`);
      attempt++;
      setTimeout(connect, Math.min(2000, 50 * 2 ** Math.min(attempt, 6)));
    });
  };
  connect();

  const loop = async () => {
    for (;;) {
      if (closing) return;
      if (!connected || unflushedBytes >= HIGH_WATER) {
        // Disconnected with nothing owed is idle: a stop need not wait for a receiver that is gone.
        status.setIdle(!connected && unflushedBytes === 0 && outLen === 0 && ringsEmpty());
        await new Promise<void>((r) => { wake = r; setTimeout(r, 200); });
        continue;
      }
      let n = 0;
      for (let i = 0; i < readers.length; i++) n += readers[i].read(BATCH);
      flushOut();
      if (n > 0) {
        await yieldToEventLoop();
        continue;
      }
      if (unflushedBytes > 0) {
        // Idle means every output is in the kernel: wait for the last writes to complete.
        status.setIdle(false);
        await new Promise<void>((r) => { wake = r; setTimeout(r, 5); });
        continue;
      }
      await status.sleepIdle(bell, ringsEmpty);
    }
  };
  void loop();

  control.on("message", (msg: { type: string }) => {
    if (msg.type === "close") {
      closing = true;
      wakeUp();
      const s = socket;
      if (s && connected) s.end(() => control.postMessage({ type: "closed" }));
      else {
        s?.destroy();
        control.postMessage({ type: "closed", undelivered: unflushedBytes });
      }
    }
  });
}
