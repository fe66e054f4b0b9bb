/**
 * Logging for every thread: pino, JSON lines on stderr (stdout stays free for
 * data, as with `wallaroo receive --output -`). Synchronous so that a line
 * logged just before a crash or exit is not lost.
 */
import pino from "pino";

export type Logger = pino.Logger;

const destination = pino.destination({ dest: 2, sync: true });

export function createLogger(name: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ name, level: process.env.WALLAROO_LOG_LEVEL ?? "info", base: { ...bindings } }, destination);
}

/**
 * Logs the first error of each kind at once, then at most one line per interval
 * with how many were suppressed: a bad stream must not flood the log.
 */
export class RateLimitedErrors {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  constructor(private readonly log: Logger, private readonly intervalMs = 1000) {}

  report(where: string, err: unknown, extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    const entry = this.last.get(where);
    if (entry && now - entry.at < this.intervalMs) {
      entry.suppressed++;
      return;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.last.set(where, { at: now, suppressed: 0 });
    this.log.error({ where, err: errorInfo(err), suppressedSinceLast: suppressed, ...extra }, `error in ${where}: ${errorMessage(err)}`);
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorInfo(err: unknown): unknown {
  return err instanceof Error ? { type: err.name, message: err.message, stack: err.stack } : err;
}
