/**
 * Rate limit for log lines that a peer can cause at will (one per connection
 * accepted, closed, reset...): 108 k connections once wrote 53.8 MB of log. Each
 * kind of line gets `perWindow` lines per window; the rest are counted, and one
 * summary line per kind and window says how many were suppressed, so the count
 * in the log stays exact (lines shown + suppressed = events).
 */
import type { Logger } from "../core/log.js";

type Level = "info" | "warn" | "error";

interface Kind {
  windowStart: number;
  shown: number;
  suppressed: number;
  level: Level;
}

export class LineLimiter {
  private readonly kinds = new Map<string, Kind>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 10,
    private readonly windowMs = 1000,
  ) {
    this.timer = setInterval(() => this.flush(false), windowMs);
    this.timer.unref();
  }

  /** Logs the line unless `kind` already used its lines in this window. */
  line(kind: string, level: Level, obj: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    let k = this.kinds.get(kind);
    if (k === undefined) {
      k = { windowStart: now, shown: 0, suppressed: 0, level };
      this.kinds.set(kind, k);
    } else if (now - k.windowStart >= this.windowMs) {
      this.summarize(kind, k);
      k.windowStart = now;
      k.shown = 0;
    }
    if (k.shown < this.perWindow) {
      k.shown++;
      this.log[level](obj, msg);
    } else {
      k.suppressed++;
    }
  }

  /** Writes the summaries of windows that ended (all of them when `all`, e.g. at stop). */
  flush(all: boolean): void {
    const now = Date.now();
    for (const [kind, k] of this.kinds) {
      if (all || now - k.windowStart >= this.windowMs) {
        this.summarize(kind, k);
        if (k.shown === 0) this.kinds.delete(kind);
        else {
          k.windowStart = now;
          k.shown = 0;
        }
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush(true);
  }

  private summarize(kind: string, k: Kind): void {
    if (k.suppressed === 0) return;
    const n = k.suppressed;
    k.suppressed = 0;
    this.log[k.level]({ kind, suppressed: n }, `suppressed ${n} similar lines (${kind})`);
  }
}
