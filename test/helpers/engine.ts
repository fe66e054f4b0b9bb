/**
 * Child-process helpers for end-to-end tests: the engine run through the CLI
 * (`node bin/wallaroo.js run ...`) with its pino log collected from stderr, and
 * `wallaroo send` as a child process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = fileURLToPath(new URL("../../bin/wallaroo.js", import.meta.url));
export const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
export const example = (name: string, file = "app.ts") =>
  fileURLToPath(new URL(`../../examples/${name}/${file}`, import.meta.url));

export interface LogLine {
  level?: number;
  msg?: string;
  [k: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Engine {
  readonly child: ChildProcess;
  readonly pid: number;
  /** every stderr line so far, raw */
  stderr(): string;
  /** stderr lines that parsed as JSON */
  logs(): LogLine[];
  /** stderr lines that parsed as JSON (the same array as logs(), growing) */
  readonly lines: LogLine[];
  /** resolves with the first log line (past or future, from index `from` on) matching `pred` */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number, from?: number): Promise<LogLine>;
  readonly exited: Promise<Exit>;
  /** sends the signal and waits for the exit */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<Exit>;
  /** SIGKILL if still running (for finally blocks) */
  kill(): void;
  /** SIGKILL and wait for the exit (a crash) */
  kill9(): Promise<void>;
  /** resident memory of the engine process in bytes */
  rssBytes(): number;
  /** user + system CPU seconds the engine process used so far (Linux /proc) */
  cpuSeconds(): number;
}

const live = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/**
 * Spawns `wallaroo run APP args...` and waits until the engine logs that the
 * application is running (every source listening), unless `waitRunning` is false.
 */
export async function startEngine(
  /** the application file, or several arguments that name it (`["--application-module", "NAME"]`) */
  app: string | string[],
  args: string[],
  opts: {
    waitRunning?: boolean;
    env?: Record<string, string>;
    /** the engine's working directory (default: the repository root) */
    cwd?: string;
    /** how long to wait for "running" (default 30 s; a Python app starts an interpreter per thread) */
    runningTimeoutMs?: number;
    /** RLIMIT_FSIZE of the engine (bash's `ulimit -f`, KiB): a write past it fails with EFBIG, as on a full disk */
    fileSizeLimitKiB?: number;
  } = {},
): Promise<Engine> {
  const argv = [BIN, "run", ...(typeof app === "string" ? [app] : app), "--stats-interval", "0", ...args];
  const [cmd, cmdArgs] =
    opts.fileSizeLimitKiB === undefined
      ? [process.execPath, argv]
      : ["bash", ["-c", `ulimit -f ${opts.fileSizeLimitKiB} && exec "$0" "$@"`, process.execPath, ...argv]];
  const child = spawn(cmd, cmdArgs, {
    cwd: opts.cwd ?? ROOT,
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...opts.env },
  });
  live.add(child);
  let err = "";
  const lines: LogLine[] = [];
  let waiters: (() => void)[] = [];
  let partial = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => {
    err += d;
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop()!;
    for (const p of parts) {
      try {
        lines.push(JSON.parse(p));
      } catch {
        /* not JSON */
      }
    }
    const w = waiters;
    waiters = [];
    w.forEach((f) => f());
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on("exit", (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
      const w = waiters;
      waiters = [];
      w.forEach((f) => f());
    }),
  );
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 20_000, from = 0) =>
    new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching log line within ${timeoutMs} ms; stderr:\n${err.slice(-4000)}`)),
        timeoutMs,
      );
      const check = () => {
        const hit = from > 0 ? lines.slice(from).find(pred) : lines.find(pred);
        if (hit) {
          clearTimeout(timer);
          resolve(hit);
          return;
        }
        if (done) {
          clearTimeout(timer);
          reject(new Error(`engine exited without a matching log line; stderr:\n${err.slice(-4000)}`));
          return;
        }
        waiters.push(check);
      };
      check();
    });
  const engine: Engine = {
    child,
    pid: child.pid!,
    stderr: () => err,
    logs: () => lines,
    lines,
    waitForLog,
    exited,
    stop: async (signal = "SIGTERM", timeoutMs = 40_000) => {
      if (!done) child.kill(signal);
      const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      const e = await exited;
      clearTimeout(t);
      return e;
    },
    kill: () => {
      if (!done) child.kill("SIGKILL");
    },
    kill9: async () => {
      if (!done) child.kill("SIGKILL");
      await exited;
    },
    rssBytes: () => rssBytes(child.pid!),
    cpuSeconds: () => {
      // fields 14 and 15 (utime, stime) of /proc/PID/stat, in clock ticks (100 Hz on Linux)
      const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return (Number(f[11]) + Number(f[12])) / 100;
    },
  };
  if (opts.waitRunning !== false) {
    try {
      await waitForLog(
        (l) => typeof l.msg === "string" && / running on \d+ worker/.test(l.msg),
        opts.runningTimeoutMs ?? 30_000,
      );
    } catch (e) {
      engine.kill();
      throw e;
    }
  }
  return engine;
}

/** Runs `wallaroo send args...` to completion. */
export function send(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, "send", "--no-progress", ...args], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    live.add(child);
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (d: string) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      live.delete(child);
      resolve({ code, stderr });
    });
  });
}

/** Resident set size of a process in bytes (Linux), or -1 once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** Splits a stream of length-prefixed (u32 BE) records into the whole records, header included. */
export function splitFramed(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (bytes.length - pos >= 4) {
    const n = bytes.readUInt32BE(pos);
    if (bytes.length - pos - 4 < n) break;
    out.push(bytes.subarray(pos, pos + 4 + n));
    pos += 4 + n;
  }
  return out;
}

/** Payloads of a file of fixed-size records. */
export function records(file: string, size: number): Buffer[] {
  const b = readFileSync(file);
  const out: Buffer[] = [];
  for (let i = 0; i + size <= b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

/** Payloads of a text file as `wallaroo send --file` sends them (one per line, no trailing empty line). */
export function lines(file: string): Buffer[] {
  const text = readFileSync(file, "utf8");
  const ls = text.split("\n");
  if (ls.length > 0 && ls[ls.length - 1] === "") ls.pop();
  return ls.map((l) => Buffer.from(l, "utf8"));
}

/** Groups items by key, keeping their order. */
export function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const m = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    let g = m.get(k);
    if (!g) m.set(k, (g = []));
    g.push(it);
  }
  return m;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One output line of test/fixtures/e2e-app.ts's tagged pipelines: "CONN SEQ KEY #N". */
export interface TaggedOut {
  conn: string;
  seq: number;
  key: string;
  n: number;
  line: string;
}

export function parseTagged(line: string): TaggedOut {
  const m = /^(\S+) (\d+) (\S*)(?: .*)? #(\d+)$/.exec(line);
  if (!m) throw new Error(`not a tagged output line: ${JSON.stringify(line)}`);
  return { conn: m[1], seq: Number(m[2]), key: m[3], n: Number(m[4]), line };
}

/** Framed "CONN SEQ KEY" messages for seq in [from, to). */
export function taggedMessages(conn: string, from: number, to: number, keys: number): string[] {
  const out: string[] = [];
  for (let s = from; s < to; s++) out.push(`${conn} ${s} k${s % keys}`);
  return out;
}

/**
 * Checks tagged outputs: per key the counts are 1..n in arrival order; per
 * connection and key the sequence numbers increase. Returns the problems found.
 */
export function checkTaggedOrder(outs: TaggedOut[]): string[] {
  const problems: string[] = [];
  const lastN = new Map<string, number>();
  const lastSeq = new Map<string, number>();
  for (const o of outs) {
    const n = lastN.get(o.key) ?? 0;
    if (o.n !== n + 1) problems.push(`key ${o.key}: count ${o.n} after ${n} (${o.line})`);
    lastN.set(o.key, o.n);
    const ck = `${o.conn}/${o.key}`;
    const s = lastSeq.get(ck) ?? -1;
    if (o.seq <= s) problems.push(`${ck}: seq ${o.seq} after ${s}`);
    lastSeq.set(ck, o.seq);
    if (problems.length >= 10) break;
  }
  return problems;
}
