/**
 * TCP sink, run in its own I/O thread: connects to the receiver (retrying with
 * backoff until it is up), gathers the encoded outputs of all workers into large
 * writes, and never drops output: after a connection breaks it reconnects and
 * re-sends, from an output boundary, what the broken connection may not have
 * delivered (see REPLAY_BYTES and SETTLE_MS), then what it had not written yet.
 * While the receiver is away or slow the sink stops reading its rings, which backs
 * the workers up; output blocked for more than a few seconds is logged.
 */
import net from "node:net";
import type { MessagePort } from "node:worker_threads";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { ChannelReader, copyBytes } from "../../transport/channel.js";
import { RingReader } from "../../transport/ring.js";
import { Doorbell } from "../../transport/doorbell.js";
import { StatusWord } from "../../transport/wiring.js";
import { createLogger } from "../../core/log.js";
import type { FromIo, ToIo } from "../../control/protocol.js";
import { SINK_RECONNECTS, SINK_REPLAYED_BYTES } from "../../metrics/layout.js";

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
 * in socket buffers, or the receiver died before reading it). TCP is FIFO, so a byte
 * followed by more than the kernels can buffer (our send buffer plus the receiver's
 * receive buffer: 4 + 6 MiB with Linux defaults) has surely been read. After a break
 * the sink therefore re-sends at most the last REPLAY_BYTES the kernel accepted on
 * that connection, starting at an output boundary.
 */
const REPLAY_BYTES = 16 * 1024 * 1024;
/**
 * Bytes re-sent on a connection (a replay) are replayed again after that connection
 * breaks only if it broke less than SETTLE_MS after the kernel accepted them: a
 * connection that lived longer is taken to have delivered them. Without this, a
 * receiver that keeps dropping its connection after reading gets the same tail again
 * and again (measured before: 24x the output in 10 s). A connection that breaks this
 * quickly also does not reset the reconnect backoff.
 */
const SETTLE_MS = 500;
/** the sink logs when no write has completed for this long while output is queued */
const BLOCKED_LOG_MS = Number(process.env.WALLAROO_SINK_BLOCKED_LOG_MS ?? 3000);
/** chunk records kept by the replay log before neighbouring ones are merged */
const MAX_RECORDS = 1 << 16;

/**
 * Free chunk buffers kept for reuse. At full load the sink fills a chunk while one or
 * two earlier ones are being written, so a few suffice; more are left to the GC.
 */
const POOL_MAX = 4;

/**
 * A CHUNK-byte buffer outputs are gathered into. It is filled from the front, and each
 * flush hands the socket a view of the bytes added since the previous flush; later
 * outputs go after them, never over bytes a write may still read. It returns to the
 * pool once it is `retired` (no further output fits) and no write of it is `pending`.
 */
interface Chunk {
  readonly buf: Buffer;
  /**
   * views of this chunk still in use: written but not yet accepted (each counted once,
   * however often it is re-written), or held by the replay log
   */
  pending: number;
  retired: boolean;
}

/**
 * A piece of output handed to the socket; `carried` = it is a replay (it was accepted
 * on an earlier connection); `chunk`: the pooled chunk `buf` is a view of, or null
 * when `buf` is a buffer of its own (a replay, a large output).
 */
interface Pending {
  readonly buf: Buffer;
  readonly carried: boolean;
  readonly chunk: Chunk | null;
}
/** how long a close waits for the receiver to take what is still being written */
const CLOSE_WAIT_MS = 1500;

/**
 * The bytes the kernel accepted on the current connection: the written pieces
 * themselves, held rather than copied, with where each starts and when it was
 * accepted. Every piece the sink writes starts and ends at an output boundary (see
 * onMessage), so a replay that starts at a piece starts at a whole output; bytes are
 * never replayed from the middle of one.
 *
 * A piece may be a view of a buffer its writer reuses (the sink's pooled chunks): the
 * writer passes an `owner` with it, and the log calls `release(owner)` once for every
 * piece appended with one, when it lets go of that piece (it fell out of the last
 * `size` bytes, was merged into a copy, or take() handed it out); the writer must not
 * change those bytes before then. Holding whole chunks costs more memory than their
 * bytes only where a chunk is partly filled (measured before the sink filled its
 * chunks: ~55 MB of RSS for 16 MiB of replay); the sink retires a chunk only when it is
 * at least half full, so the log holds at most about twice `size` plus a chunk.
 */
export class ReplayLog<O extends object = object> {
  /** bytes appended since the last take(); the pieces kept end at `end` */
  private end = 0;
  /**
   * per piece, oldest first from `head`: its bytes, where it starts (in `end` units), when
   * it was accepted, whether it was a replay, and the owner to release (or null)
   */
  private bufs: Buffer[] = [];
  private starts: number[] = [];
  private times: number[] = [];
  private carried: boolean[] = [];
  private owners: (O | null)[] = [];
  private head = 0;
  constructor(
    private readonly size: number,
    private readonly release: (owner: O) => void = () => {},
  ) {}

  append(b: Buffer, carried: boolean, now: number, owner: O | null = null): void {
    if (this.size === 0 || b.length === 0) {
      if (owner !== null) this.release(owner);
      return;
    }
    this.bufs.push(b);
    this.starts.push(this.end);
    this.times.push(now);
    this.carried.push(carried);
    this.owners.push(owner);
    this.end += b.length;
    // Only the last `size` bytes are kept, from a piece's start: older pieces are let go.
    const oldest = this.end - this.size;
    while (this.head < this.starts.length && this.starts[this.head] < oldest) this.drop(this.head++);
    if (this.head > 4096 && this.head * 2 > this.starts.length) this.compact();
    if (this.starts.length - this.head > MAX_RECORDS) this.merge();
  }

  /** bytes that take() could return at most */
  get kept(): number {
    return this.head < this.starts.length ? this.end - this.starts[this.head] : 0;
  }

  /**
   * What to re-send after the connection broke at `now`, as copies, oldest first, each
   * starting at a piece (output) boundary: every kept piece except replayed ones the
   * kernel accepted at least settleMs ago, consecutive pieces joined into one buffer.
   * Empties the log.
   */
  take(now: number, settleMs: number): { chunks: Buffer[]; bytes: number; settled: number } {
    const out: Buffer[] = [];
    let bytes = 0;
    let settled = 0;
    const n = this.starts.length;
    let runStart = -1;
    // One buffer per run: each is written as one piece and recorded as one on the next
    // connection, so it starts at an output boundary.
    const emit = (from: number, to: number) => {
      const piece = Buffer.concat(this.bufs.slice(from, to));
      out.push(piece);
      bytes += piece.length;
    };
    for (let i = this.head; i < n; i++) {
      const skip = this.carried[i] && now - this.times[i] >= settleMs;
      if (skip) {
        settled += this.bufs[i].length;
        if (runStart >= 0) emit(runStart, i);
        runStart = -1;
      } else if (runStart < 0) {
        runStart = i;
      }
    }
    if (runStart >= 0) emit(runStart, n);
    for (let i = this.head; i < n; i++) this.drop(i);
    this.end = 0;
    this.bufs = [];
    this.starts = [];
    this.times = [];
    this.carried = [];
    this.owners = [];
    this.head = 0;
    return { chunks: out, bytes, settled };
  }

  /** Lets go of piece i (its owner is released; its slot stays until compact()). */
  private drop(i: number): void {
    this.bufs[i] = EMPTY;
    const o = this.owners[i];
    if (o !== null) {
      this.owners[i] = null;
      this.release(o);
    }
  }

  private compact(): void {
    this.bufs = this.bufs.slice(this.head);
    this.starts = this.starts.slice(this.head);
    this.times = this.times.slice(this.head);
    this.carried = this.carried.slice(this.head);
    this.owners = this.owners.slice(this.head);
    this.head = 0;
  }

  /**
   * Too many tiny pieces: join each pair of neighbours (a view of both when they lie next
   * to each other in one owner's buffer, else a copy, which releases their owners). A
   * joined piece still starts at a boundary; it is a replay only if both were, and counts
   * as accepted when the later one was (both err towards re-sending more, never less).
   */
  private merge(): void {
    this.compact();
    const b: Buffer[] = [];
    const s: number[] = [];
    const t: number[] = [];
    const c: boolean[] = [];
    const o: (O | null)[] = [];
    const n = this.starts.length;
    for (let i = 0; i < n; i += 2) {
      s.push(this.starts[i]);
      if (i + 1 === n) {
        b.push(this.bufs[i]);
        t.push(this.times[i]);
        c.push(this.carried[i]);
        o.push(this.owners[i]);
        break;
      }
      const x = this.bufs[i];
      const y = this.bufs[i + 1];
      t.push(Math.max(this.times[i], this.times[i + 1]));
      c.push(this.carried[i] && this.carried[i + 1]);
      if (
        this.owners[i] !== null &&
        this.owners[i] === this.owners[i + 1] &&
        x.buffer === y.buffer &&
        x.byteOffset + x.length === y.byteOffset
      ) {
        b.push(Buffer.from(x.buffer, x.byteOffset, x.length + y.length));
        o.push(this.owners[i]);
        this.release(this.owners[i + 1]!);
      } else {
        b.push(Buffer.concat([x, y]));
        o.push(null);
        if (this.owners[i] !== null) this.release(this.owners[i]!);
        if (this.owners[i + 1] !== null) this.release(this.owners[i + 1]!);
      }
    }
    this.bufs = b;
    this.starts = s;
    this.times = t;
    this.carried = c;
    this.owners = o;
  }
}

const EMPTY = Buffer.alloc(0);

export function runTcpSink(init: TcpSinkInit, control: MessagePort): void {
  const log = createLogger("wallaroo.sink.tcp", { sink: init.label });
  const status = new StatusWord(init.status, init.statusSlot);
  const bell = new Doorbell(init.bell);
  const address = `${init.host}:${init.port}`;

  let socket: net.Socket | null = null;
  let connected = false;
  let connectedAt = 0;
  /** when the last connection broke: the settle time of its replayed bytes counts up to then */
  let brokeAt = 0;
  let closing = false;
  /** chunks written to the socket whose write has not completed, oldest first */
  const unflushed: Pending[] = [];
  let unflushedBytes = 0;
  /**
   * Bytes of output the kernel accepted, each counted once (a replay is not counted
   * again): the stop report compares them with what the workers produced. (Bytes, not
   * messages: the workers hand over gathered runs of outputs.)
   */
  let deliveredBytes = 0;
  /** free chunks (at most POOL_MAX) */
  const pool: Buffer[] = [];
  const newChunk = (): Chunk => ({ buf: pool.pop() ?? Buffer.allocUnsafeSlow(CHUNK), pending: 0, retired: false });
  const release = (c: Chunk) => {
    if (pool.length < POOL_MAX) pool.push(c.buf);
  };
  /**
   * What the kernel accepted on the current connection (the last REPLAY_BYTES of it).
   * A chunk's pending count also counts the pieces of it the log holds: it is refilled
   * only once the log lets go of them.
   */
  const replay = new ReplayLog<Chunk>(REPLAY_BYTES, (c) => {
    if (--c.pending === 0 && c.retired) release(c);
  });
  /** the chunk being filled: out.buf[outStart, outLen) is gathered output not yet handed to the socket */
  let out = newChunk();
  let outStart = 0;
  let outLen = 0;
  let wake: (() => void) | null = null;
  const wakeUp = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  /** when a write last completed (or output started to wait for one), for the "blocked" log */
  let lastProgress = Date.now();
  let blockedLogged = false;

  const write = (p: Pending) => {
    if (unflushedBytes === 0) lastProgress = Date.now();
    unflushed.push(p);
    unflushedBytes += p.buf.length;
    const s = socket!;
    s.write(p.buf, (err) => {
      // On error the chunk stays in `unflushed` and is written again after reconnecting.
      if (err || s !== socket) return;
      const done = unflushed.shift()!;
      unflushedBytes -= done.buf.length;
      if (!done.carried) deliveredBytes += done.buf.length;
      const now = Date.now();
      // The log holds the piece (no copy): its chunk is refilled only once the log lets it go.
      replay.append(done.buf, done.carried, now, done.chunk);
      lastProgress = now;
      if (blockedLogged) {
        blockedLogged = false;
        log.info({ address, queuedBytes: unflushedBytes }, `output to ${address} is moving again`);
      }
      if (unflushedBytes < HIGH_WATER / 2) wakeUp();
    });
  };

  /** Hands the socket what was gathered since the last flush: a view of the chunk, no copy. */
  const flushOut = () => {
    if (outLen === outStart) return;
    out.pending++;
    write({ buf: out.buf.subarray(outStart, outLen), carried: false, chunk: out });
    outStart = outLen;
  };

  /**
   * Starts a new chunk: the current one is flushed and retired, and goes back to the pool
   * when its last write succeeds. A chunk is retired only for an output that does not fit
   * in what is left of it, and outputs of more than CHUNK / 2 are never gathered, so a
   * retired chunk is at least half full: the chunks held by writes in flight stay within
   * about twice the bytes in flight plus two chunks.
   */
  const nextChunk = () => {
    flushOut();
    out.retired = true;
    if (out.pending === 0) release(out);
    out = newChunk();
    outStart = outLen = 0;
  };

  /**
   * Each ring message holds whole encoder outputs (the workers gather whole outputs
   * per frame and send a big one alone), and it is copied whole into one chunk: so
   * every chunk written starts and ends at an output boundary, which is what lets a
   * replay start at a whole output.
   */
  const onMessage = (_tag: number, bytes: Uint8Array, off: number, len: number) => {
    if (len > CHUNK / 2) {
      flushOut();
      write({ buf: Buffer.from(bytes.subarray(off, off + len)), carried: false, chunk: null });
      return;
    }
    if (outLen + len > CHUNK) nextChunk();
    copyBytes(bytes, off, off + len, out.buf, outLen);
    outLen += len;
  };
  const readers = init.rings.map((sab) => new ChannelReader(new RingReader(sab), onMessage));
  const ringsEmpty = () => !readers.some((r) => r.hasData());

  const blockedTimer = setInterval(
    () => {
      if (!connected || blockedLogged || unflushedBytes === 0) return;
      const ms = Date.now() - lastProgress;
      if (ms < BLOCKED_LOG_MS) return;
      blockedLogged = true;
      log.warn(
        { address, queuedBytes: unflushedBytes, blockedMs: ms },
        `output to ${address} blocked for ${(ms / 1000).toFixed(1)} s: the receiver is not reading; ${unflushedBytes} bytes queued (the workers are held back until it reads)`,
      );
    },
    Math.min(1000, BLOCKED_LOG_MS),
  );
  blockedTimer.unref();

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
      connectedAt = Date.now();
      if (attempt > 0) log.info(`connected to ${address}`);
      // Re-send first what the kernel accepted on the broken connection (it may not have
      // been read), then what was never accepted, in order. Both start at output boundaries.
      const r = replay.take(brokeAt, SETTLE_MS);
      const again: Pending[] = [
        ...r.chunks.map((buf) => ({ buf, carried: true, chunk: null })),
        ...unflushed.splice(0),
      ];
      const owed = unflushedBytes;
      if (counters && everConnected) {
        counters[SINK_RECONNECTS]++;
        counters[SINK_REPLAYED_BYTES] += r.bytes + owed;
      }
      everConnected = true;
      unflushedBytes = 0;
      if (r.bytes + owed > 0) {
        log.info(
          { address, replayBytes: r.bytes, unflushedBytes: owed, settledBytes: r.settled },
          `re-sending ${r.bytes} bytes the broken connection may not have delivered, then ${owed} never written`,
        );
      }
      lastProgress = Date.now();
      for (const p of again) write(p);
      wakeUp();
    });
    s.on("error", (err) => {
      if (attempt === 0 || attempt % 20 === 0) {
        log.warn({ err: err.message, attempt }, `cannot write to ${address} (${err.message}); retrying`);
      }
    });
    s.on("close", () => {
      const was = connected;
      if (was) brokeAt = Date.now();
      connected = false;
      blockedLogged = false;
      if (closing) return;
      if (was) {
        // A connection that broke quickly (a receiver that accepts and drops) backs off
        // further; one that lived starts over with a short delay.
        if (Date.now() - connectedAt >= SETTLE_MS) attempt = 0;
        log.warn(
          { address, unflushedBytes, replayableBytes: replay.kept },
          `connection to ${address} lost; reconnecting (up to ${replay.kept} bytes to re-send, ${unflushedBytes} to write again)`,
        );
      }
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
        status.setIdle(!connected && unflushedBytes === 0 && outLen === outStart && ringsEmpty());
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 200);
        });
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
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 5);
        });
        continue;
      }
      await status.sleepIdle(bell, ringsEmpty);
    }
  };
  void loop();

  control.on("message", (msg: ToIo) => {
    if (msg.type === "close" && !closing) {
      closing = true;
      clearInterval(blockedTimer);
      wakeUp();
      const s = socket;
      // Bounded: a receiver that does not read would hold the close (and the stop) forever.
      let answered = false;
      const answer = () => {
        if (answered) return;
        answered = true;
        const held = unflushedBytes + outLen - outStart;
        if (held > 0) {
          log.error(
            { deliveredBytes, heldBytes: held },
            `closing with ${held} bytes of output not accepted by ${init.host}:${init.port}`,
          );
          s?.destroy();
        }
        control.postMessage({ type: "closed", deliveredBytes } satisfies FromIo);
      };
      if (s && connected) {
        s.end(answer);
        setTimeout(answer, CLOSE_WAIT_MS);
      } else {
        s?.destroy();
        if (replay.kept > 0) {
          // Not counted as undelivered (they were written), but they may not have been read.
          log.warn(
            { address, replayableBytes: replay.kept },
            `stopping while ${address} is away: the last ${replay.kept} bytes written before its connection broke may not have been read, and are not re-sent`,
          );
        }
        answer();
      }
    }
  });
}
