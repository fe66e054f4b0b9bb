/**
 * TCP source, run in its own I/O thread: listens, accepts any number of
 * connections, cuts the byte stream into frames by the decoder's length header
 * and passes each payload, undecoded, to the worker the connection is bound to.
 * With "lines" framing each line becomes such a frame first (core/framing.ts
 * LineFramer), so the workers see the same runs either way.
 * One connection always feeds one worker, which is what keeps its messages in
 * order. When that worker's ring is full the connections feeding it are paused,
 * so a slow pipeline slows the sender down through TCP itself.
 *
 * Memory holds what arrived, never what a header announced: an incomplete frame is
 * kept as the pieces received so far, and all connections together keep at most
 * PARTIAL_BUDGET bytes of them (plus one frame that may complete and one socket read
 * per connection) before the connections holding incomplete frames are paused.
 */
import net from "node:net";
import { closeSync, openSync } from "node:fs";
import type { MessagePort } from "node:worker_threads";
import { parseLengthFormat } from "../../core/struct.js";
import { FrameScan, LineFramer, frameEnd, scanFrames } from "../../core/framing.js";
import type { StreamFraming } from "../../topology/spec.js";
import { ChannelWriter, copyBytes } from "../../transport/channel.js";
import { RingWriter } from "../../transport/ring.js";
import { Doorbell } from "../../transport/doorbell.js";
import { SOURCE_FRAMED, sourceTag } from "../../transport/tags.js";
import { createLogger } from "../../core/log.js";
import { LineLimiter } from "../log-limit.js";
import type { FromIo, ToIo } from "../../control/protocol.js";

export interface TcpSourceInit {
  kind: "tcp-source";
  sourceId: number;
  pipeline: string;
  host: string;
  port: number;
  framing: StreamFraming;
  headerLength: number;
  lengthFmt: string;
  maxFrameBytes: number;
  /** one ring per worker */
  rings: SharedArrayBuffer[];
  workerBells: SharedArrayBuffer[];
  /** metrics on: ms the connections feeding each worker were paused on its full ring */
  blockedMs?: SharedArrayBuffer;
  /** metrics on: the source's backlog slot (metrics/layout.ts): bytes read and not yet in a ring */
  backlog?: SharedArrayBuffer;
}

interface Connection {
  readonly socket: net.Socket;
  readonly worker: number;
  /**
   * the tag of its frames: the source and the connection's number, so that each connection
   * is an input of its own for window watermarks (a slow connection holds them back)
   */
  readonly tag: number;
  /** the peer's address, read when the connection was accepted (later it may be gone) */
  readonly name: string;
  /** the bytes of an incomplete header or frame, as they arrived (copies), oldest first */
  pieces: Buffer[];
  /** bytes in `pieces` (counted in the source's partialBytes) */
  filled: number;
  /** header + payload bytes of the frame in progress once its header is complete, else 0 */
  need: number;
  messages: number;
  /** paused because incomplete frames use up the buffer budget */
  budgetPaused: boolean;
  /** "lines" framing: the connection's unfinished line (its bytes held count as `filled`) */
  lineFramer: LineFramer | null;
  closed: boolean;
}

/**
 * Bytes of incomplete frames all connections of a source may hold before those
 * connections are paused (backpressure: they are read again once frames complete).
 * One connection at a time (`privileged`) goes on reading past it so that some frame
 * can always complete; a frame is at most --max-frame-bytes.
 */
const PARTIAL_BUDGET = Number(process.env.WALLAROO_TCP_SOURCE_BUFFER_BYTES ?? 64 * 1024 * 1024);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runTcpSource(init: TcpSourceInit, control: MessagePort): void {
  const log = createLogger("wallaroo.source.tcp", { pipeline: init.pipeline, listen: `${init.host}:${init.port}` });
  /** lines a peer can cause (per connection) are rate-limited, with counts of what was left out */
  const lines = new LineLimiter(log);
  const fmt = parseLengthFormat(init.lengthFmt);
  const H = init.headerLength;
  const scan = new FrameScan();
  const maxFrame = init.maxFrameBytes;
  const channels = init.rings.map(
    (sab, w) => new ChannelWriter(new RingWriter(sab, new Doorbell(init.workerBells[w]))),
  );
  const byWorker: Set<Connection>[] = channels.map(() => new Set());
  const blockedMs = init.blockedMs ? new Float64Array(init.blockedMs) : null;
  const waiting = new Set<number>();
  // Sources start at different workers, so single connections to two sources use two workers.
  let nextWorker = init.sourceId % init.rings.length;
  let connections = 0;
  /** messages of the connections already closed (live ones count in their Connection) */
  let closedMessages = 0;
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
  const frameAll = (c: Connection, buf: Buffer, start: number): number => {
    const { end, count, bad } = scanFrames(fmt, buf, start, buf.length, maxFrame, scan);
    c.messages += count;
    if (end > start) sendRun(c, buf, start, end);
    if (bad !== null) {
      reject(c, bad);
      return -1;
    }
    return end;
  };

  /** A run longer than a frame may be is split at message boundaries, so each frame holds whole messages. */
  const sendRun = (c: Connection, buf: Buffer, start: number, end: number) => {
    const ch = channels[c.worker];
    while (end - start > ch.frameLimit) {
      let cut = start;
      while (cut < end) {
        const next = frameEnd(fmt, buf, cut);
        if (next - start > ch.frameLimit && cut > start) break;
        cut = next;
      }
      ch.send(c.tag, buf, start, cut);
      start = cut;
    }
    if (end > start) ch.send(c.tag, buf, start, end);
  };

  const reject = (c: Connection, n: number) => {
    lines.line(
      "bad frame header",
      "error",
      { connection: c.name, announced: n, maxFrameBytes: maxFrame },
      n < 0
        ? `connection ${c.name} sent a negative frame length (${n}); closing it`
        : `connection ${c.name} announced a ${n}-byte frame, over the ${maxFrame}-byte limit (--max-frame-bytes); closing it`,
    );
    dropPartial(c);
    c.socket.destroy();
    // The frames of this connection framed before the bad header still go on: publish them.
    const ch = channels[c.worker];
    ch.commit();
    if (ch.blocked) pauseFor(c.worker);
  };

  /** bytes of incomplete frames held by all connections */
  let partialBytes = 0;
  /** connections paused for the budget */
  const budgetPaused = new Set<Connection>();
  /** the one connection holding an incomplete frame that reads on while over budget */
  let privileged: Connection | null = null;
  let overBudget = false;

  const canRead = (c: Connection) => !stopping && !paused && !c.closed && !c.budgetPaused && !waiting.has(c.worker);

  const addPiece = (c: Connection, chunk: Buffer, from: number, to: number) => {
    if (to <= from) return;
    // A copy: a view would keep the socket's whole read buffer (64 KiB) alive for a few bytes.
    c.pieces.push(Buffer.from(chunk.subarray(from, to)));
    c.filled += to - from;
    partialBytes += to - from;
  };

  const dropPartial = (c: Connection) => {
    c.lineFramer?.reset();
    partialBytes -= c.filled;
    c.pieces = [];
    c.filled = 0;
    c.need = 0;
    if (privileged === c) privileged = null;
    if (overBudget) rebalance(null);
  };

  const pauseForBudget = (c: Connection) => {
    c.budgetPaused = true;
    budgetPaused.add(c);
    c.socket.pause();
  };

  /** The connection closest to a whole frame (the most bytes held) gets to finish it. */
  const choosePrivileged = () => {
    privileged = null;
    for (const set of byWorker)
      for (const c of set) {
        if (c.filled > 0 && (privileged === null || c.filled > privileged.filled)) privileged = c;
      }
    const p = privileged as Connection | null;
    if (p !== null && p.budgetPaused) {
      p.budgetPaused = false;
      budgetPaused.delete(p);
      if (canRead(p)) p.socket.resume();
    }
  };

  /**
   * Keeps the bytes of incomplete frames within PARTIAL_BUDGET: over it, every
   * connection holding one is paused except `privileged`; back under 3/4 of it, they
   * are read again. Backpressure, not drops: nothing already read is thrown away.
   * `c`: the connection that just added bytes, if any.
   */
  const rebalance = (c: Connection | null) => {
    if (!overBudget) {
      if (partialBytes <= PARTIAL_BUDGET) return;
      overBudget = true;
      choosePrivileged();
      for (const set of byWorker) for (const o of set) if (o.filled > 0 && o !== privileged) pauseForBudget(o);
      lines.line(
        "buffer budget",
        "warn",
        { partialBytes, budget: PARTIAL_BUDGET, paused: budgetPaused.size },
        `incomplete frames hold ${partialBytes} bytes, over this source's ${PARTIAL_BUDGET}-byte budget: ` +
          `pausing the ${budgetPaused.size} other connections holding one until frames complete`,
      );
      return;
    }
    if (partialBytes <= PARTIAL_BUDGET * 0.75) {
      overBudget = false;
      privileged = null;
      const n = budgetPaused.size;
      for (const o of budgetPaused) {
        o.budgetPaused = false;
        if (canRead(o)) o.socket.resume();
      }
      budgetPaused.clear();
      lines.line(
        "buffer budget",
        "info",
        { partialBytes, budget: PARTIAL_BUDGET, resumed: n },
        `incomplete frames hold ${partialBytes} bytes again: reading the ${n} paused connections`,
      );
      return;
    }
    // Until the episode ends (under 3/4 of the budget) one connection must always be
    // reading, or the paused ones would wait for each other forever.
    if (privileged === null || privileged.closed || privileged.filled === 0) choosePrivileged();
    if (c !== null && c.filled > 0 && c !== privileged && !c.budgetPaused) pauseForBudget(c);
  };

  /** lines over the limit, of all connections (each logged, rate-limited, with this running count) */
  let tooLongLines = 0;
  const newLineFramer = (name: () => string) =>
    new LineFramer(fmt, maxFrame, (bytes) => {
      tooLongLines++;
      lines.line(
        "line too long",
        "error",
        { connection: name(), bytes, maxFrameBytes: maxFrame, tooLongLines },
        `connection ${name()} sent a line of ${bytes}+ bytes, over the ${maxFrame}-byte limit (--max-frame-bytes); ` +
          `skipping it up to its newline (${tooLongLines} such lines so far); the connection's other lines go on`,
      );
    });

  /**
   * "lines" framing: the lines a read completes go to the worker as one run of
   * length-header frames; the unfinished line is held (and counted in the budget).
   */
  const onLines = (c: Connection, chunk: Buffer | null) => {
    const lf = c.lineFramer!;
    const run = chunk === null ? lf.end() : lf.push(chunk);
    partialBytes += lf.held - c.filled;
    c.filled = lf.held;
    if (run !== null) {
      c.messages += lf.count;
      sendRun(c, run, 0, run.length);
    }
    if (overBudget || partialBytes > PARTIAL_BUDGET) rebalance(c);
    const ch = channels[c.worker];
    ch.commit();
    if (ch.blocked) pauseFor(c.worker);
  };

  const onData = (c: Connection, chunk: Buffer) => {
    if (c.lineFramer !== null) return onLines(c, chunk);
    let pos = 0;
    if (c.filled > 0) {
      // Finish the pending header or frame first, copying only what it needs.
      if (c.need === 0) {
        const take = Math.min(H - c.filled, chunk.length);
        addPiece(c, chunk, 0, take);
        pos = take;
        if (c.filled < H) return;
        const header = c.pieces.length === 1 ? c.pieces[0] : Buffer.concat(c.pieces, H);
        c.pieces = [header];
        const n = fmt.read(header, 0);
        if (n < 0 || n > maxFrame) return reject(c, n);
        c.need = H + n;
      }
      const take = Math.min(c.need - c.filled, chunk.length - pos);
      if (c.filled + take < c.need) {
        addPiece(c, chunk, pos, pos + take);
        if (overBudget || partialBytes > PARTIAL_BUDGET) rebalance(c);
        return;
      }
      // The frame is whole. With the whole frames that follow it in this read it goes to the
      // worker as one run, copied from its pieces and the socket's buffer straight into the
      // ring, when that run fits in one ring frame and there is room now (the common case).
      const ch = channels[c.worker];
      const { end, count, bad } = scanFrames(fmt, chunk, pos + take, chunk.length, maxFrame, scan);
      const runLen = c.need + end - (pos + take);
      const off = runLen <= ch.frameLimit ? ch.reserve(c.tag, runLen) : -1;
      if (off >= 0) {
        // copyBytes, not TypedArray#set: into a SharedArrayBuffer, V8's set copies byte by byte
        // when source and target are not aligned alike (~3 GB/s against ~36 for Buffer#copy's
        // memmove, 64 KiB measured on Node 24).
        let at = off;
        for (const p of c.pieces) {
          copyBytes(p, 0, p.length, ch.buffer, at);
          at += p.length;
        }
        copyBytes(chunk, pos, end, ch.buffer, at);
        c.messages += 1 + count;
        dropPartial(c);
        pos = end;
        if (bad !== null) return reject(c, bad);
      } else {
        // Only now is a buffer of the frame's full size allocated.
        const whole = Buffer.allocUnsafe(c.need);
        let at = 0;
        for (const p of c.pieces) {
          p.copy(whole, at);
          at += p.length;
        }
        chunk.copy(whole, at, pos, pos + take);
        pos += take;
        ch.send(c.tag, whole, 0, whole.length);
        c.messages++;
        dropPartial(c);
        pos = frameAll(c, chunk, pos);
        if (pos < 0) return;
      }
    } else {
      pos = frameAll(c, chunk, pos);
      if (pos < 0) return;
    }
    if (pos < chunk.length) {
      // frameAll stopped at an incomplete header or frame; a complete header here was checked by it.
      if (chunk.length - pos >= H) c.need = H + fmt.read(chunk, pos);
      addPiece(c, chunk, pos, chunk.length);
      if (overBudget || partialBytes > PARTIAL_BUDGET) rebalance(c);
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
      for (const c of byWorker[w]) if (canRead(c)) c.socket.resume();
      checkStopped();
      checkPaused();
    };
    void retry();
  };

  let accepted = 0;
  const server = net.createServer((socket) => {
    if (stopping) {
      socket.destroy();
      return;
    }
    accepted++;
    socket.setNoDelay(true);
    const worker = nextWorker;
    nextWorker = (nextWorker + 1) % channels.length;
    // Read the peer's address now: a client that has already reset has none to give
    // (the kernel forgot it), which is said rather than printed as undefined:undefined.
    const name =
      socket.remoteAddress !== undefined
        ? `${socket.remoteAddress}:${socket.remotePort}`
        : `unknown-peer#${accepted}(reset-before-accept)`;
    const c: Connection = {
      socket,
      worker,
      // its number (connections accepted so far) names it as an input of its own
      tag: sourceTag(SOURCE_FRAMED, init.sourceId, accepted),
      name,
      pieces: [],
      filled: 0,
      need: 0,
      messages: 0,
      budgetPaused: false,
      closed: false,
      lineFramer: init.framing === "lines" ? newLineFramer(() => name) : null,
    };
    connections++;
    byWorker[worker].add(c);
    lines.line(
      "connection accepted",
      "info",
      { connection: c.name, worker },
      `connection from ${c.name} (worker ${worker})`,
    );
    if (!canRead(c)) socket.pause();
    socket.on("data", (chunk: Buffer) => onData(c, chunk));
    // The peer finished sending: its last line counts even without a newline (as for `cat`).
    // Not on a stop's destroy, which reads nothing more.
    if (c.lineFramer !== null) socket.on("end", () => onLines(c, null));
    socket.on("error", (err) =>
      lines.line(
        "connection error",
        "warn",
        { connection: c.name, err: err.message },
        `connection ${c.name}: ${err.message}`,
      ),
    );
    socket.on("close", () => {
      c.closed = true;
      if (c.filled > 0) {
        lines.line(
          "partial frame at close",
          "warn",
          { connection: c.name, bytes: c.filled },
          `connection ${c.name} closed in the middle of a ${c.lineFramer ? "line" : "frame"}; dropped its last ${c.filled} bytes`,
        );
      }
      byWorker[worker].delete(c);
      if (c.budgetPaused) {
        c.budgetPaused = false;
        budgetPaused.delete(c);
      }
      dropPartial(c);
      connections--;
      closedMessages += c.messages;
      lines.line(
        "connection closed",
        "info",
        { connection: c.name, messages: c.messages },
        `connection ${c.name} closed after ${c.messages} messages`,
      );
    });
  });

  let listening = false;
  server.on("error", (err: NodeJS.ErrnoException) => {
    if (listening) {
      // An accept that failed (EMFILE when libuv's spare descriptor trick did not help,
      // ENFILE, ENOBUFS...): the listener itself is fine, so keep serving.
      lines.line(
        "accept failed",
        "error",
        { err: err.message, code: err.code },
        `cannot accept a connection on ${init.host}:${init.port}: ${err.message}; still listening`,
      );
      return;
    }
    control.postMessage({
      type: "fatal",
      where: `TCP source of pipeline ${JSON.stringify(init.pipeline)}`,
      message: `cannot listen on ${init.host}:${init.port}: ${err.message}`,
    } satisfies FromIo);
  });
  server.listen(init.port, init.host, () => {
    listening = true;
    const addr = server.address() as net.AddressInfo;
    log.info(`pipeline ${JSON.stringify(init.pipeline)} listening on ${addr.address}:${addr.port}`);
    control.postMessage({ type: "listening", port: addr.port } satisfies FromIo);
  });

  /**
   * Out of file descriptors, libuv accepts and at once closes pending connections
   * (its spare-descriptor trick) without telling JavaScript: the clients see a reset
   * and nothing is logged. A once-a-second probe (opening /dev/null) sees the same
   * EMFILE/ENFILE that accept gets and says so.
   */
  const fdProbe = setInterval(() => {
    if (!listening || stopping) return;
    try {
      closeSync(openSync("/dev/null", "r"));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EMFILE" || code === "ENFILE") {
        lines.line(
          "out of file descriptors",
          "error",
          { code, connections },
          `out of file descriptors (${code}) with ${connections} connections open: new connections to ` +
            `${init.host}:${init.port} are closed as they are accepted; raise the limit (ulimit -n) or close connections`,
        );
      }
    }
  }, 1000);
  fdProbe.unref();

  /**
   * Metrics on: the bytes this source has read from its connections and not yet handed to a
   * worker (incomplete frames, runs queued behind a full ring, reads Node holds for paused
   * sockets), sampled four times a second, not per read. What the kernel holds for a paused
   * socket is not visible from here: it shows as the sender being slowed down instead.
   */
  if (init.backlog !== undefined) {
    const backlog = new Float64Array(init.backlog);
    backlog[0] = 0;
    setInterval(() => {
      let n = partialBytes;
      for (const ch of channels) n += ch.pendingBytes;
      for (const set of byWorker) for (const c of set) n += c.socket.readableLength;
      backlog[0] = n;
    }, 250).unref();
  }

  let stoppedSent = false;
  const checkStopped = () => {
    if (stopping && waiting.size === 0) {
      for (const ch of channels) ch.commit();
      if (stoppedSent) return;
      stoppedSent = true;
      clearInterval(fdProbe);
      // The sockets destroyed by the stop emit "close" in libuv's close phase, after
      // this turn: report (and summarize the suppressed lines) once they have.
      setTimeout(() => {
        lines.close();
        let messages = closedMessages;
        for (const set of byWorker) for (const c of set) messages += c.messages;
        control.postMessage({ type: "stopped", messages } satisfies FromIo);
      }, 0);
    }
  };

  /** A checkpoint's cut: nothing more is read, and everything read so far is in the rings. TCP has no replayable position. */
  const checkPaused = () => {
    if (pauseId === null || waiting.size > 0) return;
    for (const ch of channels) ch.commit();
    control.postMessage({ type: "paused", id: pauseId } satisfies FromIo);
    pauseId = null;
  };

  control.on("message", (msg: ToIo) => {
    if (msg.type === "pause") {
      paused = true;
      pauseId = msg.id;
      for (const set of byWorker) for (const c of set) c.socket.pause();
      checkPaused();
      return;
    }
    if (msg.type === "resume") {
      paused = false;
      pauseId = null;
      for (const set of byWorker) for (const c of set) if (canRead(c)) c.socket.resume();
      return;
    }
    if (msg.type === "stop" && !stopping) {
      // Stop reading; everything already read is framed and handed on before "stopped".
      stopping = true;
      server.close();
      for (const set of byWorker)
        for (const c of set) {
          c.socket.pause();
          c.socket.destroy();
        }
      checkStopped();
    }
  });
}
