/**
 * `wallaroo send`: feeds a running engine's TCP source with framed messages, as
 * Wallaroo's Giles sender did.
 *
 * Speed comes from doing the framing once: every frame of the file is laid out
 * in one Buffer and the hot loop only writes slices of it, waiting for 'drain'
 * whenever the kernel buffer is full.
 *
 * The small flag helpers at the bottom are shared with receive.ts.
 */

import { readFileSync } from "node:fs";
import net from "node:net";
import type { Writable } from "node:stream";
import type { ParseArgsConfig } from "node:util";
import type { LengthFormat } from "../core/struct.js";
import { maxPayload, writeFrame } from "../core/framing.js";
import { UsageError, formatMB, intFlag, lengthFormatFromFlags, numberFlag, parseFlags } from "./flags.js";
import { watchLauncher } from "./launcher-watch.js";

const HELP = `wallaroo send - send framed messages (or lines) to a wallaroo TCP source

Usage:
  wallaroo send --port P (--file F [--lines] | --binary F --record-size N) [flags]

Reads a file once, frames every message as a length header followed by the
payload (or, with --lines, sends each line as a line), and writes them to
HOST:PORT as fast as the engine accepts them (or at --rate). Connecting is
retried until the engine is up.

Input (one is required):
  --file F              text file; each line, without its '\\n', is one message
                        (empty lines are sent as empty messages)
  --binary F            binary file of fixed-size records, one message each
  --record-size N       record size in bytes (required with --binary)
  --pre-framed          the --binary records already start with their length
                        header (Giles --binary files, e.g. Wallaroo's
                        market-spread .msg data): send them unchanged
  --lines               send the --file's lines newline-delimited, not framed,
                        for a source with { framing: "lines" } (a last line
                        without '\n' gets one)

Where:
  --host H              engine host (default 127.0.0.1)
  --port P              engine source port (required)
  --connections C       open C connections (default 1); chunks of messages are
                        handed to whichever connection is ready, so the order
                        of messages is kept within each connection but not
                        across connections
  --connect-timeout S   keep retrying to connect for S seconds (default 30)

How much and how fast:
  --messages N          stop after N messages in total (default: the whole file)
  --repeat              start over at the end of the file; without --messages,
                        send until interrupted (Ctrl-C prints the summary)
  --rate R              at most R messages per second (default: unlimited)
  --batch-bytes B       bytes per socket write (default 65536)

Framing (must match the application's decoder; not with --lines):
  --header-length L     header size: 1, 2, 4 or 8 bytes (default 4)
  --length-fmt F        Python struct format of the header (default '>I';
                        with only --header-length, big-endian unsigned)

Output:
  --no-progress         do not print the per-second progress to stderr
  --no-exit-with-parent keep sending when the process that started this one
                        (also through npx, npm or sh -c) exits; by default it
                        stops then, as on Ctrl-C
  --help                show this help

A summary line (messages, bytes, seconds, messages/s) goes to stderr at the end.
Exit status: 0 on success, 1 if the engine cannot be reached or a connection
fails, 2 for a bad flag.

Example:
  wallaroo send --port 7010 --file words.txt --repeat --messages 1000000 \\
      --rate 50000 --connections 2
`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  file: { type: "string" },
  binary: { type: "string" },
  "record-size": { type: "string" },
  "pre-framed": { type: "boolean" },
  lines: { type: "boolean" },
  messages: { type: "string" },
  repeat: { type: "boolean" },
  rate: { type: "string" },
  connections: { type: "string" },
  "connect-timeout": { type: "string" },
  "header-length": { type: "string" },
  "length-fmt": { type: "string" },
  "batch-bytes": { type: "string" },
  "no-progress": { type: "boolean" },
  "no-exit-with-parent": { type: "boolean" },
  help: { type: "boolean" },
} satisfies ParseArgsConfig["options"];

export interface SendOptions {
  host: string;
  port: number;
  /** the frames to send, laid out back to back */
  frames: Frames;
  /** messages in total; Infinity with `repeat` sends until `signal` aborts */
  messages: number;
  repeat: boolean;
  /** messages per second; Infinity for unlimited */
  rate: number;
  connections: number;
  connectTimeoutMs: number;
  batchBytes: number;
  progress: boolean;
  signal?: AbortSignal;
}

export interface SendResult {
  messages: number;
  bytes: number;
  seconds: number;
}

/** All frames of the input, concatenated; frame i is `buf[offsets[i] .. offsets[i+1])`. */
export interface Frames {
  buf: Buffer;
  offsets: Float64Array;
  count: number;
}

export interface CliIo {
  stdout?: Writable;
  stderr?: Writable;
}

/** Runs `wallaroo send ARGV`; resolves to the exit status. */
export async function sendMain(argv: string[], io: CliIo = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  let opts: SendOptions & { exitWithParent: boolean };
  try {
    const parsed = parseSendArgs(argv);
    if (parsed === "help") {
      (io.stdout ?? process.stdout).write(HELP);
      return 0;
    }
    opts = parsed;
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    stderr.write(`wallaroo send: ${e.message}\n`);
    return 2;
  }

  // Ctrl-C ends an endless --repeat; what was sent is still summarised.
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const unwatch = opts.exitWithParent
    ? watchLauncher((what) => {
        stderr.write(`wallaroo send: ${what}: stopping (--no-exit-with-parent keeps it going)\n`);
        abort.abort();
      })
    : () => {};
  try {
    const r = await send({ ...opts, signal: abort.signal }, stderr);
    const rate = r.seconds > 0 ? r.messages / r.seconds : 0;
    stderr.write(
      `sent ${r.messages} messages, ${r.bytes} bytes in ${r.seconds.toFixed(3)} s ` +
        `(${Math.round(rate)} msgs/s, ${formatMB(r.bytes / Math.max(r.seconds, 1e-9))}/s)\n`,
    );
    return 0;
  } catch (e) {
    stderr.write(`wallaroo send: ${(e as Error).message}\n`);
    return 1;
  } finally {
    unwatch();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function parseSendArgs(argv: string[]): (SendOptions & { exitWithParent: boolean }) | "help" {
  const v = parseFlags("send", argv, OPTIONS);
  if (v.help) return "help";
  const port = intFlag("port", v.port, 1, 65535);
  if (port === undefined) throw new UsageError("--port is required (the port the engine's TCP source listens on)");
  if ((v.file === undefined) === (v.binary === undefined)) {
    throw new UsageError("give exactly one of --file (text, one message per line) or --binary (fixed-size records)");
  }
  const recordSize = intFlag("record-size", v["record-size"], 1);
  if (v.binary !== undefined && recordSize === undefined)
    throw new UsageError("--binary needs --record-size N (bytes per record)");
  if (v.binary === undefined && recordSize !== undefined)
    throw new UsageError("--record-size only applies to --binary");
  if (v["pre-framed"] && v.binary === undefined) throw new UsageError("--pre-framed only applies to --binary");
  if (v.lines && v.file === undefined)
    throw new UsageError("--lines only applies to --file (text, one message per line)");
  if (v.lines && (v["header-length"] !== undefined || v["length-fmt"] !== undefined))
    throw new UsageError("--header-length and --length-fmt do not apply with --lines (lines have no length header)");

  const lf = lengthFormatFromFlags(v["header-length"], v["length-fmt"]);
  const messages = intFlag("messages", v.messages, 1);
  const repeat = v.repeat === true;
  const rate = numberFlag("rate", v.rate) ?? Infinity;
  const frames =
    v.file !== undefined
      ? v.lines
        ? newlineLines(readInput("file", v.file))
        : frameLines(readInput("file", v.file), lf)
      : frameRecords(readInput("binary", v.binary!), recordSize!, lf, v["pre-framed"] === true);
  return {
    host: v.host ?? "127.0.0.1",
    port,
    frames,
    messages: messages ?? (repeat ? Infinity : frames.count),
    repeat,
    rate,
    connections: intFlag("connections", v.connections, 1, 1024) ?? 1,
    connectTimeoutMs: (numberFlag("connect-timeout", v["connect-timeout"]) ?? 30) * 1000,
    batchBytes: intFlag("batch-bytes", v["batch-bytes"], 1) ?? 65536,
    progress: !v["no-progress"],
    exitWithParent: !v["no-exit-with-parent"],
  };
}

function readInput(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read --${flag} ${path}: ${(e as Error).message}`);
  }
}

/** Frames each '\n'-terminated line (a last line without '\n' counts too). */
export function frameLines(text: Buffer, lf: LengthFormat): Frames {
  const ends: number[] = [];
  for (let i = text.indexOf(10); i !== -1; i = text.indexOf(10, i + 1)) ends.push(i);
  if (ends.length === 0 || ends[ends.length - 1] !== text.length - 1) {
    if (text.length > 0) ends.push(text.length);
  }
  if (ends.length === 0) throw new UsageError("--file is empty: there is no line to send");
  const max = maxPayload(lf);
  const offsets = new Float64Array(ends.length + 1);
  let start = 0;
  let total = 0;
  for (let k = 0; k < ends.length; k++) {
    const len = ends[k] - start;
    if (len > max)
      throw new UsageError(`line ${k + 1} is ${len} bytes, more than --length-fmt '${lf.fmt}' can announce (${max})`);
    offsets[k] = total;
    total += lf.size + len;
    start = ends[k] + 1;
  }
  offsets[ends.length] = total;
  const buf = Buffer.allocUnsafe(total);
  start = 0;
  for (let k = 0; k < ends.length; k++) {
    writeFrame(lf, buf, offsets[k], text, start, ends[k]);
    start = ends[k] + 1;
  }
  return { buf, offsets, count: ends.length };
}

/**
 * The lines of `text` as they are, each with its '\n' (a last line without one gets
 * one): the "frames" of --lines, so that batches, --messages and --repeat count lines.
 */
export function newlineLines(text: Buffer): Frames {
  if (text.length === 0) throw new UsageError("--file is empty: there is no line to send");
  const buf = text[text.length - 1] === 10 ? text : Buffer.concat([text, Buffer.from("\n")]);
  const ends: number[] = [];
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) ends.push(i + 1);
  const offsets = new Float64Array(ends.length + 1);
  for (let k = 0; k < ends.length; k++) offsets[k + 1] = ends[k];
  return { buf, offsets, count: ends.length };
}

/** Frames fixed-size records, or with `preFramed` checks that each one already carries its header. */
export function frameRecords(data: Buffer, recordSize: number, lf: LengthFormat, preFramed: boolean): Frames {
  if (data.length === 0) throw new UsageError("--binary file is empty: there is no record to send");
  if (data.length % recordSize !== 0) {
    throw new UsageError(`--binary file is ${data.length} bytes, not a multiple of --record-size ${recordSize}`);
  }
  const count = data.length / recordSize;
  const frameSize = preFramed ? recordSize : lf.size + recordSize;
  const offsets = new Float64Array(count + 1);
  for (let k = 0; k <= count; k++) offsets[k] = k * frameSize;
  if (preFramed) {
    const want = recordSize - lf.size;
    for (let k = 0; k < count; k++) {
      const got = recordSize >= lf.size ? lf.read(data, k * recordSize) : -1;
      if (got !== want) {
        throw new UsageError(
          `record ${k + 1} announces ${got} payload bytes in its '${lf.fmt}' header, but --record-size ${recordSize} ` +
            `leaves ${want}; check --record-size and --length-fmt, or drop --pre-framed`,
        );
      }
    }
    return { buf: data, offsets, count };
  }
  if (recordSize > maxPayload(lf))
    throw new UsageError(`--record-size ${recordSize} is more than --length-fmt '${lf.fmt}' can announce`);
  const buf = Buffer.allocUnsafe(count * frameSize);
  for (let k = 0; k < count; k++) writeFrame(lf, buf, k * frameSize, data, k * recordSize, (k + 1) * recordSize);
  return { buf, offsets, count };
}

/** Sends `opts.messages` frames; progress lines go to `log`. */
export async function send(opts: SendOptions, log: Writable = process.stderr): Promise<SendResult> {
  // A repeated small file is replicated so that one write can still carry a full batch.
  const frames = opts.repeat ? replicate(opts.frames, opts.batchBytes * 4, opts.messages) : opts.frames;
  const connecting = await Promise.allSettled(
    Array.from({ length: opts.connections }, () =>
      connectWithRetry(opts.host, opts.port, opts.connectTimeoutMs, opts.signal),
    ),
  );
  const sockets = connecting.flatMap((c) => (c.status === "fulfilled" ? [c.value] : []));
  const refused = connecting.find((c) => c.status === "rejected");
  if (refused) {
    for (const s of sockets) s.destroy();
    throw refused.reason;
  }
  const cursor = new Cursor(
    frames,
    opts.repeat ? opts.messages : Math.min(opts.messages, frames.count),
    opts.batchBytes,
  );
  const bucket = Number.isFinite(opts.rate) ? new TokenBucket(opts.rate) : undefined;
  let sent = 0;
  let bytes = 0;
  const t0 = performance.now();
  const stop = () => {
    cursor.stop();
    bucket?.close();
  };
  opts.signal?.addEventListener("abort", stop, { once: true });
  if (opts.signal?.aborted) stop();
  let lastSent = 0;
  let lastT = t0;
  const progress = opts.progress
    ? setInterval(() => {
        const now = performance.now();
        log.write(`sent ${sent} messages (${Math.round(((sent - lastSent) * 1000) / (now - lastT))} msgs/s)\n`);
        lastSent = sent;
        lastT = now;
      }, 1000)
    : undefined;
  progress?.unref();

  const pump = async (sock: net.Socket) => {
    for (;;) {
      const allowed = bucket ? await bucket.take(cursor.maxBatch) : Infinity;
      const chunk = cursor.next(allowed);
      if (chunk === undefined) return;
      if (bucket && chunk.count < allowed) bucket.giveBack(allowed - chunk.count);
      sent += chunk.count;
      bytes += chunk.buf.length;
      if (!sock.write(chunk.buf)) await drained(sock);
    }
  };
  try {
    await Promise.all(sockets.map(pump));
    await Promise.all(sockets.map(finish));
  } catch (e) {
    stop();
    // Say how far it got: the user must know what to re-send.
    if (e instanceof Error) {
      e.message +=
        `; ${sent} messages (${bytes} bytes) had been handed to the connection${sockets.length > 1 ? "s" : ""} ` +
        `in ${((performance.now() - t0) / 1000).toFixed(3)} s, the last of them may not have arrived`;
    }
    throw e;
  } finally {
    if (progress) clearInterval(progress);
    bucket?.close();
    opts.signal?.removeEventListener("abort", stop);
    for (const s of sockets) s.destroy();
  }
  return { messages: sent, bytes, seconds: (performance.now() - t0) / 1000 };
}

/** Hands out runs of whole frames, at most `batchBytes` each (a bigger frame goes alone). */
class Cursor {
  private pos = 0;
  private left: number;
  /** an upper bound on the frames one batch can hold, for the token bucket */
  readonly maxBatch: number;

  constructor(
    private readonly frames: Frames,
    total: number,
    private readonly batchBytes: number,
  ) {
    this.left = total;
    let smallest = Infinity;
    for (let i = 0; i < Math.min(frames.count, 1024); i++)
      smallest = Math.min(smallest, frames.offsets[i + 1] - frames.offsets[i]);
    this.maxBatch = Math.max(1, Math.floor(batchBytes / Math.max(smallest, 1)));
  }

  stop(): void {
    this.left = 0;
  }

  next(maxCount: number): { buf: Buffer; count: number } | undefined {
    if (this.left <= 0) return undefined;
    const { offsets, count } = this.frames;
    const i = this.pos;
    let j = Math.min(count, i + Math.min(this.left, maxCount));
    // The last frame index j whose end stays within the batch budget.
    const limit = offsets[i] + this.batchBytes;
    if (offsets[j] > limit) {
      let lo = i + 1;
      let hi = j;
      while (lo < hi) {
        const mid = (lo + hi + 1) >>> 1;
        if (offsets[mid] <= limit) lo = mid;
        else hi = mid - 1;
      }
      j = lo;
    }
    this.left -= j - i;
    this.pos = j === count ? 0 : j;
    return { buf: this.frames.buf.subarray(offsets[i], offsets[j]), count: j - i };
  }
}

function replicate(frames: Frames, minBytes: number, messages: number): Frames {
  const bytes = frames.offsets[frames.count];
  const copies = Math.max(1, Math.min(Math.ceil(minBytes / bytes), Math.ceil(messages / frames.count)));
  if (copies === 1) return frames;
  const buf = Buffer.allocUnsafe(bytes * copies);
  const offsets = new Float64Array(frames.count * copies + 1);
  for (let c = 0; c < copies; c++) {
    frames.buf.copy(buf, c * bytes, 0, bytes);
    for (let k = 0; k < frames.count; k++) offsets[c * frames.count + k] = c * bytes + frames.offsets[k];
  }
  offsets[frames.count * copies] = bytes * copies;
  return { buf, offsets, count: frames.count * copies };
}

/**
 * Refilled every 10 ms from the clock rather than by per-message timers, so a high
 * rate costs a timer tick, not a timer per message. Bursts are capped at 100 ms worth.
 */
class TokenBucket {
  private tokens = 0;
  private last = performance.now();
  private readonly cap: number;
  private waiting: { want: number; resolve: (n: number) => void }[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly rate: number) {
    this.cap = Math.max(1, rate / 10);
  }

  /** Resolves to a grant of 1..want messages, or to `want` once closed (the cursor is then empty). */
  take(want: number): Promise<number> {
    this.refill();
    if (this.closed) return Promise.resolve(want);
    if (this.tokens >= 1 && this.waiting.length === 0) return Promise.resolve(this.grant(want));
    return new Promise((resolve) => {
      this.waiting.push({ want, resolve });
      this.timer ??= setInterval(() => this.serve(), 10);
    });
  }

  giveBack(n: number): void {
    this.tokens = Math.min(this.cap, this.tokens + n);
  }

  close(): void {
    this.closed = true;
    this.serve();
  }

  private grant(want: number): number {
    const n = Math.min(want, Math.floor(this.tokens));
    this.tokens -= n;
    return n;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.cap, this.tokens + ((now - this.last) * this.rate) / 1000);
    this.last = now;
  }

  private serve(): void {
    this.refill();
    while (this.waiting.length > 0 && (this.closed || this.tokens >= 1)) {
      const w = this.waiting.shift()!;
      w.resolve(this.closed ? w.want : this.grant(w.want));
    }
    if (this.waiting.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

const RETRYABLE = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN"]);

/** The engine may still be starting: retry with backoff for up to `timeoutMs`. */
async function connectWithRetry(
  host: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<net.Socket> {
  const deadline = Date.now() + timeoutMs;
  let delay = 25;
  for (;;) {
    try {
      return await connectOnce(host, port);
    } catch (e) {
      const why = (e as Error).message;
      if (signal?.aborted) throw new Error(`interrupted while connecting to ${host}:${port}`);
      if (!RETRYABLE.has((e as NodeJS.ErrnoException).code ?? ""))
        throw new Error(`cannot connect to ${host}:${port}: ${why}`);
      if (Date.now() + delay > deadline) {
        throw new Error(
          `cannot connect to ${host}:${port} within ${timeoutMs / 1000} s (${why}); ` +
            `is the engine running with a TCP source there? (--connect-timeout sets the wait)`,
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 500);
    }
  }
}

function connectOnce(host: string, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port, noDelay: true });
    const onError = (e: Error) => {
      sock.destroy();
      reject(e);
    };
    sock.once("error", onError);
    sock.once("connect", () => {
      sock.off("error", onError);
      // Kept: a destroyed socket no longer knows its peer, and errors must name it.
      (sock as SocketWithError).peer = `${sock.remoteAddress ?? host}:${sock.remotePort ?? port}`;
      // Kept for the socket's life so a reset between writes is seen, not thrown as uncaught.
      sock.on("error", (e) => ((sock as SocketWithError).failure ??= e));
      // Whatever the peer sends is not ours to read, but must not fill our receive buffer.
      sock.resume();
      resolve(sock);
    });
  });
}

type SocketWithError = net.Socket & { failure?: Error; peer?: string };

function drained(sock: net.Socket): Promise<void> {
  const failure = (sock as SocketWithError).failure;
  if (failure || sock.destroyed) return Promise.reject(connectionLost(sock, failure));
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      sock.off("drain", onDrain);
      sock.off("close", onClose);
      if (e) reject(connectionLost(sock, e));
      else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done((sock as SocketWithError).failure ?? new Error("closed by the peer"));
    sock.on("drain", onDrain);
    sock.on("close", onClose);
  });
}

/** Flushes and half-closes; waits briefly for the peer to close so no unread data turns into a reset. */
async function finish(sock: net.Socket): Promise<void> {
  const failure = (sock as SocketWithError).failure;
  if (failure) throw connectionLost(sock, failure);
  await new Promise<void>((resolve, reject) => {
    sock.end(() => {
      const f = (sock as SocketWithError).failure;
      if (f) reject(connectionLost(sock, f));
      else resolve();
    });
  });
  if (sock.closed) return;
  await new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 2000);
    sock.once("close", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

function connectionLost(sock: net.Socket, e: Error | undefined): Error {
  const peer =
    (sock as SocketWithError).peer ?? (sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : "the engine");
  return new Error(`connection to ${peer} lost: ${e?.message ?? "closed by the peer"}`);
}
