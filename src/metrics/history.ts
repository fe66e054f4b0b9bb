/**
 * The dashboard's histories, kept on the coordinator (main thread) by the metrics server:
 * the last checkpoints, the last distinct errors in user code, and the sources' backlog
 * over the last minutes. Each is bounded (a fixed number of entries, each of bounded
 * size), whatever the application does: an error per message, a message of megabytes,
 * an error message that differs every time.
 *
 * Worker side: `errorEntry` makes what a worker sends of one error (with the stack and a
 * preview of the value, both cut to size there, so that a report never carries more).
 */
import type { CheckpointOutcome, CheckpointStats } from "../recovery/checkpoint.js";

/** checkpoints the history keeps */
export const CHECKPOINT_HISTORY = 30;
/** distinct errors (step + message) the history keeps; the least recently seen goes first */
export const ERROR_HISTORY = 25;
/** stack lines kept of an error */
export const ERROR_STACK_LINES = 12;
/** characters kept of an error's message, of its stack, and of its value's preview */
export const ERROR_MESSAGE_CHARS = 500;
export const ERROR_STACK_CHARS = 2000;
export const ERROR_VALUE_CHARS = 200;
/** backlog samples kept (one per dashboard tick: two minutes at the default second) */
export const BACKLOG_POINTS = 120;

/** One error as a worker reports it: defined with the worker's stats message (control/protocol.ts). */
export type { RecentError } from "../control/protocol.js";
import type { RecentError } from "../control/protocol.js";

export function cut(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}… (${s.length - max} more characters)`;
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** A preview of the failing message: raw bytes as UTF-8 text, a value as JSON; never throws. */
export function valuePreview(payload: Uint8Array | undefined, value: unknown): string | null {
  try {
    if (payload !== undefined) {
      // Decode no more than the preview needs: a payload may be megabytes.
      const head = payload.subarray(0, ERROR_VALUE_CHARS * 4);
      const text = utf8.decode(head);
      const more = payload.length - head.length;
      return cut(text, ERROR_VALUE_CHARS) + (more > 0 ? ` (+${more} bytes)` : "");
    }
    if (value === undefined) return null;
    const json = JSON.stringify(value, (_k, x: unknown) => (typeof x === "bigint" ? `${x}n` : x));
    return cut(json ?? String(value), ERROR_VALUE_CHARS);
  } catch {
    try {
      return cut(String(value), ERROR_VALUE_CHARS);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
}

/**
 * A worker's errors between two stats reports: one entry per step + message, counted,
 * at most `max` distinct ones; errors of other kinds beyond that are counted in `unlisted`
 * (the step error counters count them all).
 */
export class ErrorBatch {
  private readonly byKey = new Map<string, RecentError>();
  unlisted = 0;
  constructor(
    private readonly worker: number,
    private readonly max = 10,
  ) {}

  add(where: string, err: unknown, message: string, payload?: Uint8Array, value?: unknown): void {
    const msg = cut(message, ERROR_MESSAGE_CHARS);
    const key = `${where}\u0000${msg}`;
    const seen = this.byKey.get(key);
    if (seen !== undefined) {
      // A repeat (an error per message, say) is only counted: its stack and value are the
      // first one's, so that a flood of errors costs a lookup each, not a stack and a preview.
      seen.count++;
      seen.at = Date.now();
      this.byKey.delete(key); // re-inserted last: the map's order is the order last seen
      this.byKey.set(key, seen);
      return;
    }
    if (this.byKey.size >= this.max) {
      this.unlisted++;
      return;
    }
    const stack =
      err instanceof Error && typeof err.stack === "string"
        ? cut(err.stack.split("\n").slice(0, ERROR_STACK_LINES).join("\n"), ERROR_STACK_CHARS)
        : "";
    const e: RecentError = {
      at: Date.now(),
      worker: this.worker,
      where,
      message: msg,
      stack,
      value: valuePreview(payload, value),
      count: 1,
    };
    this.byKey.set(key, e);
  }

  /** What the next report carries, and a fresh batch. */
  take(): { errors: RecentError[]; unlisted: number } | undefined {
    if (this.byKey.size === 0 && this.unlisted === 0) return undefined;
    const out = { errors: [...this.byKey.values()], unlisted: this.unlisted };
    this.byKey.clear();
    this.unlisted = 0;
    return out;
  }
}

/** One row of the dashboard's exception history. */
export interface ErrorRow {
  where: string;
  message: string;
  count: number;
  firstAt: number;
  lastAt: number;
  /** workers it happened on */
  workers: number[];
  stack: string;
  value: string | null;
}

/** The last ERROR_HISTORY distinct errors (step + message), with counts; the last seen first. */
export class ErrorHistory {
  private readonly rows = new Map<string, ErrorRow>();
  /** errors counted but not listed: beyond a worker's batch, or evicted from the history */
  unlisted = 0;
  constructor(private readonly max = ERROR_HISTORY) {}

  add(errors: readonly RecentError[], unlisted = 0): void {
    this.unlisted += unlisted;
    for (const e of errors) {
      const key = `${e.where}\u0000${e.message}`;
      const row = this.rows.get(key);
      this.rows.delete(key);
      this.rows.set(key, {
        where: e.where,
        message: e.message,
        count: (row?.count ?? 0) + e.count,
        firstAt: row?.firstAt ?? e.at,
        lastAt: Math.max(row?.lastAt ?? 0, e.at),
        workers:
          row === undefined || row.workers.includes(e.worker)
            ? (row?.workers ?? [e.worker])
            : [...row.workers, e.worker].sort((a, b) => a - b),
        stack: e.stack,
        value: e.value,
      });
      if (this.rows.size > this.max) {
        const [oldest, r] = this.rows.entries().next().value as [string, ErrorRow];
        this.rows.delete(oldest);
        this.unlisted += r.count;
      }
    }
  }

  list(): ErrorRow[] {
    return [...this.rows.values()].reverse();
  }
}

/** One row of the checkpoint history; `count` > 1 only for a run of "unchanged" ones (merged). */
export interface CheckpointRow {
  outcome: CheckpointOutcome;
  at: number;
  ms: number;
  /** committed: the checkpoint's id, instances written, instances removed, bytes */
  id: number | null;
  instances: number | null;
  removed: number | null;
  bytes: number | null;
  /** abandoned or failed: why */
  reason: string | null;
  count: number;
}

/** The last CHECKPOINT_HISTORY checkpoints, the newest first; a run of unchanged ones is one row. */
export class CheckpointHistory {
  private readonly rows: CheckpointRow[] = [];
  constructor(private readonly max = CHECKPOINT_HISTORY) {}

  add(outcome: CheckpointOutcome, stats: CheckpointStats | null, ms: number, reason?: string, at = Date.now()): void {
    const last = this.rows[this.rows.length - 1];
    if (outcome === "unchanged" && last?.outcome === "unchanged") {
      last.count++;
      last.at = at;
      last.ms = ms;
      return;
    }
    this.rows.push({
      outcome,
      at,
      ms,
      id: stats?.checkpoint ?? null,
      instances: stats?.instances ?? null,
      removed: stats?.removed ?? null,
      bytes: stats?.bytes ?? null,
      reason: reason === undefined ? null : cut(reason, ERROR_MESSAGE_CHARS),
      count: 1,
    });
    if (this.rows.length > this.max) this.rows.shift();
  }

  list(): CheckpointRow[] {
    return this.rows.slice().reverse();
  }
}

/** Samples of each source's backlog, oldest first: `values[i]` is source i's, null when not measured yet. */
export class BacklogHistory {
  private readonly points: { at: number; values: (number | null)[] }[] = [];
  constructor(private readonly max = BACKLOG_POINTS) {}

  add(at: number, values: (number | null)[]): void {
    this.points.push({ at, values });
    if (this.points.length > this.max) this.points.shift();
  }

  list(): { at: number; values: (number | null)[] }[] {
    return this.points.slice();
  }
}

/** One engine option as the configuration view shows it (runtime/options.ts engineConfiguration makes them). */
export interface ConfigEntry {
  flag: string;
  /** the value in effect, as text; the default's text when not given and computed at start */
  value: string;
  /** true when the value is the default (not given) */
  isDefault: boolean;
}
