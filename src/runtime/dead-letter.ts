/**
 * Dead letters: with `--dead-letter DIR`, every message dropped because user code
 * threw (decoder, computation, state computation, partition function, encoder) is
 * written to DIR as one JSON line, so that nothing is lost without a trace (like
 * Kafka Streams' exception handlers or a Flink side output).
 *
 * Each worker appends to its own file, DIR/worker-N.jsonl, with synchronous writes
 * on its own thread: errors are the slow path, and no message crosses threads for
 * them. A record:
 *
 *   {"time":"2026-...","worker":0,"pipeline":"faulty","step":"computation \"faulty compute\"",
 *    "where":"computation \"faulty compute\" of pipeline \"faulty\"",
 *    "error":"computation refuses ...","stack":["Error: ...","    at ..."],
 *    "payload":"base64 of the source's raw bytes"}      // or "value": the value, when no raw bytes
 *
 * Size: each file is bounded by `maxBytes` (default 64 MiB). A record that would
 * take the file past it first renames the file to worker-N.jsonl.1 (replacing an
 * older .1) and starts a new one, with a warning naming how many records the
 * replaced .1 held: at most 2 x maxBytes per worker on disk, and the newest drops
 * (the ones that explain what is going wrong now) are the ones kept.
 *
 * A record that cannot be written (a full disk: ENOSPC, a file-size limit: EFBIG, a
 * short write) is not half-written: the file is cut back to where the record began,
 * the record is counted in `failed` (the worker reports it with its stats; the stop
 * reports it and the exit code is 4), and the error is logged at most once per
 * FAILURE_LOG_MS with the count of failures since the last line.
 */
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import type { Plan } from "../topology/plan.js";
import { describeSource } from "../topology/plan.js";
import type { Logger } from "../core/log.js";

export const DEFAULT_DEAD_LETTER_MAX_BYTES = 64 * 1024 * 1024;
/** lines of a stack trace kept in a record */
const STACK_LINES = 6;
/** at most one "cannot write a dead letter" line per this many ms (a full disk fails every record) */
const FAILURE_LOG_MS = 1000;

export interface DeadLetterOptions {
  dir: string;
  maxBytes: number;
}

/** The file a worker writes its dead letters to. */
export const deadLetterFile = (dir: string, worker: number): string => join(dir, `worker-${worker}.jsonl`);

/** Creates DIR (the coordinator does this before any worker starts, so a bad path is a startup error). */
export function prepareDeadLetterDir(dir: string): void {
  mkdirSync(dir, { recursive: true });
}

interface Place {
  pipeline: string;
  step: string;
}

/**
 * Where-labels of the executor (see Executor's constructor) mapped to the pipeline
 * and the step they name. A label not found here (a message from another part of
 * the code) is recorded with `where` only.
 */
function placesOf(plan: Plan): Map<string, Place> {
  const m = new Map<string, Place>();
  const pname = (p: number) => JSON.stringify(plan.pipelines[p].name);
  for (const s of plan.steps) {
    const pipeline = plan.pipelines[s.pipeline].name;
    m.set(`computation ${JSON.stringify(s.name)} of pipeline ${pname(s.pipeline)}`, {
      pipeline,
      step: `computation ${JSON.stringify(s.name)}`,
    });
    if (s.state >= 0) {
      const state = JSON.stringify(plan.states[s.state].spec.name);
      m.set(`partition function of state ${state} (pipeline ${pname(s.pipeline)})`, {
        pipeline,
        step: `partition function of state ${state}`,
      });
    }
  }
  for (const k of plan.sinks) {
    m.set(`encoder of sink ${k.label}`, {
      pipeline: plan.pipelines[k.pipeline].name,
      step: `encoder of sink ${JSON.stringify(k.label)}`,
    });
  }
  for (const s of plan.sources) {
    m.set(`decoder of pipeline ${pname(s.pipeline)} (${describeSource(s.spec)})`, {
      pipeline: plan.pipelines[s.pipeline].name,
      step: "decoder",
    });
  }
  return m;
}

export class DeadLetters {
  private fd: number;
  private size: number;
  /** records in the current file and in the .1 file (-1 = unknown: written by an earlier run) */
  private records: number;
  private recordsInOld = -1;
  private readonly path: string;
  private readonly places: Map<string, Place>;
  /** records written by this worker in this run */
  written = 0;
  /** records this worker could not write in this run (full disk...) */
  failed = 0;
  /** the latest reason a record could not be written ("ENOSPC: no space left on device, write") */
  lastError: string | null = null;
  private lastFailureLog = -Infinity;
  private failuresSinceLog = 0;

  constructor(
    plan: Plan,
    private readonly worker: number,
    private readonly opts: DeadLetterOptions,
    private readonly log: Logger,
  ) {
    this.path = deadLetterFile(opts.dir, worker);
    this.fd = openSync(this.path, "a");
    this.size = fstatSync(this.fd).size;
    this.records = this.size === 0 ? 0 : -1;
    this.places = placesOf(plan);
  }

  /**
   * Writes one record. `payload` is the message's raw bytes as the source delivered
   * them, when the failing code had them; otherwise `value` is recorded. Never throws:
   * a dead-letter file that cannot be written is logged (the drop itself is already
   * logged and counted by the caller).
   */
  write(where: string, err: unknown, payload: Uint8Array | undefined, value?: unknown): void {
    try {
      const place = this.places.get(where);
      const rec: Record<string, unknown> = {
        time: new Date().toISOString(),
        worker: this.worker,
        pipeline: place?.pipeline ?? null,
        step: place?.step ?? null,
        where,
        error: err instanceof Error ? err.message : safeString(err),
        stack: err instanceof Error && typeof err.stack === "string" ? err.stack.split("\n").slice(0, STACK_LINES) : [],
      };
      if (payload !== undefined)
        rec.payload = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString("base64");
      else rec.value = jsonValue(value);
      const line = Buffer.from(`${JSON.stringify(rec)}\n`, "utf8");
      if (this.size > 0 && this.size + line.length > this.opts.maxBytes) this.rotate();
      this.append(line);
      this.size += line.length;
      if (this.records >= 0) this.records++;
      this.written++;
    } catch (e) {
      this.failed++;
      this.failuresSinceLog++;
      const msg = e instanceof Error ? e.message : String(e);
      this.lastError = msg;
      const now = Date.now();
      if (now - this.lastFailureLog >= FAILURE_LOG_MS) {
        this.lastFailureLog = now;
        const n = this.failuresSinceLog;
        this.failuresSinceLog = 0;
        this.log.error(
          { file: this.path, err: msg, notWritten: n, notWrittenTotal: this.failed },
          `cannot write a dead letter to ${this.path}: ${msg}; ${n} record(s) not written since the last such line, ` +
            `${this.failed} in all on worker ${this.worker} (the drops are counted and logged as errors in user code)`,
        );
      }
    }
  }

  /**
   * Appends the whole line: writeSync may write part of it (a disk filling up, a
   * file-size limit); the rest is written until done. If that fails, the file is cut
   * back to where the line began (no half record in it), and the error is thrown.
   */
  private append(line: Buffer): void {
    let done = 0;
    try {
      while (done < line.length) {
        const n = writeSync(this.fd, line, done, line.length - done);
        if (n <= 0) throw new Error(`short write: ${done} of ${line.length} bytes written, then none`);
        done += n;
      }
    } catch (e) {
      if (done > 0) {
        try {
          ftruncateSync(this.fd, this.size);
        } catch {
          /* the record stays cut off; it is still counted as not written */
        }
      }
      throw e;
    }
  }

  private rotate(): void {
    closeSync(this.fd);
    const discarded = existsSync(`${this.path}.1`) ? this.recordsInOld : 0;
    renameSync(this.path, `${this.path}.1`);
    this.fd = openSync(this.path, "a");
    this.log.warn(
      { file: this.path, maxBytes: this.opts.maxBytes, discarded: discarded >= 0 ? discarded : "unknown" },
      `dead-letter file ${this.path} reached ${this.opts.maxBytes} bytes: moved to ${this.path}.1, discarding what the ` +
        `older ${this.path}.1 held (${discarded >= 0 ? `${discarded} records` : "records of an earlier run"})`,
    );
    this.recordsInOld = this.records;
    this.size = 0;
    this.records = 0;
  }

  close(): void {
    closeSync(this.fd);
  }
}

function safeString(v: unknown): string {
  try {
    return String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/** A value as JSON can hold it: bigints as strings, bytes as base64, Maps and Sets as arrays; anything else as its String(). */
function jsonValue(v: unknown): unknown {
  try {
    return JSON.parse(
      JSON.stringify(v, (_k, x: unknown) => {
        if (typeof x === "bigint") return x.toString();
        if (x instanceof Uint8Array)
          return { base64: Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("base64") };
        if (
          x &&
          typeof x === "object" &&
          (x as { type?: unknown }).type === "Buffer" &&
          Array.isArray((x as { data?: unknown }).data)
        ) {
          return { base64: Buffer.from((x as { data: number[] }).data).toString("base64") };
        }
        if (x instanceof Map) return [...x];
        if (x instanceof Set) return [...x];
        return x;
      }) ?? null,
    );
  } catch {
    return safeString(v);
  }
}
