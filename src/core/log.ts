/**
 * Logging for every thread: pino, JSON lines on stderr (stdout stays free for
 * data, as with `wallaroo receive --output -`). Synchronous so that a line
 * logged just before a crash or exit is not lost.
 */
import pino from "pino";
import { fileURLToPath } from "node:url";

export type Logger = pino.Logger;

const stderr = pino.destination({ dest: 2, sync: true });
const files = new Map<string, ReturnType<typeof pino.destination>>();

/**
 * stderr, or the file WALLAROO_LOG_FILE names (appended to). With WALLAROO_LOG_FILE_PID
 * set, the file is used only in the process of that pid (its worker threads share it):
 * a test runner sends the logs of the engines it runs in-process to a file per test,
 * while the engines it spawns, which inherit its environment, still log to stderr,
 * where the tests read them. Read when a logger is created, so a runner may change
 * it between tests.
 */
function destination(): ReturnType<typeof pino.destination> {
  const file = process.env.WALLAROO_LOG_FILE;
  const pid = process.env.WALLAROO_LOG_FILE_PID;
  if (!file || (pid !== undefined && pid !== String(process.pid))) return stderr;
  let d = files.get(file);
  if (d === undefined) files.set(file, (d = pino.destination({ dest: file, sync: true, append: true, mkdir: true })));
  return d;
}

export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  // Our own `err` serializer: pino's standard one types anything that is not an
  // Error instance (a string, the object errorInfo made) as "Object".
  return pino(
    {
      name,
      level: process.env.WALLAROO_LOG_LEVEL ?? "info",
      base: { ...bindings },
      serializers: { err: (e: unknown) => (e instanceof Error ? errorInfo(e) : e) },
    },
    destination(),
  );
}

/**
 * Logs the first error of each kind at once, then at most one line per interval
 * with how many were suppressed: a bad stream must not flood the log.
 */
export class RateLimitedErrors {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  report(where: string, err: unknown, extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    const entry = this.last.get(where);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(where, { at: now, suppressed: 0 });
    this.log.error(
      { where, err: errorInfo(err), suppressedSinceLast: suppressed, ...extra },
      `error in ${where}: ${errorMessage(err)}`,
    );
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  // A thrown plain object ({ code, message }) says more as JSON than as "[object Object]".
  if (err !== null && typeof err === "object") {
    try {
      return JSON.stringify(err);
    } catch {
      return String(err);
    }
  }
  return String(err);
}

/** This package's own code (dist/, src/, bin/), which is never the user's frame. */
const PACKAGE_DIR = fileURLToPath(new URL("../../", import.meta.url));
const OWN_CODE = ["dist/", "src/", "bin/"].map((d) => PACKAGE_DIR + d);

/**
 * `file:line:column` of the first stack frame in the user's code: not in this
 * package, not in node_modules, not a node: internal. What a user needs to find the
 * line that threw (TypeScript apps run through tsx, whose source maps give .ts lines).
 */
export function userFrame(err: unknown): string | undefined {
  const stack = err instanceof Error ? err.stack : undefined;
  if (stack === undefined) return undefined;
  for (const line of stack.split("\n").slice(1)) {
    const m = /^\s*at (?:.*? \()?(.+?:\d+:\d+)\)?\s*$/.exec(line);
    if (m === null) continue;
    let where = m[1]!;
    if (where.startsWith("file://")) {
      try {
        where = fileURLToPath(where.replace(/:\d+:\d+$/, "")) + /:\d+:\d+$/.exec(where)![0];
      } catch {
        continue;
      }
    }
    if (
      where.startsWith("node:") ||
      where.includes("/node_modules/") ||
      OWN_CODE.some((d) => where.startsWith(d)) ||
      !where.startsWith("/")
    )
      continue;
    return where;
  }
  return undefined;
}

/** The message with the user's frame appended: "msg (at /app/src/app.ts:12:5)". */
export function errorWithFrame(err: unknown): string {
  const at = userFrame(err);
  return at === undefined ? errorMessage(err) : `${errorMessage(err)} (at ${at})`;
}

/** What the log records of an error: its class (not "Object"), message, user frame and stack. */
export function errorInfo(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { type: err.name, message: err.message, at: userFrame(err), stack: err.stack };
  return { type: err === null ? "null" : typeof err, message: errorMessage(err) };
}
