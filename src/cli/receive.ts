/**
 * `wallaroo receive`: the other end of a wallaroo TCP sink, as Wallaroo's Giles
 * receiver was. It listens, accepts any number of connections, and writes or
 * counts what arrives. `startReceiver` is the same thing as a library, for tests
 * and benchmarks.
 */

import { createWriteStream } from "node:fs";
import net from "node:net";
import type { Writable } from "node:stream";
import type { LengthFormat } from "../core/struct.js";
import { FrameReader, LineReader } from "../core/framing.js";
import { UsageError, formatMB, intFlag, lengthFormatFromFlags, numberFlag, parseFlags } from "./flags.js";
import type { CliIo } from "./send.js";
import { watchLauncher } from "./launcher-watch.js";

const HELP = `wallaroo receive - receive what a wallaroo TCP sink sends

Usage:
  wallaroo receive --port P [flags]

Listens on HOST:PORT (the address given to the application's TCPSinkConfig),
accepts any number of connections, and writes every byte that arrives to a file
or stdout, or only counts. Counting is by line ('\\n') unless --framed says the
stream is length-header framed. A rate goes to stderr every second; the first
stderr line is always "listening on HOST:PORT". Ctrl-C (or SIGTERM) closes,
prints the summary and exits 0.

Where:
  --host H              address to listen on (default 127.0.0.1)
  --port P              port to listen on (required; 0 picks a free one)

What to do with the data (default: --count-only):
  --output FILE|-       write everything to FILE (emptied first), or to stdout
                        with -; bytes from several connections are interleaved
                        by chunk
  --append              add to the end of --output FILE instead of emptying it
  --count-only          only count bytes and messages or lines

Framing:
  --framed              the stream is framed like a wallaroo TCP source expects:
                        count messages instead of lines
  --lines               the stream is newline-delimited messages: count lines,
                        and a connection's last line without '\n' too (the
                        default counts '\n's)
  --header-length L     header size: 1, 2, 4 or 8 bytes (default 4, --framed only)
  --length-fmt F        Python struct format of the header (default '>I', --framed only)

When to stop (default: on Ctrl-C):
  --expect N            exit 0 once N messages (--framed) or N lines have arrived
  --idle-timeout S      exit once S seconds pass without data, after some arrived;
                        exit 1 if --expect was given and not reached

Output:
  --no-progress         do not print the per-second rate
  --no-exit-with-parent keep listening when the process that started this one
                        (also through npx, npm or sh -c) exits; by default it
                        stops then, as on Ctrl-C
  --help                show this help

Exit status: 0 when done, 1 on an I/O error or a missed --expect, 2 for a bad flag.

Example:
  wallaroo receive --port 7002 --framed --expect 1000000 --idle-timeout 10
`;

const OPTIONS = {
  host: { type: "string" },
  port: { type: "string" },
  output: { type: "string" },
  append: { type: "boolean" },
  "count-only": { type: "boolean" },
  framed: { type: "boolean" },
  lines: { type: "boolean" },
  "header-length": { type: "string" },
  "length-fmt": { type: "string" },
  expect: { type: "string" },
  "idle-timeout": { type: "string" },
  "no-progress": { type: "boolean" },
  "no-exit-with-parent": { type: "boolean" },
  help: { type: "boolean" },
} as const;

export interface ReceiverOptions {
  /** default "127.0.0.1" */
  host?: string;
  /** default 0: a free port */
  port?: number;
  /** where the bytes go: a file path (created or truncated) or a stream (left open on close); absent: count only */
  output?: string | Writable;
  /** a file output is emptied first unless this is true */
  append?: boolean;
  /** count length-header frames instead of lines */
  framed?: boolean;
  /** header format when framed (default 4 bytes, '>I') */
  lengthFormat?: LengthFormat;
  /**
   * split lines (not with framed): a connection's last line without '\n' counts too, and
   * onMessage gets each line without its '\n' (nor a '\r' before it)
   */
  lines?: boolean;
  /** each complete frame (framed) or line (lines); `payload` may be a view of the socket's buffer, copy it to keep it */
  onMessage?: (payload: Buffer, connection: number) => void;
  /** a connection failed or sent a bad frame header; it is closed, the others go on (default: ignored) */
  onError?: (err: Error) => void;
}

export interface ReceiverStats {
  bytes: number;
  /** frames when framed, else lines */
  messages: number;
  unit: "messages" | "lines";
  connections: number;
  openConnections: number;
  /** performance.now() of the first and the last data, undefined before any */
  firstDataAt?: number;
  lastDataAt?: number;
}

export interface Receiver {
  readonly host: string;
  readonly port: number;
  stats(): ReceiverStats;
  /** resolves once `count` messages (framed) or lines have arrived */
  until(count: number): Promise<ReceiverStats>;
  /** stops listening, drops the connections, flushes and closes a file output */
  close(): Promise<ReceiverStats>;
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<Receiver> {
  if (opts.framed && opts.lines) throw new UsageError("a stream is either framed or lines, not both");
  const lf = opts.framed ? (opts.lengthFormat ?? lengthFormatFromFlags(undefined, undefined)) : undefined;
  const output = typeof opts.output === "string" ? await openFile(opts.output, opts.append === true) : opts.output;
  const ownsOutput = typeof opts.output === "string";
  const st: ReceiverStats = {
    bytes: 0,
    messages: 0,
    unit: lf ? "messages" : "lines",
    connections: 0,
    openConnections: 0,
  };
  const sockets = new Set<net.Socket>();
  const waiters: { count: number; resolve: (s: ReceiverStats) => void }[] = [];
  let outputBlocked = false;

  const server = net.createServer((sock) => {
    const id = st.connections++;
    st.openConnections++;
    sockets.add(sock);
    const framer = lf ? new FrameReader(lf, opts.onMessage && ((p) => opts.onMessage!(p, id))) : undefined;
    const liner = opts.lines ? new LineReader(opts.onMessage && ((p) => opts.onMessage!(p, id))) : undefined;
    const counted = () => {
      while (waiters.length > 0 && st.messages >= waiters[0].count) waiters.shift()!.resolve(snapshot());
    };
    if (liner)
      sock.on("end", () => {
        st.messages += liner.end();
        counted();
      });
    sock.on("data", (chunk: Buffer) => {
      const now = performance.now();
      st.firstDataAt ??= now;
      st.lastDataAt = now;
      st.bytes += chunk.length;
      if (framer) {
        try {
          st.messages += framer.push(chunk);
        } catch (e) {
          opts.onError?.(new Error(`connection ${sock.remoteAddress}:${sock.remotePort}: ${(e as Error).message}`));
          sock.destroy();
        }
      } else if (liner) {
        st.messages += liner.push(chunk);
      } else {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) st.messages++;
      }
      if (output && !output.write(chunk) && !outputBlocked) {
        // A slow output holds every connection back rather than buffering without bound.
        outputBlocked = true;
        for (const s of sockets) s.pause();
        output.once("drain", () => {
          outputBlocked = false;
          for (const s of sockets) s.resume();
        });
      }
      counted();
    });
    if (outputBlocked) sock.pause();
    sock.on("error", (e) =>
      opts.onError?.(new Error(`connection ${sock.remoteAddress}:${sock.remotePort}: ${e.message}`)),
    );
    sock.on("close", () => {
      st.openConnections--;
      sockets.delete(sock);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  const snapshot = (): ReceiverStats => ({ ...st });
  let closing: Promise<ReceiverStats> | undefined;

  return {
    host: addr.address,
    port: addr.port,
    stats: snapshot,
    until(count) {
      if (st.messages >= count) return Promise.resolve(snapshot());
      return new Promise((resolve) => {
        waiters.push({ count, resolve });
        waiters.sort((a, b) => a.count - b.count);
      });
    },
    close() {
      closing ??= (async () => {
        const closed = new Promise((r) => server.close(r));
        for (const s of sockets) s.destroy();
        await closed;
        if (ownsOutput && output) await new Promise((r) => output.end(r));
        return snapshot();
      })();
      return closing;
    },
  };
}

function openFile(path: string, append: boolean): Promise<Writable> {
  return new Promise((resolve, reject) => {
    const f = createWriteStream(path, { flags: append ? "a" : "w" });
    f.once("error", (e) => reject(new UsageError(`cannot open --output ${path}: ${e.message}`)));
    f.once("open", () => resolve(f));
  });
}

/** Runs `wallaroo receive ARGV`; resolves to the exit status. */
export async function receiveMain(argv: string[], io: CliIo = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  const stdout = io.stdout ?? process.stdout;
  let cfg: ReturnType<typeof parseReceiveArgs>;
  let receiver: Receiver;
  try {
    cfg = parseReceiveArgs(argv);
    if (cfg === "help") {
      stdout.write(HELP);
      return 0;
    }
    receiver = await startReceiver({
      ...cfg.receiver,
      output: cfg.output === "-" ? stdout : cfg.output,
      append: cfg.append,
      onError: (e) => stderr.write(`wallaroo receive: ${e.message}\n`),
    });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err instanceof UsageError) {
      stderr.write(`wallaroo receive: ${err.message}\n`);
      return 2;
    }
    if (err.code === "EADDRINUSE" || err.code === "EADDRNOTAVAIL" || err.code === "EACCES") {
      stderr.write(`wallaroo receive: cannot listen: ${err.message}\n`);
      return 1;
    }
    throw e;
  }
  const { expect, idleTimeoutS, progress, exitWithParent } = cfg;
  stderr.write(`listening on ${receiver.host}:${receiver.port}\n`);

  const timers: NodeJS.Timeout[] = [];
  let onSignal = () => {};
  let unwatch = () => {};
  const outcome = await new Promise<"expected" | "idle" | "signal">((resolve) => {
    if (expect !== undefined) void receiver.until(expect).then(() => resolve("expected"));
    onSignal = () => resolve("signal");
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    if (exitWithParent) {
      unwatch = watchLauncher((what) => {
        stderr.write(`wallaroo receive: ${what}: stopping (--no-exit-with-parent keeps it listening)\n`);
        resolve("signal");
      });
    }
    if (idleTimeoutS !== undefined) {
      timers.push(
        setInterval(
          () => {
            const last = receiver.stats().lastDataAt;
            if (last !== undefined && performance.now() - last >= idleTimeoutS * 1000) resolve("idle");
          },
          Math.min(100, idleTimeoutS * 250),
        ),
      );
    }
    if (progress) {
      let prev = receiver.stats();
      let prevT = performance.now();
      timers.push(
        setInterval(() => {
          const s = receiver.stats();
          const now = performance.now();
          const dt = (now - prevT) / 1000;
          stderr.write(
            `received ${s.messages} ${s.unit} (${Math.round((s.messages - prev.messages) / dt)}/s), ` +
              `${formatMB(s.bytes)} (${formatMB((s.bytes - prev.bytes) / dt)}/s), ${s.openConnections} connections\n`,
          );
          prev = s;
          prevT = now;
        }, 1000),
      );
    }
  });
  for (const t of timers) clearInterval(t);
  unwatch();
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);

  const s = await receiver.close();
  const seconds = s.firstDataAt === undefined ? 0 : (s.lastDataAt! - s.firstDataAt) / 1000;
  // Everything in one chunk (or nothing) has no duration to divide by: say so rather than print a rate of 0.
  const rate =
    seconds > 0
      ? `first to last data; ${Math.round(s.messages / seconds)} ${s.unit}/s, ${formatMB(s.bytes / seconds)}/s`
      : s.bytes > 0
        ? "all of it in one read: too fast to measure a rate"
        : "nothing arrived";
  stderr.write(
    `received ${s.messages} ${s.messages === 1 ? s.unit.replace(/s$/, "") : s.unit}, ${s.bytes} bytes over ` +
      `${s.connections} connection${s.connections === 1 ? "" : "s"} in ${seconds.toFixed(3)} s (${rate})\n`,
  );
  if (outcome === "idle" && expect !== undefined && s.messages < expect) {
    stderr.write(
      `wallaroo receive: idle for ${idleTimeoutS} s with ${s.messages} of the ${expect} expected ${s.unit}\n`,
    );
    return 1;
  }
  return 0;
}

function parseReceiveArgs(argv: string[]) {
  const v = parseFlags("receive", argv, OPTIONS);
  if (v.help) return "help" as const;
  const port = intFlag("port", v.port, 0, 65535);
  if (port === undefined) throw new UsageError("--port is required (0 picks a free port)");
  if (v.output !== undefined && v["count-only"]) throw new UsageError("give --output or --count-only, not both");
  if (v.framed && v.lines) throw new UsageError("give --framed or --lines, not both");
  if (!v.framed && (v["header-length"] !== undefined || v["length-fmt"] !== undefined)) {
    throw new UsageError("--header-length and --length-fmt only apply with --framed");
  }
  if (v.output === "") throw new UsageError("--output needs a file name, or - for stdout");
  if (v.append && (v.output === undefined || v.output === "-")) throw new UsageError("--append needs --output FILE");
  return {
    receiver: {
      host: v.host ?? "127.0.0.1",
      port,
      framed: v.framed === true,
      lines: v.lines === true,
      lengthFormat: v.framed ? lengthFormatFromFlags(v["header-length"], v["length-fmt"]) : undefined,
    },
    output: v.output,
    append: v.append === true,
    expect: intFlag("expect", v.expect, 1),
    idleTimeoutS: numberFlag("idle-timeout", v["idle-timeout"]),
    progress: !v["no-progress"],
    exitWithParent: !v["no-exit-with-parent"],
  };
}
