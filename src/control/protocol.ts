/**
 * Every control message between the coordinator and its threads, as discriminated
 * unions, and the one request/reply helper the coordinator uses. Data never goes
 * through here (it moves through the rings); these are the few messages that
 * start, checkpoint, report on and stop the threads.
 */
import type { Worker } from "node:worker_threads";
import type { Key } from "../topology/spec.js";
import type { EncodedRecords, PendingTransaction, Positions } from "../recovery/store.js";

/**
 * An error in user code, as the dashboard lists it (metrics on: sent with the stats; kept
 * by metrics/history.ts). One error as a worker reports it (its latest occurrence) with how
 * many like it since its last report.
 */
export interface RecentError {
  at: number;
  worker: number;
  /** the step (or "(decoder)", "(encoder ...)") it happened in */
  where: string;
  message: string;
  /** the stack's first ERROR_STACK_LINES lines, or "" (a thrown non-Error has none); of the report interval's first occurrence */
  stack: string;
  /** the failing message: its raw bytes as text, or its value as JSON; cut to ERROR_VALUE_CHARS; the first occurrence's */
  value: string | null;
  /** occurrences of this step + message since the worker's last report (this one included) */
  count: number;
}

/** An error as it crosses a thread boundary: what the user needs to find it (the stack) survives. */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
}

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof Error) return { name: err.name, message: err.message, stack: err.stack };
  return { name: "NonError", message: typeof err === "string" ? err : safeString(err) };
}

function safeString(v: unknown): string {
  try {
    return typeof v === "object" ? JSON.stringify(v) : String(v);
  } catch {
    return String(v);
  }
}

/**
 * Why a worker gave up; each says what happened, so that the log and the exit
 * path never blame --fail-fast for a serialization failure.
 */
export type WorkerFatalReason =
  /** a step threw and --fail-fast is on */
  | "user-code-error"
  /** an exception thrown outside any step (a timer or callback the user code scheduled), --fail-fast on */
  | "uncaught-exception"
  /** a promise of user code rejected with nobody handling it, --fail-fast on */
  | "unhandled-rejection"
  /** user code called process.exit() */
  | "process-exit"
  /** the application could not be loaded or set up on the worker */
  | "start"
  /** a state instance could not be serialized for a checkpoint */
  | "checkpoint-serialization"
  /** a state instance of the checkpoint store could not be deserialized */
  | "restore"
  /** the worker's own loop failed (an engine bug) */
  | "engine";

// ---- coordinator -> worker

export type ToWorker =
  | { type: "report" }
  | { type: "checkpoint"; id: number }
  | { type: "restore"; entries: [number, Key, Uint8Array][] };

// ---- worker -> coordinator

export type FromWorker =
  | { type: "ready" }
  | { type: "restored"; worker: number; instances: number }
  | { type: "snapshot"; worker: number; id: number; records: EncodedRecords }
  /** out: outputs per sink; outBytes: bytes handed to each sink's ring (what a TCP sink should deliver) */
  | {
      type: "stats";
      worker: number;
      in: number[];
      taken: number[];
      out: number[];
      outBytes: number[];
      errors: number;
      /** per state: instances ended by DELETE, and removed by the state's ttl (totals of this worker) */
      deleted: number[];
      expired: number[];
      /** window steps: events behind the watermark, per step (absent without window steps) */
      late?: number[];
      /** window steps, in the answer to "report" (sent at a stop): windows still open on this worker, and their keys */
      openWindows?: { windows: number; keys: number };
      queuedBytes: number;
      /** metrics on: the errors since the last report, one per step + message (counted), and how many were not listed */
      recentErrors?: { errors: RecentError[]; unlisted: number };
      /** --dead-letter: records written and records that could not be written (full disk...), with the latest reason */
      deadLetters?: { written: number; failed: number; lastError: string | null };
    }
  | { type: "fatal"; worker: number; reason: WorkerFatalReason; where: string; error: ErrorInfo };

// ---- coordinator -> I/O thread

export type ToIo =
  /** checkpoint cut: stop reading at a message boundary, hand everything read to the rings, answer "paused" */
  | { type: "pause"; id: number }
  | { type: "resume"; id: number }
  /** stop reading for good; answer "stopped" once everything read is in the rings */
  | { type: "stop" }
  /**
   * Kafka sink with resilience, two-phase commit: "prepare" = every record of the open transaction is
   * acknowledged, answer "prepared" with its identity (later records go to the next transaction);
   * "commit" (once the checkpoint naming it is written) = commit it
   */
  | { type: "prepare"; id: number }
  | { type: "commit"; id: number }
  /** sink: deliver what is left (bounded), then answer "closed" */
  | { type: "close" };

// ---- I/O thread -> coordinator

export type FromIo =
  | { type: "listening"; port: number; connected?: boolean }
  | { type: "paused"; id: number; positions?: Positions[string] }
  /** `messages`: how many messages the source read in all (what the workers should have received) */
  | { type: "stopped"; positions?: Positions[string]; messages?: number }
  /** `pending`: the transaction to commit (null: nothing was sent since the last one) */
  | { type: "prepared"; id: number; pending?: PendingTransaction | null; error?: string }
  | { type: "committed"; id: number; records?: number; error?: string }
  /**
   * Kafka: `delivered` records the brokers acknowledged, `dropped` refused (and logged), `undelivered`
   * held when closing. TCP: `deliveredBytes` of output the kernel accepted (each byte once).
   */
  | { type: "closed"; delivered?: number; dropped?: number; undelivered?: number; deliveredBytes?: number }
  /** sent every HEARTBEAT_MS while the thread's event loop runs */
  | { type: "heartbeat" }
  | { type: "fatal"; where?: string; message: string };

export type Reply = FromWorker | FromIo;

/** How often every thread shows it is alive (workers: their stats report; I/O threads: a heartbeat). */
export const HEARTBEAT_MS = 1000;

/** A request to a thread that was not answered: it timed out, the thread failed, or the thread died. */
export class ThreadRequestError extends Error {
  constructor(
    message: string,
    readonly kind?: "timeout" | "fatal" | "error" | "exit",
    readonly error?: ErrorInfo,
  ) {
    super(message);
    this.name = "ThreadRequestError";
  }
}

/**
 * Posts `msg` (if any) to `thread` and resolves with the first reply that `accept`
 * takes. Rejects after `timeoutMs` (Infinity: no timeout; only for start-up, where a
 * death or fatal report is what ends the wait), or when the thread reports a fatal
 * error, fails, or exits first. Listeners are removed in every case.
 */
export function request<R extends Reply>(
  thread: Worker,
  msg: ToWorker | ToIo | null,
  accept: (m: Reply) => m is R,
  what: string,
  timeoutMs: number,
): Promise<R> {
  return new Promise<R>((resolve, reject) => {
    let timer: NodeJS.Timeout | null = null;
    const onMessage = (m: Reply) => {
      if (accept(m)) {
        cleanup();
        resolve(m);
      } else if (m.type === "fatal") {
        cleanup();
        const error = "error" in m ? m.error : undefined;
        reject(
          new ThreadRequestError(
            `${what}: ${m.where ?? ""}${m.where ? ": " : ""}${error?.message ?? ("message" in m ? m.message : "")}`,
            "fatal",
            error,
          ),
        );
      }
    };
    const onError = (err: Error) => {
      cleanup();
      reject(new ThreadRequestError(`${what} failed: ${err.message}`, "error", toErrorInfo(err)));
    };
    const onExit = (code: number) => {
      cleanup();
      reject(new ThreadRequestError(`${what} exited with code ${code}`, "exit"));
    };
    const cleanup = () => {
      if (timer) clearTimeout(timer);
      thread.off("message", onMessage);
      thread.off("error", onError);
      thread.off("exit", onExit);
    };
    thread.on("message", onMessage);
    thread.on("error", onError);
    thread.on("exit", onExit);
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(
        () => {
          cleanup();
          reject(new ThreadRequestError(`${what}: no answer within ${timeoutMs} ms`, "timeout"));
        },
        Math.max(0, timeoutMs),
      );
      timer.unref();
    }
    if (msg !== null) thread.postMessage(msg);
  });
}

/** Type guard for a reply of one type (and, for the id'd ones, one request id). */
export function reply<T extends Reply["type"]>(type: T, id?: number): (m: Reply) => m is Extract<Reply, { type: T }> {
  return (m: Reply): m is Extract<Reply, { type: T }> =>
    m.type === type && (id === undefined || (m as { id?: number }).id === id);
}
