/**
 * TCP source, run in its own I/O thread: listens, accepts any number of
 * connections, cuts the byte stream into frames by the decoder's length header
 * and passes each payload, undecoded, to the worker the connection is bound to.
 * One connection always feeds one worker, which is what keeps its messages in
 * order. When that worker's ring is full the connections feeding it are paused,
 * so a slow pipeline slows the sender down through TCP itself.
 */
import net from "node:net";
import type { MessagePort } from "node:worker_threads";
import { parseLengthFormat } from "../api/struct.js";
import { ChannelWriter } from "../transport/channel.js";
import { RingWriter } from "../transport/ring.js";
import { Doorbell } from "../transport/doorbell.js";
import { SOURCE_FRAMED, tag } from "../transport/tags.js";
import { createLogger } from "../runtime/log.js";

export interface TcpSourceInit {
  kind: "tcp-source";
  sourceId: number;
  pipeline: string;
  host: string;
  port: number;
  headerLength: number;
  lengthFmt: string;
  maxFrameBytes: number;
  /** one ring per worker */
  rings: SharedArrayBuffer[];
  workerBells: SharedArrayBuffer[];
  /** metrics on: ms the connections feeding each worker were paused on its full ring */
  blockedMs?: SharedArrayBuffer;
}

interface Connection {
  readonly socket: net.Socket;
  readonly worker: number;
  readonly name: string;
  /** bytes of an incomplete header, or of a frame whose header was read */
  partial: Buffer | null;
  /** how much of `partial` is filled (a frame buffer is allocated whole once its header is known) */
  filled: number;
  messages: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runTcpSource(init: TcpSourceInit, control: MessagePort): void {
  const log = createLogger("wallaroo.source.tcp", { pipeline: init.pipeline, listen: `${init.host}:${init.port}` });
  const fmt = parseLengthFormat(init.lengthFmt);
  const H = init.headerLength;
  const maxFrame = init.maxFrameBytes;
  const t = tag(SOURCE_FRAMED, init.sourceId);
  const channels = init.rings.map((sab, w) => new ChannelWriter(new RingWriter(sab, new Doorbell(init.workerBells[w]))));
  const byWorker: Set<Connection>[] = channels.map(() => new Set());
  const blockedMs = init.blockedMs ? new Float64Array(init.blockedMs) : null;
  const waiting = new Set<number>();
  // Sources start at different workers, so single connections to two sources use two workers.
  let nextWorker = init.sourceId % init.rings.length;
  let connections = 0;
  let stopping = false;
  /** a checkpoint asked this source to pause (resilience): sockets stay paused until "resume" */
  let paused = false;
  /** the pause request not yet answered: answered once every queued run is in its ring */
  let pauseId: number | null = null;

  /**
   * Finds the whole messages at the start of buf[pos..] and hands them to the
   * worker as one run (headers included); returns the offset of the first byte not
   * consumed, or -1 when a bad header closed the connection.
   */
  const frameAll = (c: Connection, buf: Buffer, pos: number): number => {
    const start = pos;
    const end = buf.length;
    let bad: number | null = null;
    while (end - pos >= H) {
      const n = fmt.read(buf, pos);
      if (n < 0 || n > maxFrame) {
        bad = n;
        break;
      }
      if (end - pos - H < n) break;
      pos += H + n;
      c.messages++;
    }
    if (pos > start) sendRun(c, buf, start, pos);
    if (bad !== null) {
      reject(c, bad);
      return -1;
    }
    return pos;
  };

  /** A run longer than a frame may be is split at message boundaries, so each frame holds whole messages. */
  const sendRun = (c: Connection, buf: Buffer, start: number, end: number) => {
    const ch = channels[c.worker];
    while (end - start > ch.frameLimit) {
      let cut = start;
      while (cut < end) {
        const next = cut + H + fmt.read(buf, cut);
        if (next - start > ch.frameLimit && cut > start) break;
        cut = next;
      }
      ch.send(t, buf, start, cut);
      start = cut;
    }
    if (end > start) ch.send(t, buf, start, end);
  };

  const reject = (c: Connection, n: number) => {
    log.error(
      { connection: c.name, announced: n, maxFrameBytes: maxFrame },
      n < 0
        ? `connection ${c.name} sent a negative frame length (${n}); closing it`
        : `connection ${c.name} announced a ${n}-byte frame, over the ${maxFrame}-byte limit (--max-frame-bytes); closing it`,
    );
    c.partial = null;
    c.socket.destroy();
    // The frames of this connection framed before the bad header still go on: publish them.
    const ch = channels[c.worker];
    ch.commit();
    if (ch.blocked) pauseFor(c.worker);
  };

  const onData = (c: Connection, chunk: Buffer) => {
    let pos = 0;
    if (c.partial !== null) {
      // Finish the pending header or frame first, copying only what it needs.
      if (c.filled < H) {
        const take = Math.min(H - c.filled, chunk.length);
        chunk.copy(c.partial, c.filled, 0, take);
        c.filled += take;
        pos = take;
        if (c.filled < H) return;
        const n = fmt.read(c.partial, 0);
        if (n < 0 || n > maxFrame) return reject(c, n);
        const whole = Buffer.allocUnsafe(H + n);
        c.partial.copy(whole, 0, 0, H);
        c.partial = whole;
      }
      const take = Math.min(c.partial.length - c.filled, chunk.length - pos);
      chunk.copy(c.partial, c.filled, pos, pos + take);
      c.filled += take;
      pos += take;
      if (c.filled < c.partial.length) return;
      channels[c.worker].send(t, c.partial, 0, c.partial.length);
      c.messages++;
      c.partial = null;
    }
    pos = frameAll(c, chunk, pos);
    if (pos < 0) return;
    if (pos < chunk.length) {
      const rest = chunk.length - pos;
      if (rest >= H) {
        const n = fmt.read(chunk, pos);
        c.partial = Buffer.allocUnsafe(H + n);
      } else {
        c.partial = Buffer.allocUnsafe(H);
      }
      chunk.copy(c.partial, 0, pos);
      c.filled = rest;
    }
    const ch = channels[c.worker];
    ch.commit();
    if (ch.blocked) pauseFor(c.worker);
  };

  /** The worker's ring is full: pause every connection feeding it until the queue is flushed. */
  const pauseFor = (w: number) => {
    for (const c of byWorker[w]) c.socket.pause();
    if (waiting.has(w)) return;
    waiting.add(w);
    const ch = channels[w];
    // Time paused is added as it passes (metrics), so that a long pause shows while it lasts.
    let mark = performance.now();
    const countPaused = () => {
      if (blockedMs === null) return;
      const now = performance.now();
      blockedMs[w] += now - mark;
      mark = now;
    };
    const retry = async () => {
      // Resume only once half the ring is free: resuming at the first free byte would
      // pause and resume the sockets for every batch the worker takes.
      while (!ch.flush()) {
        ch.commit();
        await ch.waitForSpace(50);
        countPaused();
      }
      ch.commit();
      while (ch.freeBytes() < ch.ring.capacity / 2) {
        await sleep(1);
        countPaused();
      }
      ch.commit();
      waiting.delete(w);
      countPaused();
      if (!stopping && !paused) for (const c of byWorker[w]) c.socket.resume();
      checkStopped();
      checkPaused();
    };
    void retry();
  };

  const server = net.createServer((socket) => {
    if (stopping) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const worker = nextWorker;
    nextWorker = (nextWorker + 1) % channels.length;
    const c: Connection = {
      socket, worker, name: `${socket.remoteAddress}:${socket.remotePort}`, partial: null, filled: 0, messages: 0,
    };
    connections++;
    byWorker[worker].add(c);
    log.info({ connection: c.name, worker }, `connection from ${c.name} (worker ${worker})`);
    if (waiting.has(worker) || paused) socket.pause();
    socket.on("data", (chunk: Buffer) => onData(c, chunk));
    socket.on("error", (err) => log.warn({ connection: c.name, err: err.message }, `connection ${c.name}: ${err.message}`));
    socket.on("close", () => {
      if (c.partial !== null) {
        log.warn({ connection: c.name, bytes: c.filled },
          `connection ${c.name} closed in the middle of a frame; dropped its last ${c.filled} bytes`);
      }
      byWorker[worker].delete(c);
      connections--;
      log.info({ connection: c.name, messages: c.messages }, `connection ${c.name} closed after ${c.messages} messages`);
    });
  });

  server.on("error", (err) => {
    control.postMessage({ type: "fatal", where: `TCP source of pipeline ${JSON.stringify(init.pipeline)}`,
      message: `cannot listen on ${init.host}:${init.port}: ${err.message}` });
  });
  server.listen(init.port, init.host, () => {
    const addr = server.address() as net.AddressInfo;
    log.info(`pipeline ${JSON.stringify(init.pipeline)} listening on ${addr.address}:${addr.port}`);
    control.postMessage({ type: "listening", port: addr.port });
  });

  const checkStopped = () => {
    if (stopping && waiting.size === 0) {
      for (const ch of channels) ch.commit();
      control.postMessage({ type: "stopped" });
    }
  };

  /** A checkpoint's cut: nothing more is read, and everything read so far is in the rings. TCP has no replayable position. */
  const checkPaused = () => {
    if (pauseId === null || waiting.size > 0) return;
    for (const ch of channels) ch.commit();
    control.postMessage({ type: "paused", id: pauseId });
    pauseId = null;
  };

  control.on("message", (msg: { type: string; id?: number }) => {
    if (msg.type === "pause") {
      paused = true;
      pauseId = msg.id!;
      for (const set of byWorker) for (const c of set) c.socket.pause();
      checkPaused();
      return;
    }
    if (msg.type === "resume") {
      paused = false;
      pauseId = null;
      if (!stopping) for (let w = 0; w < byWorker.length; w++) if (!waiting.has(w)) for (const c of byWorker[w]) c.socket.resume();
      return;
    }
    if (msg.type === "stop" && !stopping) {
      // Stop reading; everything already read is framed and handed on before "stopped".
      stopping = true;
      server.close();
      for (const set of byWorker) for (const c of set) {
        c.socket.pause();
        c.socket.destroy();
      }
      checkStopped();
    } else if (msg.type === "count") {
      control.postMessage({ type: "count", connections });
    }
  });
}
