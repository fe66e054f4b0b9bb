/**
 * The coordinator, on the main thread: loads the application, lays out the shared
 * memory, starts the workers and the I/O threads, logs progress, and on stop
 * drains everything in flight to the sinks before closing them. It never touches
 * a message itself: the data path is source thread -> workers -> sink threads.
 */
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { constants as bufferConstants } from "node:buffer";
import { compilePlan, type Plan } from "../topology/plan.js";
import { loadAppModule, moduleUrl, setupApplication } from "./loader.js";
import {
  createPeerRings,
  createWiring,
  peerRingBytes,
  readStatus,
  sinkSlot,
  type Wiring,
} from "../transport/wiring.js";
import { RingReader } from "../transport/ring.js";
import { createLogger, errorWithFrame, type Logger } from "../core/log.js";
import type { WorkerInit } from "./worker.js";
import type { IoInit } from "./io-thread.js";
import {
  HEARTBEAT_MS,
  reply,
  request,
  toErrorInfo,
  type ErrorInfo,
  type FromIo,
  type FromWorker,
  type Reply,
  type ToIo,
} from "../control/protocol.js";
import { sinkConnector, sourceConnector } from "../connectors/registry.js";
import {
  CheckpointStore,
  type EncodedRecords,
  type OpenedStore,
  type PendingTransaction,
  type Positions,
} from "../recovery/store.js";
import { appIdentity, Checkpointer, entriesByOwner } from "../recovery/checkpoint.js";
import { createMetricsMemory, type MetricsMemory } from "../metrics/layout.js";
import type { MetricsOptions, MetricsServer } from "../metrics/server.js";
import { DEFAULT_DEAD_LETTER_MAX_BYTES, prepareDeadLetterDir, type DeadLetterOptions } from "./dead-letter.js";
import { engineConfiguration, resolveEngineOptions, type ConfigEntry, type EngineOptions } from "./options.js";
import { checkStatesSerialize } from "./state-check.js";

export type { EngineOptions } from "./options.js";

/** The most worker threads an engine accepts: see maxWorkers(). */
export const WORKERS_PER_CORE_MAX = 4;
export const WORKERS_ABSOLUTE_MAX = 256;

/**
 * More workers than cores only adds threads competing for the same cores; the rings
 * between workers grow with the square of the count (at 10000 workers the engine
 * grew to 24 GB before the OOM killer ended it). Above 4 per core (and never above
 * 256) is refused; above one per core is allowed with a warning.
 */
export function maxWorkers(cores = availableParallelism()): number {
  return Math.min(WORKERS_ABSOLUTE_MAX, WORKERS_PER_CORE_MAX * cores);
}

/** Why an engine stopped on its own: a failure of a thread or of user code, never a requested stop. */
export interface EngineFailure {
  /** what happened, e.g. "user-code-error", "unhandled-rejection", "process-exit", "thread-exited", "thread-stalled" */
  reason: string;
  /** one line for the log and the exit path */
  message: string;
  /** the thread it happened on: "worker 1", "sink \"out\"", ... */
  thread?: string;
  /** the step or place in user code, when known */
  where?: string;
  /** the user's error, with its stack */
  error?: ErrorInfo;
}

/**
 * What a stop achieved. Nothing was lost when `lost` is false: every message the
 * sources read was processed and its outputs accepted by the sinks' receivers, and
 * (with resilience) the final checkpoint was written.
 */
export interface StopReport {
  lost: boolean;
  /** "requested" (stop(), a signal) or the failure's reason */
  reason: string;
  failure?: EngineFailure;
  /** everything in flight reached the sinks within the drain timeout */
  drained: boolean;
  /**
   * per sink (by label): outputs the workers produced for it that its receiver did not
   * accept (still in rings, buffers, or a connection). Outputs a sink refused and
   * logged at the time (a Kafka record over maxMessageSize) are not counted here.
   */
  undelivered: Record<string, number>;
  /** per TCP sink (by label): bytes of output its receiver did not accept (exact; `undelivered` is estimated from it) */
  undeliveredBytes: Record<string, number>;
  /** per pipeline: messages its source read that no worker processed */
  unprocessed: Record<string, number>;
  /** counts are estimates: a thread died before it could report its last figures, or a TCP sink's outputs were estimated from bytes */
  approximate: boolean;
  /**
   * "off" without resilience; "skipped" when the stop could not drain or the engine failed; "failed" when it
   * could not be written (a full disk) or refused to be, after a checkpoint failed during the stop (see
   * Checkpointer): never "written" without the state that checkpoint had collected
   */
  finalCheckpoint: "written" | "skipped" | "failed" | "off";
  /** --dead-letter: dropped messages whose record could not be written (full disk...): lost, exit code 4 */
  deadLettersNotWritten: number;
}

/** How a stop that lost something, or an engine that failed, settles stop() and done. */
export class EngineStopError extends Error {
  constructor(
    message: string,
    readonly report: StopReport,
  ) {
    super(message);
    this.name = "EngineStopError";
    if (report.failure?.error?.stack) this.stack = `${this.name}: ${message}\ncaused by: ${report.failure.error.stack}`;
  }
}

export interface Application {
  readonly name: string;
  readonly workers: number;
  /** the port each pipeline's TCP source listens on (useful with port 0), by pipeline name */
  readonly sourcePorts: Record<string, number>;
  /** the port of the metrics server and dashboard, or null when metrics are off */
  readonly metricsPort: number | null;
  /**
   * Drains what is in flight to the sinks (bounded by the drain timeout), then stops
   * every thread. Resolves with the report when nothing was lost; rejects with an
   * EngineStopError carrying the report when output or state was lost or the engine failed.
   */
  stop(): Promise<StopReport>;
  /** settles when the engine has stopped, as stop() does; rejects if it stopped on an error (e.g. --fail-fast) */
  readonly done: Promise<StopReport>;
}

/**
 * The largest --max-frame-bytes that can work: a whole frame (header up to 8 bytes
 * included) must fit in one Buffer (buffer.constants.MAX_LENGTH) and its length in
 * the 32-bit length a message carries between threads (a frame bigger than a ring
 * frame crosses it in fragments, reassembled by that length).
 */
export const MAX_FRAME_BYTES_LIMIT = Math.min(bufferConstants.MAX_LENGTH, 0xffffffff) - 8;

export function checkMaxFrameBytes(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1)
    throw new EngineError(`maxFrameBytes (--max-frame-bytes) must be a positive integer, got ${n}`);
  if (n > MAX_FRAME_BYTES_LIMIT) {
    throw new EngineError(
      `--max-frame-bytes ${n} is more than this platform can hold in one frame: at most ${MAX_FRAME_BYTES_LIMIT} ` +
        `(Node's buffer limit buffer.constants.MAX_LENGTH = ${bufferConstants.MAX_LENGTH}, and frames cross threads with a 32-bit length)`,
    );
  }
}

export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
  }
}

/**
 * msgpackr's native string extractor is handed the whole SharedArrayBuffer behind a
 * ring and fails on it every time: 7 us per unpack instead of 0.25 us (measured),
 * so workers use msgpackr's JavaScript string reader. (Taken when the workers start, so
 * that env changes an embedding program makes before runApplication reach them.)
 */
const workerEnv = () => ({ ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" });

/**
 * Young-generation sizes per thread. V8's default lets each isolate's nursery grow
 * to tens of MB, and an engine has five or more isolates: peak RSS passed 300 MB
 * on passthrough with two workers. I/O threads allocate almost nothing on the JS
 * heap (their buffers are external), workers allocate per message.
 */
const WORKER_HEAP = {
  maxYoungGenerationSizeMb: Number(process.env.WALLAROO_WORKER_YOUNG_MB ?? 16),
  // The old generation is V8's default unless set: a worker over it fails the engine (exit 3), not the process.
  ...(process.env.WALLAROO_WORKER_HEAP_MB
    ? { maxOldGenerationSizeMb: Number(process.env.WALLAROO_WORKER_HEAP_MB) }
    : {}),
};
/**
 * TCP I/O threads get 1 MB, not 4: a TCP source gets a fresh 64 KiB buffer from Node for
 * every socket read (~220 MB/s at full rate) and holds few JS objects, so with a larger
 * nursery its scavenges come seldom and the dead read buffers pile up outside the heap
 * until V8 runs full GCs of the thread's whole heap for them. A 1 MB nursery frees them in
 * cheap scavenges: passthrough, 6 interleaved pairs against 4 MB, source 90.5 -> 74, sink
 * 51.5 -> 44, V8's GC helpers 36 -> 25 ns per message (bench/ANALYSIS.md). Kafka threads
 * allocate per message on the JS heap (kafkajs): they keep 4 MB (a smaller nursery there
 * was not measured). WALLAROO_IO_YOUNG_MB sets both.
 */
const ioHeap = (kind: string) => ({
  maxYoungGenerationSizeMb: Number(process.env.WALLAROO_IO_YOUNG_MB ?? (kind.startsWith("tcp-") ? 1 : 4)),
});

export async function runApplication(given: EngineOptions): Promise<Application> {
  const log = createLogger("wallaroo");
  // Checked against ENGINE_FLAGS (options.ts), with its defaults filled in.
  const options = resolveEngineOptions(given);
  const url = moduleUrl(given.module);
  const args = given.args ?? [];
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1)
    throw new EngineError(`workers must be a positive integer, got ${workers}`);
  if (workers > maxWorkers()) {
    throw new EngineError(
      `${workers} workers is more than this machine can use: at most ${maxWorkers()} (${WORKERS_PER_CORE_MAX} per core, ${availableParallelism()} cores, never above ${WORKERS_ABSOLUTE_MAX})`,
    );
  }
  if (workers > availableParallelism()) {
    log.warn(
      { workers, cores: availableParallelism() },
      `--workers ${workers} is more than the ${availableParallelism()} core(s) of this machine: workers beyond one per core compete for the same cores (slower, not faster)`,
    );
  }
  const maxFrameBytes = options.maxFrameBytes!;
  checkMaxFrameBytes(maxFrameBytes);
  // Before the application is loaded, so that these many rings are not carved out of (and
  // resident in) heap memory that loading freed: see createPeerRings.
  const peerRings = createPeerRings(workers, peerRingBytes(workers));
  const mod = await loadAppModule(url);
  const plan = compilePlan(setupApplication(mod, args, url), workers);
  for (const s of plan.sources) sourceConnector(s.spec).validate(s.spec);
  for (const k of plan.sinks) sinkConnector(k.spec).validate(k.spec);
  const ringBytes = options.ringBytes!;
  const wiring = createWiring(
    plan.sources.length,
    workers,
    plan.sinks.length,
    {
      sourceRingBytes: ringBytes,
      peerRingBytes: peerRingBytes(workers),
      sinkRingBytes: ringBytes,
    },
    peerRings,
  );
  let opened: OpenedStore | null = null;
  if (options.resilienceDir !== undefined) {
    // Before the store is opened and any thread starts: a state that can never be checkpointed is a
    // startup error (appIdentity first: it names #private members with their own fix).
    const identity = appIdentity(plan);
    await checkStatesSerialize(mod, plan);
    // Before any thread starts: a store of another application, or a corrupt one, is a startup error.
    opened = CheckpointStore.open(options.resilienceDir, identity, workers);
  }
  let deadLetter: DeadLetterOptions | null = null;
  if (options.deadLetterDir !== undefined) {
    const maxBytes = options.deadLetterMaxBytes ?? DEFAULT_DEAD_LETTER_MAX_BYTES;
    if (!Number.isInteger(maxBytes) || maxBytes < 1)
      throw new EngineError(`deadLetterMaxBytes must be a positive integer, got ${maxBytes}`);
    prepareDeadLetterDir(options.deadLetterDir);
    deadLetter = { dir: options.deadLetterDir, maxBytes };
  }
  if (
    options.metricsPort !== undefined &&
    !(Number.isInteger(options.metricsPort) && options.metricsPort >= 0 && options.metricsPort < 65536)
  ) {
    throw new EngineError(`metricsPort must be a port number (0 = any free port), got ${options.metricsPort}`);
  }
  const engine = new Engine(plan, wiring, log, {
    deadLetter,
    metrics:
      options.metricsPort === undefined
        ? null
        : {
            port: options.metricsPort,
            host: options.metricsHost ?? "127.0.0.1",
            maxConnections: options.metricsMaxConnections!,
            clientTimeoutMs: options.metricsTimeout! * 1000,
            // Secrets (flags marked `secret` in options.ts) are left out here, before the server sees them.
            configuration: engineConfiguration(options, { workers, kafkaGroup: options.kafkaGroup ?? plan.app.name }),
            memory: createMetricsMemory(
              {
                pipelines: plan.pipelines.length,
                sinks: plan.sinks.length,
                steps: plan.steps.length,
                states: plan.states.length,
                workers,
              },
              plan.sources.length,
            ),
          },
    url,
    args,
    failFast: options.failFast!,
    maxFrameBytes,
    statsIntervalMs: options.statsInterval! * 1000,
    drainTimeoutMs: options.drainTimeout! * 1000,
    stallTimeoutMs: options.stallTimeout! * 1000,
    idleTimeoutMs: options.idleTimeout! * 1000,
    kafkaGroup: options.kafkaGroup ?? plan.app.name,
    resilience:
      opened === null
        ? null
        : {
            opened,
            intervalMs: options.checkpointInterval! * 1000,
            timeoutMs: options.checkpointTimeout! * 1000,
          },
  });
  try {
    await engine.start();
  } catch (err) {
    await engine.kill();
    throw err;
  }
  return engine.handle();
}

interface Settings {
  url: string;
  args: string[];
  failFast: boolean;
  maxFrameBytes: number;
  statsIntervalMs: number;
  drainTimeoutMs: number;
  stallTimeoutMs: number;
  idleTimeoutMs: number;
  kafkaGroup: string;
  resilience: { opened: OpenedStore; intervalMs: number; timeoutMs: number } | null;
  deadLetter: DeadLetterOptions | null;
  metrics: (MetricsOptions & { memory: MetricsMemory; configuration: ConfigEntry[] }) | null;
}

/** One thread of the engine, as the coordinator watches it. */
interface Thread {
  readonly t: Worker;
  /** "worker 0", "source of pipeline \"p\"", "sink \"out\"" */
  readonly what: string;
  readonly kind: "worker" | "source" | "sink";
  readonly index: number;
  /** when its event loop last showed it runs (any message: stats, heartbeat, reply) */
  lastSeen: number;
  /** exited, crashed, stalled or gave up: the engine no longer waits for it */
  dead: boolean;
}

/** Grace given to a thread's last messages (its fatal report) after its exit event. */
const EXIT_GRACE_MS = 100;
/**
 * A sink's close gets at least this long, even after the drain timeout ran out: a TCP
 * sink answers within 1.5 s, a Kafka sink gives a batch still out 4 s.
 */
const CLOSE_MIN_MS = 5000;

class Engine {
  private readonly threads: Thread[] = [];
  private readonly workerThreads: Thread[] = [];
  private readonly sourceThreads: Thread[] = [];
  private readonly sinkThreads: Thread[] = [];
  private readonly workerStats: Extract<FromWorker, { type: "stats" }>[] = [];
  private readonly sourcePorts: Record<string, number> = {};
  private stopping: Promise<StopReport> | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private watchTimer: NodeJS.Timeout | null = null;
  private lastStats = { at: 0, in: [] as number[], out: [] as number[], errors: 0, ended: 0 };
  /** the last stats line said "idle": no more lines until something moves */
  private statsQuiet = false;
  private settle!: { resolve: (r: StopReport) => void; reject: (e: Error) => void };
  readonly done: Promise<StopReport>;
  private checkpointer: Checkpointer | null = null;
  /** the first failure; the engine stops on it */
  private failure: EngineFailure | null = null;
  /** start() completed: a failure from now on stops the engine (before, start() rejects) */
  private running = false;
  /** the coordinator is terminating the threads itself: their exits are expected */
  private terminating = false;
  private metrics: MetricsServer | null = null;

  constructor(
    private readonly plan: Plan,
    private readonly wiring: Wiring,
    private readonly log: Logger,
    private readonly s: Settings,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    this.done.catch(() => {}); // observed through handle().done
  }

  /** Starts a thread and watches it for its whole life: a death, crash or fatal report is never silent. */
  private spawn(
    file: string,
    options: ConstructorParameters<typeof Worker>[1],
    what: string,
    kind: Thread["kind"],
    index: number,
  ): Thread {
    // The OS thread's name (Node 22.13+/24 set it from `name`: /proc/PID/task/TID/comm, top -H),
    // so per-thread CPU can be told apart (bench/threads.mjs).
    const t = new Worker(new URL(file, import.meta.url), { ...options, name: `${kind} ${index}` });
    const th: Thread = { t, what, kind, index, lastSeen: performance.now(), dead: false };
    t.on("message", (m: Reply) => {
      th.lastSeen = performance.now();
      if (m.type === "stats") {
        this.workerStats[m.worker] = m;
        if (m.recentErrors && this.metrics) this.metrics.addErrors(m.recentErrors);
      } else if (m.type === "fatal") {
        if ("reason" in m) {
          const why =
            m.reason === "user-code-error" ? "error in user code, --fail-fast" : m.reason.replaceAll("-", " ");
          this.fail(th, {
            reason: m.reason,
            thread: what,
            where: m.where,
            error: m.error,
            // the first frame in the user's code (file:line), as for errors at start
            message: `${what}: ${m.where}: ${errorWithFrame(Object.assign(new Error(m.error.message), { stack: m.error.stack }))} (${why})`,
          });
        } else {
          this.fail(th, {
            reason: "io-fatal",
            thread: what,
            where: m.where,
            message: `${m.where ?? what}: ${m.message}`,
          });
        }
      }
    });
    // Without an "error" listener a thread that runs out of heap or throws at its top level takes the whole process down.
    t.on("error", (err) => {
      const oom = (err as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY";
      this.fail(th, {
        reason: oom ? "out-of-memory" : "thread-crashed",
        thread: what,
        error: toErrorInfo(err),
        message: oom ? `${what} ran out of memory (${err.message})` : `${what} crashed: ${err.message}`,
      });
    });
    t.on("exit", (code) => {
      const wasDead = th.dead;
      th.dead = true;
      if (this.terminating || wasDead) return;
      // Its last message (a fatal report with the reason) may still be on its way.
      setTimeout(
        () =>
          this.fail(th, {
            reason: "thread-exited",
            thread: what,
            message: `${what} exited unexpectedly (exit code ${code})`,
          }),
        EXIT_GRACE_MS,
      ).unref();
    });
    this.threads.push(th);
    return th;
  }

  async start(): Promise<void> {
    const { plan, wiring, s } = this;
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < wiring.workers; i++) {
      const init: WorkerInit = {
        index: i,
        moduleUrl: s.url,
        args: s.args,
        wiring,
        failFast: s.failFast,
        statsIntervalMs: HEARTBEAT_MS,
        idleTimeoutMs: s.idleTimeoutMs,
        resilience: s.resilience !== null,
        deadLetter: s.deadLetter,
        metrics: s.metrics?.memory.workers[i],
      };
      const w = this.spawn(
        "./worker.js",
        { workerData: init, env: workerEnv(), resourceLimits: WORKER_HEAP },
        `worker ${i}`,
        "worker",
        i,
      );
      this.workerThreads.push(w);
      // No timeout: loading the application may take long; a death or fatal report ends the wait.
      ready.push(request(w.t, null, reply("ready"), `worker ${i}`, Infinity));
    }
    await Promise.all(ready);
    if (s.resilience) await this.restore(s.resilience.opened);
    plan.sinks.forEach((k) => {
      const init: IoInit = sinkConnector(k.spec).init(k.spec, {
        sinkId: k.id,
        label: k.label,
        appName: plan.app.name,
        rings: wiring.sinkRings.map((row) => row[k.id]),
        bell: wiring.sinkBells[k.id],
        status: wiring.status,
        statusSlot: sinkSlot(wiring.workers, k.id),
        resilience: s.resilience !== null,
        pendingTransactions: s.resilience?.opened.transactions.filter((t) => t.sink === k.id) ?? [],
        storeInstance: s.resilience?.opened.instance,
        counters: s.metrics?.memory.sinks[k.id],
      });
      this.sinkThreads.push(this.ioThread(init, `sink ${k.label}`, "sink", k.id));
    });
    const listening: Promise<unknown>[] = [];
    plan.sources.forEach((src) => {
      const pipeline = plan.pipelines[src.pipeline].name;
      const init: IoInit = sourceConnector(src.spec).init(src.spec, {
        sourceId: src.id,
        pipeline,
        rings: wiring.sourceRings[src.id],
        workerBells: wiring.workerBells,
        maxFrameBytes: s.maxFrameBytes,
        consumerGroup: s.kafkaGroup,
        resilience: s.resilience ? { position: s.resilience.opened.positions[pipeline] } : null,
        metrics: s.metrics
          ? {
              blockedMs: s.metrics.memory.sources[src.id],
              lag: s.metrics.memory.lag[src.id],
              backlog: s.metrics.memory.backlog[src.id],
            }
          : null,
        stampEventTime:
          src.spec.eventTime == null && plan.steps.some((st) => st.windows !== null && st.pipeline === src.pipeline),
      });
      const what = `source of pipeline ${JSON.stringify(pipeline)}`;
      const t = this.ioThread(init, what, "source", src.id);
      this.sourceThreads.push(t);
      // A Kafka source reports port 0; it reports connected: false when it started without reaching the brokers.
      listening.push(
        request(t.t, null, reply("listening"), what, Infinity).then((m) => {
          this.sourcePorts[pipeline] = m.port;
          if (m.connected === false)
            this.log.warn(
              `pipeline ${JSON.stringify(pipeline)}: Kafka brokers not reachable yet; running, its source keeps retrying`,
            );
        }),
      );
    });
    await Promise.all(listening);
    if (this.failure) throw new EngineError(this.failure.message);
    this.running = true;
    if (s.metrics) {
      const m = s.metrics;
      try {
        // Imported here, not at the top: every worker loads this module too (the application's
        // `import "wallaroo"`), and the server's prom-client costs each thread ~7 MB it never uses.
        const { MetricsServer } = await import("../metrics/server.js");
        this.metrics = await MetricsServer.start(
          {
            plan,
            wiring,
            memory: m.memory,
            workerThreads: this.workerThreads.map((th) => th.t),
            resilience: s.resilience !== null,
            lagTopics: plan.sources.map((src) => sourceConnector(src.spec).lagTopic(src.spec)),
            configuration: m.configuration,
          },
          m,
          this.log,
        );
      } catch (err) {
        throw new EngineError(`cannot start the metrics server on ${m.host}:${m.port}: ${(err as Error).message}`);
      }
      this.log.info(
        { metrics: `${this.metrics.url}metrics`, dashboard: this.metrics.url },
        `metrics on ${this.metrics.url}metrics, dashboard on ${this.metrics.url}`,
      );
    }
    const ports = Object.entries(this.sourcePorts)
      .filter(([, port]) => port > 0)
      .map(([p, port]) => `${p}: ${port}`);
    this.log.info(
      {
        app: plan.app.name,
        workers: wiring.workers,
        pipelines: plan.pipelines.map((p) => p.name),
        sourcePorts: { ...this.sourcePorts },
      },
      `application ${JSON.stringify(plan.app.name)} running on ${wiring.workers} worker(s)${ports.length ? `; TCP sources listen on ${ports.join(", ")}` : ""}`,
    );
    if (s.resilience) {
      const r = s.resilience;
      this.checkpointer = new Checkpointer(
        r.opened.store,
        plan,
        r.opened.positions,
        {
          pauseSources: (id, ms) => this.pauseSources(id, ms),
          resumeSources: (id) => {
            for (const t of this.live(this.sourceThreads)) t.t.postMessage({ type: "resume", id } satisfies ToIo);
          },
          waitQuiescent: (ms) => this.waitQuiescent(ms),
          collect: (id) => this.collectDirty(id),
          prepareSinks: (id) => this.prepareSinks(id),
          commitSinks: (id) => this.commitSinks(id),
          fatal: (message) => this.fail(null, { reason: "checkpoint-failed", message }),
        },
        this.log,
        r.intervalMs,
        r.timeoutMs,
      );
      if (this.metrics)
        this.checkpointer.observer = (outcome, st, ms, reason) => this.metrics?.onCheckpoint(outcome, st, ms, reason);
      this.checkpointer.start();
    }
    if (s.statsIntervalMs > 0) {
      this.lastStats.at = performance.now();
      this.statsTimer = setInterval(() => this.logStats(), s.statsIntervalMs);
      this.statsTimer.unref();
    }
    if (s.stallTimeoutMs > 0) this.watch(s.stallTimeoutMs);
  }

  /**
   * The heartbeat check: every thread shows its event loop runs at least every
   * HEARTBEAT_MS (workers through their stats report, which their loop yields for
   * every few ms; I/O threads through a heartbeat). One that stays silent past the
   * stall timeout is stuck, typically in user code (an infinite loop): it is
   * terminated and the engine stops with an error. If this thread itself was held
   * up (its timer fired late), the others' silence proves nothing: start over.
   */
  private watch(stallMs: number): void {
    let last = performance.now();
    this.watchTimer = setInterval(() => {
      const now = performance.now();
      const late = now - last > 2 * HEARTBEAT_MS;
      last = now;
      for (const th of this.threads) {
        if (late) {
          th.lastSeen = now;
          continue;
        }
        if (th.dead || now - th.lastSeen < stallMs) continue;
        this.fail(th, {
          reason: "thread-stalled",
          thread: th.what,
          message:
            `${th.what} has not responded for ${Math.round((now - th.lastSeen) / 1000)} s (--stall-timeout ${stallMs / 1000}): ` +
            (th.kind === "worker"
              ? "user code is stuck (an infinite loop, or a step that blocks)"
              : "its event loop is blocked"),
        });
      }
    }, HEARTBEAT_MS);
    this.watchTimer.unref();
  }

  private live(list: Thread[]): Thread[] {
    return list.filter((th) => !th.dead);
  }

  /** Puts the instances of the last checkpoint into the workers that own them, before any source opens. */
  private async restore(opened: OpenedStore): Promise<void> {
    const t0 = performance.now();
    const byOwner = entriesByOwner(this.plan, opened.entries);
    await Promise.all(
      this.workerThreads.map((w, i) =>
        request(w.t, { type: "restore", entries: byOwner[i] }, reply("restored"), `worker ${i} restoring`, Infinity),
      ),
    );
    const store = opened.store;
    if (opened.checkpoint > 0) {
      this.log.info(
        {
          checkpoint: opened.checkpoint,
          instances: opened.entries.length,
          ms: Number((performance.now() - t0).toFixed(1)),
          store: store.dir,
        },
        `restored checkpoint ${opened.checkpoint} from ${store.dir}: ${opened.entries.length} state instance(s) in ${(performance.now() - t0).toFixed(1)} ms`,
      );
    } else {
      this.log.info(
        { store: store.dir },
        `resilience on: checkpoint store ${store.dir} is empty; starting from empty state`,
      );
    }
    opened.entries.length = 0; // handed over: let it be collected
  }

  /** Asks every source to pause at a message boundary; their Kafka positions, or null on timeout (or a source gone). */
  private async pauseSources(id: number, timeoutMs: number): Promise<Positions | null> {
    if (this.sourceThreads.some((t) => t.dead)) return null;
    let all: Extract<FromIo, { type: "paused" }>[];
    try {
      all = await Promise.all(
        this.sourceThreads.map((t) => request(t.t, { type: "pause", id }, reply("paused", id), t.what, timeoutMs)),
      );
    } catch {
      return null;
    }
    const positions: Positions = {};
    all.forEach((m, i) => {
      if (m.positions) positions[this.plan.pipelines[this.plan.sources[i].pipeline].name] = m.positions;
    });
    return positions;
  }

  /** Two-phase commit, first phase: every Kafka sink's open transaction, acknowledged (resilience); throws if one fails. */
  private async prepareSinks(id: number): Promise<PendingTransaction[]> {
    const all = await this.askTransactionalSinks({ type: "prepare", id }, reply("prepared", id), "flushing");
    return all.flatMap((m) => (m.pending ? [m.pending] : []));
  }

  /** Commits the prepared transaction of every Kafka sink (resilience); throws if one fails. */
  private async commitSinks(id: number): Promise<void> {
    await this.askTransactionalSinks({ type: "commit", id }, reply("committed", id), "committing");
  }

  /** Sends `msg` to every transactional sink's thread; their answers, or the first error one reports. */
  private async askTransactionalSinks<R extends Reply & { error?: string }>(
    msg: ToIo,
    accept: (m: Reply) => m is R,
    doing: string,
  ): Promise<R[]> {
    const all = await Promise.all(
      this.plan.sinks
        .filter((k) => sinkConnector(k.spec).transactional)
        .map((k) => {
          const t = this.sinkThreads[k.id];
          // A sink that failed was terminated (fail()): asked, it would never answer, and the checkpoint
          // would wait out the 60 s, and a stop after that failure would wait for the checkpoint and
          // then find its drain timeout spent before it could ask the sources to stop (issue 24 item 8c).
          if (t.dead) return Promise.reject(new Error(`${t.what} failed before ${doing} its transaction`));
          return request(t.t, msg, accept, `${t.what} ${doing} its transaction`, 60_000);
        }),
    );
    const failed = all.find((m) => typeof m.error === "string");
    if (failed) throw new Error(failed.error);
    return all;
  }

  /**
   * The dirty instances of every worker. A worker that does not answer within the
   * checkpoint timeout fails the engine: the others have handed over (and forgotten)
   * their dirty marks, so going on would leave those instances out of every later checkpoint.
   */
  private async collectDirty(id: number): Promise<EncodedRecords[]> {
    const timeoutMs = this.s.resilience?.timeoutMs ?? 10_000;
    try {
      const all = await Promise.all(
        this.workerThreads.map((w) =>
          request(
            w.t,
            { type: "checkpoint", id },
            reply("snapshot", id),
            `${w.what} collecting state for a checkpoint`,
            timeoutMs,
          ),
        ),
      );
      return all.map((m) => m.records);
    } catch (err) {
      this.fail(null, {
        reason: "checkpoint-failed",
        message: `checkpoint ${id}: ${(err as Error).message}; stopping so that a restart resumes from the last checkpoint`,
      });
      throw err;
    }
  }

  handle(): Application {
    return {
      name: this.plan.app.name,
      workers: this.wiring.workers,
      sourcePorts: { ...this.sourcePorts },
      metricsPort: this.metrics ? this.metrics.port : null,
      stop: () => this.stop(),
      done: this.done,
    };
  }

  private ioThread(init: IoInit, what: string, kind: "source" | "sink", index: number): Thread {
    return this.spawn("./io-thread.js", { workerData: init, resourceLimits: ioHeap(init.kind) }, what, kind, index);
  }

  /**
   * A thread failed (th: null when the failure is the engine's own, e.g. a checkpoint).
   * The first failure is logged with the user's error and its stack, the thread is
   * terminated (it may be stuck), and the rest of the engine is stopped as by a stop
   * request, bounded by the drain timeout, with no final checkpoint: a restart with
   * --resilience-dir resumes from the last periodic one.
   */
  private fail(th: Thread | null, f: EngineFailure): void {
    if (th) {
      if (th.dead && this.failure !== null) return;
      th.dead = true;
      void th.t.terminate();
    }
    if (this.failure !== null) return;
    this.failure = f;
    if (!this.running) {
      // start() rejects with it; the engine is not running yet, so nothing to stop.
      this.log.error({ reason: f.reason, thread: f.thread, where: f.where, err: f.error }, f.message);
      return;
    }
    this.log.fatal({ reason: f.reason, thread: f.thread, where: f.where, err: f.error }, `stopping: ${f.message}`);
    this.stop().catch(() => {}); // settles done, which the caller observes
  }

  private totals(): {
    in: number[];
    taken: number[];
    out: number[];
    outBytes: number[];
    errors: number;
    deleted: number[];
    expired: number[];
    late: number;
  } {
    const deleted = new Array<number>(this.plan.states.length).fill(0);
    const expired = new Array<number>(this.plan.states.length).fill(0);
    const inSum = new Array<number>(this.plan.pipelines.length).fill(0);
    const takenSum = new Array<number>(this.plan.pipelines.length).fill(0);
    const outSum = new Array<number>(this.plan.sinks.length).fill(0);
    const bytesSum = new Array<number>(this.plan.sinks.length).fill(0);
    let errors = 0;
    let late = 0;
    for (const st of this.workerStats) {
      if (!st || st.type !== "stats") continue;
      st.in.forEach((v, i) => {
        inSum[i] += v;
      });
      st.taken.forEach((v, i) => {
        takenSum[i] += v;
      });
      st.out.forEach((v, i) => {
        outSum[i] += v;
      });
      st.outBytes.forEach((v, i) => {
        bytesSum[i] += v;
      });
      errors += st.errors;
      st.deleted.forEach((v, i) => {
        deleted[i] += v;
      });
      st.expired.forEach((v, i) => {
        expired[i] += v;
      });
      if (st.late) for (const n of st.late) late += n;
    }
    return { in: inSum, taken: takenSum, out: outSum, outBytes: bytesSum, errors, deleted, expired, late };
  }

  private logStats(): void {
    const now = performance.now();
    const secs = (now - this.lastStats.at) / 1000;
    const t = this.totals();
    // Instances ended (DELETE) or expired (ttl): expiry happens when traffic stops, so a change
    // there is news for the stats line too.
    const ended = t.deleted.reduce((a, b) => a + b, 0) + t.expired.reduce((a, b) => a + b, 0);
    const moved =
      t.errors !== this.lastStats.errors ||
      ended !== this.lastStats.ended ||
      t.in.some((v, i) => v !== this.lastStats.in[i]) ||
      t.out.some((v, i) => v !== this.lastStats.out[i]);
    if (!moved && this.lastStats.in.length > 0) {
      // An engine waiting for input should not fill its log: one line says so, the next
      // line comes with the next message.
      if (!this.statsQuiet) {
        this.statsQuiet = true;
        this.log.info(
          { stats: { in: t.in, out: t.out, errors: t.errors }, idle: true },
          `idle: nothing in or out since the last stats line (total in ${t.in.reduce((a, b) => a + b, 0)}); stats lines resume with traffic`,
        );
      }
      this.lastStats = { at: now, in: t.in, out: t.out, errors: t.errors, ended };
      return;
    }
    this.statsQuiet = false;
    const parts = this.plan.pipelines.map((p) => {
      const inRate = (t.in[p.id] - (this.lastStats.in[p.id] ?? 0)) / secs;
      const out = p.sinks.reduce((n, k) => n + t.out[k], 0);
      const outBefore = p.sinks.reduce((n, k) => n + (this.lastStats.out[k] ?? 0), 0);
      return `${p.name}: in ${fmtRate(inRate)}/s out ${fmtRate((out - outBefore) / secs)}/s (total in ${t.in[p.id]}, out ${out})`;
    });
    // Per state that ended instances: totals since the start, e.g. `state "sessions": 12 deleted, 3400 expired`.
    const states: Record<string, { deleted: number; expired: number }> = {};
    for (const st of this.plan.states) {
      if (t.deleted[st.id] > 0 || t.expired[st.id] > 0) {
        states[st.spec.name] = { deleted: t.deleted[st.id], expired: t.expired[st.id] };
        parts.push(
          `state ${JSON.stringify(st.spec.name)}: ${t.deleted[st.id]} deleted, ${t.expired[st.id]} expired (total)`,
        );
      }
    }
    this.log.info(
      { stats: { in: t.in, out: t.out, errors: t.errors, late: t.late, ...(ended > 0 ? { states } : {}) } },
      `${parts.join(" | ")}${t.errors ? ` | errors ${t.errors}` : ""}${t.late ? ` | late events ${t.late}` : ""}`,
    );
    this.lastStats = { at: now, in: t.in, out: t.out, errors: t.errors, ended };
  }

  stop(): Promise<StopReport> {
    if (!this.stopping) {
      this.stopping = this.drainAndStop().then((report) => {
        if (report.lost || report.failure) {
          const err = new EngineStopError(report.failure?.message ?? describeLoss(report), report);
          this.settle.reject(err);
          throw err;
        }
        this.settle.resolve(report);
        return report;
      });
    }
    return this.stopping;
  }

  /**
   * Every step is bounded: the whole stop takes at most the drain timeout, plus
   * CLOSE_MIN_MS for the final checkpoint and the sinks to close when the drain used it all up.
   */
  private async drainAndStop(): Promise<StopReport> {
    const deadline = performance.now() + this.s.drainTimeoutMs;
    const left = () => Math.max(0, deadline - performance.now());
    this.log.info(
      this.failure
        ? "stopping after the failure: sources stop reading, what the other threads hold drains to the sinks"
        : "stopping: sources stop reading, in-flight messages drain to the sinks",
    );
    if (this.checkpointer) await Promise.race([this.checkpointer.stop(), timeout(left())]);
    let approximate = false;
    const read: (number | null)[] = new Array(this.sourceThreads.length).fill(null);
    const positions: Positions = {};
    await Promise.all(
      this.sourceThreads.map(async (t, i) => {
        if (t.dead) return;
        try {
          const m = await request(t.t, { type: "stop" }, reply("stopped"), t.what, left());
          read[i] = m.messages ?? null;
          if (m.positions) positions[this.plan.pipelines[this.plan.sources[i].pipeline].name] = m.positions;
        } catch (err) {
          this.log.error(
            `stopping: ${t.what} did not stop within the drain timeout (${(err as Error).message}); what it had read and not handed on is lost`,
          );
          approximate = true;
        }
      }),
    );
    const drained = await this.waitQuiescent(left());
    if (!drained)
      this.log.error(
        `stopping: in-flight messages did not reach the sinks within the drain timeout (${this.s.drainTimeoutMs} ms); some output is lost (counted below)`,
      );
    let finalCheckpoint: StopReport["finalCheckpoint"] = "off";
    if (this.checkpointer) {
      if (this.failure || !drained) {
        finalCheckpoint = "skipped";
        this.log.error(
          `stopping: no final checkpoint (${this.failure ? "the engine failed" : "not drained"}); a restart resumes from the last periodic checkpoint`,
        );
      } else {
        try {
          await Promise.race([
            this.checkpointer.final(positions),
            timeout(Math.max(left(), CLOSE_MIN_MS)).then(() => {
              throw new Error("it did not complete within the drain timeout");
            }),
          ]);
          finalCheckpoint = "written";
        } catch (err) {
          finalCheckpoint = "failed";
          this.log.error(
            { err: toErrorInfo(err) },
            `final checkpoint failed: ${(err as Error).message}; state since the last checkpoint is lost, a restart resumes from it`,
          );
        }
      }
    }
    await this.refreshStats();
    const delivered: (Extract<FromIo, { type: "closed" }> | null)[] = await Promise.all(
      this.sinkThreads.map((t) => {
        if (t.dead) return null;
        return request(t.t, { type: "close" }, reply("closed"), t.what, Math.max(left(), CLOSE_MIN_MS)).catch((err) => {
          this.log.error(`stopping: ${t.what} did not close (${(err as Error).message})`);
          return null;
        });
      }),
    );
    if (this.s.statsIntervalMs > 0) this.logStats();
    this.logOpenWindows();
    const dropped = this.totals().errors;
    const dl = this.deadLetterTotals();
    if (this.s.deadLetter && dl.failed > 0) {
      this.log.error(
        {
          deadLetters: dropped,
          written: dl.written,
          notWritten: dl.failed,
          dir: this.s.deadLetter.dir,
          err: dl.lastError,
        },
        `${dropped} message(s) dropped on errors in user code; ${dl.written} written to ${this.s.deadLetter.dir}/worker-N.jsonl, ` +
          `${dl.failed} NOT written (${dl.lastError}): those are lost`,
      );
    } else if (this.s.deadLetter && dropped > 0) {
      this.log.warn(
        { deadLetters: dropped, dir: this.s.deadLetter.dir },
        `${dropped} message(s) dropped on errors in user code; each is in ${this.s.deadLetter.dir}/worker-N.jsonl`,
      );
    }
    const report = this.report(drained, finalCheckpoint, read, delivered, approximate);
    await this.kill();
    if (report.lost) {
      this.log.error({ report }, `stopped; LOST: ${describeLoss(report)}`);
    } else {
      this.log.info({ report }, "stopped");
    }
    return report;
  }

  private report(
    drained: boolean,
    finalCheckpoint: StopReport["finalCheckpoint"],
    read: (number | null)[],
    closed: (Extract<FromIo, { type: "closed" }> | null)[],
    approximate: boolean,
  ): StopReport {
    const t = this.totals();
    // A worker that died took its last counts with it.
    if (this.workerThreads.some((w) => w.dead)) approximate = true;
    const undelivered: Record<string, number> = {};
    const undeliveredBytes: Record<string, number> = {};
    this.plan.sinks.forEach((k, i) => {
      const c = closed[i];
      if (c === null) approximate = true;
      if (sinkConnector(k.spec).output === "stream") {
        // A byte-stream sink (TCP) knows bytes, not outputs: the outputs are estimated from the average output size.
        const bytes = Math.max(0, t.outBytes[k.id] - (c?.deliveredBytes ?? 0));
        if (bytes > 0) {
          undeliveredBytes[k.label] = bytes;
          const avg = t.out[k.id] > 0 ? t.outBytes[k.id] / t.out[k.id] : 1;
          undelivered[k.label] = Math.max(1, Math.round(bytes / Math.max(avg, 1)));
          if (avg > 0) approximate = true;
        }
      } else {
        const n = Math.max(0, t.out[k.id] - (c?.delivered ?? 0) - (c?.dropped ?? 0));
        if (n > 0) undelivered[k.label] = n;
      }
    });
    const unprocessed: Record<string, number> = {};
    this.plan.sources.forEach((src, i) => {
      const name = this.plan.pipelines[src.pipeline].name;
      const n = read[i];
      if (n === null) approximate = true;
      else unprocessed[name] = (unprocessed[name] ?? 0) + Math.max(0, n - t.taken[src.pipeline]);
    });
    for (const name of Object.keys(unprocessed)) if (unprocessed[name] === 0) delete unprocessed[name];
    const lost =
      !drained ||
      finalCheckpoint === "failed" ||
      finalCheckpoint === "skipped" ||
      this.failure !== null ||
      Object.keys(undelivered).length > 0 ||
      Object.keys(unprocessed).length > 0 ||
      this.deadLetterTotals().failed > 0;
    return {
      lost,
      reason: this.failure?.reason ?? "requested",
      ...(this.failure ? { failure: this.failure } : {}),
      drained,
      undelivered,
      undeliveredBytes,
      unprocessed,
      approximate,
      finalCheckpoint,
      deadLettersNotWritten: this.deadLetterTotals().failed,
    };
  }

  /** --dead-letter: records the workers wrote and could not write, with the latest reason */
  private deadLetterTotals(): { written: number; failed: number; lastError: string | null } {
    let written = 0;
    let failed = 0;
    let lastError: string | null = null;
    for (const st of this.workerStats) {
      if (!st?.deadLetters) continue;
      written += st.deadLetters.written;
      failed += st.deadLetters.failed;
      lastError = st.deadLetters.lastError ?? lastError;
    }
    return { written, failed, lastError };
  }

  /**
   * Everything sent has been received and handled: every ring empty, every consumer
   * asleep, twice in a row. Rings whose consumer is dead and its status are left out:
   * what sits there is lost (and counted), it will not drain.
   */
  private async waitQuiescent(timeoutMs: number): Promise<boolean> {
    const w = this.wiring;
    const rings: RingReader[] = [];
    w.sourceRings.forEach((row) =>
      row.forEach((sab, v) => {
        if (!this.workerThreads[v]?.dead) rings.push(new RingReader(sab));
      }),
    );
    w.peerRings.forEach((row) =>
      row.forEach((sab, v) => {
        if (sab && !this.workerThreads[v]?.dead) rings.push(new RingReader(sab));
      }),
    );
    w.sinkRings.forEach((row) =>
      row.forEach((sab, k) => {
        if (!this.sinkThreads[k]?.dead) rings.push(new RingReader(sab));
      }),
    );
    const consumers = [...this.workerThreads, ...this.sinkThreads];
    const deadline = performance.now() + timeoutMs;
    let previous = "";
    for (;;) {
      const st = readStatus(w.status);
      const allIdle = st.idle.every((idle, slot) => idle || (consumers[slot]?.dead ?? false));
      const calm = allIdle && rings.every((r) => r.isEmpty());
      const snapshot = st.wakeups.join(",");
      if (calm && snapshot === previous) return true;
      previous = calm ? snapshot : "";
      if (performance.now() >= deadline) return false;
      await sleep(5);
    }
  }

  /**
   * Windows still open at a stop are not output (a stop is not the end of the input): said
   * here, with where they are kept, so that none goes unnoticed.
   */
  private logOpenWindows(): void {
    let windows = 0;
    let keys = 0;
    for (const st of this.workerStats) {
      if (!st || st.type !== "stats" || !st.openWindows) continue;
      windows += st.openWindows.windows;
      keys += st.openWindows.keys;
    }
    if (windows === 0) return;
    this.log.warn(
      { openWindows: windows, keys },
      `${windows} window(s) of ${keys} key(s) were still open at the stop and were not output; ` +
        (this.s.resilience
          ? "they are in the final checkpoint and go on after a restart"
          : "without --resilience-dir they are lost"),
    );
  }

  private async refreshStats(): Promise<void> {
    await Promise.all(
      this.live(this.workerThreads).map((w) =>
        request(w.t, { type: "report" }, reply("stats"), w.what, 1000).catch(() => null),
      ),
    );
  }

  async kill(): Promise<void> {
    this.terminating = true;
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.watchTimer) clearInterval(this.watchTimer);
    if (this.metrics) await this.metrics.close().catch(() => {});
    this.metrics = null;
    if (this.checkpointer) void this.checkpointer.stop();
    try {
      this.s.resilience?.opened.store.close();
    } catch (err) {
      // The lock still names this process: harmless (see CheckpointStore.close), said all the same.
      this.log.warn({ err: toErrorInfo(err) }, (err as Error).message);
    }
    await Promise.all(this.threads.map((th) => th.t.terminate()));
  }
}

/** One line: what a stop lost, per sink and pipeline. */
export function describeLoss(r: StopReport): string {
  const parts: string[] = [];
  const about = r.approximate ? "about " : "";
  for (const [sink, n] of Object.entries(r.undelivered)) {
    const bytes = r.undeliveredBytes[sink];
    parts.push(`${about}${n} output(s)${bytes !== undefined ? ` (${bytes} bytes)` : ""} not delivered to sink ${sink}`);
  }
  for (const [p, n] of Object.entries(r.unprocessed))
    parts.push(`${about}${n} message(s) read by pipeline ${JSON.stringify(p)} not processed`);
  if (!r.drained) parts.push("in-flight messages did not drain");
  if (r.finalCheckpoint === "failed")
    parts.push("the final checkpoint failed (state since the last checkpoint is lost)");
  if (r.finalCheckpoint === "skipped") parts.push("no final checkpoint (a restart resumes from the last periodic one)");
  if (r.deadLettersNotWritten > 0)
    parts.push(`${r.deadLettersNotWritten} dead letter(s) could not be written (the messages are lost)`);
  if (r.failure) parts.unshift(`engine failed (${r.failure.reason})`);
  return parts.length > 0 ? parts.join("; ") : "nothing";
}

/** A bound for a Promise.race: its timer does not keep the process alive once everything else is done. */
function timeout(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function fmtRate(r: number): string {
  return r >= 1e6 ? `${(r / 1e6).toFixed(2)}M` : r >= 1e3 ? `${(r / 1e3).toFixed(1)}k` : r.toFixed(0);
}
