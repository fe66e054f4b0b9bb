/**
 * The coordinator, on the main thread: loads the application, lays out the shared
 * memory, starts the workers and the I/O threads, logs progress, and on stop
 * drains everything in flight to the sinks before closing them. It never touches
 * a message itself: the data path is source thread -> workers -> sink threads.
 */
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import { compilePlan, type Plan } from "../topology/plan.js";
import { parseLengthFormat } from "../api/struct.js";
import { loadAppModule, moduleUrl, setupApplication } from "./loader.js";
import { createWiring, readStatus, sinkSlot, type Wiring } from "./wiring.js";
import { RingReader } from "../transport/ring.js";
import { createLogger, type Logger } from "./log.js";
import type { WorkerInit, WorkerReport } from "./worker.js";
import type { IoInit } from "./io-thread.js";
import type { KafkaLogLevel } from "../api/configs.js";
import { CheckpointStore, type EncodedRecords, type OpenedStore, type Positions } from "../recovery/store.js";
import { appIdentity, Checkpointer, entriesByOwner } from "../recovery/checkpoint.js";
import { createMetricsMemory, type MetricsMemory } from "../metrics/layout.js";
import { MetricsServer } from "../metrics/server.js";

export interface EngineOptions {
  /** the application module: a path (relative to the cwd) or a file: URL */
  module: string | URL;
  /** every command-line argument; passed to applicationSetup as is */
  args?: string[];
  /** worker threads; default one per core */
  workers?: number;
  /** largest frame a TCP source accepts (default 16 MiB) */
  maxFrameBytes?: number;
  /** stop the engine on the first error in user code instead of dropping the message */
  failFast?: boolean;
  /** seconds between stats lines; 0 turns them off (default 5) */
  statsInterval?: number;
  /** bytes of each ring between a source thread and a worker (default 2 MiB) */
  ringBytes?: number;
  /** how long stop() waits for in-flight data to reach the sinks (default 30 s) */
  drainTimeoutMs?: number;
  /** consumer group of the Kafka sources (default: the application's name) */
  kafkaGroup?: string;
  /** directory of the checkpoint store; turns resilience on (default: off) */
  resilienceDir?: string;
  /** seconds between checkpoints (default 1) */
  checkpointInterval?: number;
  /** how long a checkpoint may wait for the sources to pause and the engine to drain before it is abandoned (default 10 s) */
  checkpointTimeoutMs?: number;
  /** port of the Prometheus /metrics endpoint and live dashboard (0 = any free port; default: off) */
  metricsPort?: number;
  /** address the metrics server binds to (default 127.0.0.1) */
  metricsHost?: string;
}

export interface Application {
  readonly name: string;
  readonly workers: number;
  /** the port each pipeline's TCP source listens on (useful with port 0), by pipeline name */
  readonly sourcePorts: Record<string, number>;
  /** the port of the metrics server and dashboard, or null when metrics are off */
  readonly metricsPort: number | null;
  /** drains what is in flight to the sinks, then stops every thread */
  stop(): Promise<void>;
  /** settles when the engine has stopped: rejects if it stopped on an error (e.g. --fail-fast) */
  readonly done: Promise<void>;
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
const WORKER_HEAP = { maxYoungGenerationSizeMb: Number(process.env.WALLAROO_WORKER_YOUNG_MB ?? 16) };
const IO_HEAP = { maxYoungGenerationSizeMb: Number(process.env.WALLAROO_IO_YOUNG_MB ?? 4) };

interface ThreadReport { type: string; [k: string]: unknown }

export async function runApplication(options: EngineOptions): Promise<Application> {
  const log = createLogger("wallaroo");
  const url = moduleUrl(options.module);
  const args = options.args ?? [];
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1) throw new EngineError(`workers must be a positive integer, got ${workers}`);
  const maxFrameBytes = options.maxFrameBytes ?? 16 * 1024 * 1024;
  const mod = await loadAppModule(url);
  const plan = compilePlan(setupApplication(mod, args, url), workers);
  for (const s of plan.sources) {
    if (s.spec.kind === "tcp-source") parseLengthFormat(s.decoder.lengthFmt);
  }
  const ringBytes = options.ringBytes ?? 2 * 1024 * 1024;
  const wiring = createWiring(plan.sources.length, workers, plan.sinks.length, {
    sourceRingBytes: ringBytes,
    peerRingBytes: Math.max(256 * 1024, Math.floor((8 * 1024 * 1024) / workers)),
    sinkRingBytes: ringBytes,
  });
  let opened: OpenedStore | null = null;
  if (options.resilienceDir !== undefined) {
    const interval = options.checkpointInterval ?? 1;
    if (!(interval > 0)) throw new EngineError(`checkpointInterval must be a positive number of seconds, got ${interval}`);
    // Before any thread starts: a store of another application, or a corrupt one, is a startup error.
    opened = CheckpointStore.open(options.resilienceDir, appIdentity(plan), workers);
  }
  if (options.metricsPort !== undefined && !(Number.isInteger(options.metricsPort) && options.metricsPort >= 0 && options.metricsPort < 65536)) {
    throw new EngineError(`metricsPort must be a port number (0 = any free port), got ${options.metricsPort}`);
  }
  const engine = new Engine(plan, wiring, log, {
    metrics: options.metricsPort === undefined ? null : {
      port: options.metricsPort, host: options.metricsHost ?? "127.0.0.1",
      memory: createMetricsMemory({
        pipelines: plan.pipelines.length, sinks: plan.sinks.length, steps: plan.steps.length, states: plan.states.length, workers,
      }, plan.sources.length),
    },
    url, args, failFast: options.failFast ?? false, maxFrameBytes,
    statsIntervalMs: (options.statsInterval ?? 5) * 1000, drainTimeoutMs: options.drainTimeoutMs ?? 30_000,
    kafkaGroup: options.kafkaGroup ?? plan.app.name,
    resilience: opened === null ? null : {
      opened, intervalMs: (options.checkpointInterval ?? 1) * 1000, timeoutMs: options.checkpointTimeoutMs ?? 10_000,
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
  kafkaGroup: string;
  resilience: { opened: OpenedStore; intervalMs: number; timeoutMs: number } | null;
  metrics: { port: number; host: string; memory: MetricsMemory } | null;
}

class Engine {
  private readonly workerThreads: Worker[] = [];
  private readonly sourceThreads: Worker[] = [];
  private readonly sinkThreads: Worker[] = [];
  private readonly workerStats: WorkerReport[] = [];
  private readonly sourcePorts: Record<string, number> = {};
  private stopping: Promise<void> | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private lastStats = { at: 0, in: [] as number[], out: [] as number[] };
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  readonly done: Promise<void>;
  private checkpointer: Checkpointer | null = null;
  private metrics: MetricsServer | null = null;

  constructor(private readonly plan: Plan, private readonly wiring: Wiring, private readonly log: Logger, private readonly s: Settings) {
    this.done = new Promise((resolve, reject) => { this.settle = { resolve, reject }; });
    this.done.catch(() => {}); // observed through handle().done
  }

  async start(): Promise<void> {
    const { plan, wiring, s } = this;
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < wiring.workers; i++) {
      const init: WorkerInit = {
        index: i, moduleUrl: s.url, args: s.args, wiring, failFast: s.failFast, statsIntervalMs: 1000, resilience: s.resilience !== null,
        metrics: s.metrics?.memory.workers[i],
      };
      const w = new Worker(new URL("./worker.js", import.meta.url), { workerData: init, env: workerEnv(), resourceLimits: WORKER_HEAP });
      this.workerThreads.push(w);
      ready.push(this.expect(w, "ready", `worker ${i}`));
      w.on("message", (m: WorkerReport) => this.onWorkerReport(m));
    }
    await Promise.all(ready);
    if (s.resilience) await this.restore(s.resilience.opened);
    plan.sinks.forEach((k) => {
      const common = {
        sinkId: k.id, label: k.label, rings: wiring.sinkRings.map((row) => row[k.id]), bell: wiring.sinkBells[k.id],
        status: wiring.status, statusSlot: sinkSlot(wiring.workers, k.id),
      };
      const spec = k.spec;
      const init: IoInit = spec.kind === "tcp-sink"
        ? { kind: "tcp-sink", ...common, host: spec.host, port: spec.port, counters: s.metrics?.memory.sinks[k.id] }
        : {
          kind: "kafka-sink", ...common, topic: spec.topic, brokers: spec.brokers, logLevel: spec.logLevel as KafkaLogLevel,
          maxProduceBufferMs: spec.maxProduceBufferMs, maxMessageSize: spec.maxMessageSize,
          // Stable across restarts, so that a restarted engine fences its predecessor and aborts its open transaction.
          transactionalId: s.resilience ? `wallaroo.${plan.app.name}.sink-${k.id}` : undefined,
        };
      this.sinkThreads.push(this.ioThread(init, `sink ${k.label}`));
    });
    const listening: Promise<unknown>[] = [];
    plan.sources.forEach((src) => {
      const pipeline = plan.pipelines[src.pipeline].name;
      const spec = src.spec;
      const common = { sourceId: src.id, pipeline, rings: wiring.sourceRings[src.id], workerBells: wiring.workerBells };
      const init: IoInit = spec.kind === "tcp-source"
        ? {
          kind: "tcp-source", ...common, host: spec.host, port: spec.port,
          headerLength: src.decoder.headerLength, lengthFmt: src.decoder.lengthFmt, maxFrameBytes: s.maxFrameBytes,
          blockedMs: s.metrics?.memory.sources[src.id],
        }
        : {
          kind: "kafka-source", ...common, topic: spec.topic, brokers: spec.brokers,
          logLevel: spec.logLevel as KafkaLogLevel, groupId: s.kafkaGroup,
          blockedMs: s.metrics?.memory.sources[src.id], lag: s.metrics?.memory.lag[src.id],
          resilience: s.resilience !== null,
          startOffsets: s.resilience?.opened.positions[pipeline]?.topic === spec.topic ? s.resilience.opened.positions[pipeline].offsets : {},
        };
      const t = this.ioThread(init, `source of pipeline ${JSON.stringify(pipeline)}`);
      this.sourceThreads.push(t);
      // A Kafka source reports port 0; it reports connected: false when it started without reaching the brokers.
      listening.push(this.expect(t, "listening", `source of pipeline ${JSON.stringify(pipeline)}`)
        .then((m) => {
          this.sourcePorts[pipeline] = Number(m.port);
          if (m.connected === false) this.log.warn(`pipeline ${JSON.stringify(pipeline)}: Kafka brokers not reachable yet; running, its source keeps retrying`);
        }));
    });
    await Promise.all(listening);
    if (s.metrics) {
      const m = s.metrics;
      try {
        this.metrics = await MetricsServer.start(
          { plan, wiring, memory: m.memory, workerThreads: this.workerThreads, resilience: s.resilience !== null }, m);
      } catch (err) {
        throw new EngineError(`cannot start the metrics server on ${m.host}:${m.port}: ${(err as Error).message}`);
      }
      this.log.info({ metrics: `${this.metrics.url}metrics`, dashboard: this.metrics.url }, `metrics on ${this.metrics.url}metrics, dashboard on ${this.metrics.url}`);
    }
    this.log.info({ app: plan.app.name, workers: wiring.workers, pipelines: plan.pipelines.map((p) => p.name) },
      `application ${JSON.stringify(plan.app.name)} running on ${wiring.workers} worker(s)`);
    if (s.resilience) {
      const r = s.resilience;
      this.checkpointer = new Checkpointer(r.opened.store, plan, r.opened.positions, {
        pauseSources: (id, ms) => this.pauseSources(id, ms),
        resumeSources: (id) => { for (const t of this.sourceThreads) t.postMessage({ type: "resume", id }); },
        waitQuiescent: (ms) => this.waitQuiescent(ms),
        collect: (id) => this.collectDirty(id),
        commitSinks: (id) => this.commitSinks(id),
        fatal: (message) => this.fail(message),
      }, this.log, r.intervalMs, r.timeoutMs);
      if (this.metrics) this.checkpointer.observer = (outcome, st, ms) => this.metrics?.onCheckpoint(outcome, st, ms);
      this.checkpointer.start();
    }
    if (s.statsIntervalMs > 0) {
      this.lastStats.at = performance.now();
      this.statsTimer = setInterval(() => this.logStats(), s.statsIntervalMs);
      this.statsTimer.unref();
    }
  }

  /** Puts the instances of the last checkpoint into the workers that own them, before any source opens. */
  private async restore(opened: OpenedStore): Promise<void> {
    const t0 = performance.now();
    const byOwner = entriesByOwner(this.plan, opened.entries);
    await Promise.all(this.workerThreads.map((w, i) => {
      const done = this.expect(w, "restored", `worker ${i}`);
      w.postMessage({ type: "restore", entries: byOwner[i] });
      return done;
    }));
    const store = opened.store;
    if (opened.checkpoint > 0) {
      this.log.info({ checkpoint: opened.checkpoint, instances: opened.entries.length, ms: Number((performance.now() - t0).toFixed(1)), store: store.dir },
        `restored checkpoint ${opened.checkpoint} from ${store.dir}: ${opened.entries.length} state instance(s) in ${(performance.now() - t0).toFixed(1)} ms`);
    } else {
      this.log.info({ store: store.dir }, `resilience on: checkpoint store ${store.dir} is empty; starting from empty state`);
    }
    opened.entries.length = 0; // handed over: let it be collected
  }

  /** Asks every source to pause at a message boundary; their Kafka positions, or null on timeout. */
  private async pauseSources(id: number, timeoutMs: number): Promise<Positions | null> {
    const replies = this.sourceThreads.map((t) => new Promise<ThreadReport>((resolve) => {
      const on = (m: ThreadReport) => { if (m.type === "paused" && m.id === id) { t.off("message", on); resolve(m); } };
      t.on("message", on);
      t.postMessage({ type: "pause", id });
    }));
    const all = await Promise.race([Promise.all(replies), timeout(timeoutMs).then(() => null)]);
    if (all === null) return null;
    const positions: Positions = {};
    all.forEach((m, i) => {
      const p = m.positions as Positions[string] | undefined;
      if (p) positions[this.plan.pipelines[this.plan.sources[i].pipeline].name] = p;
    });
    return positions;
  }

  /** Commits the open transaction of every Kafka sink (resilience); throws if one fails. */
  private async commitSinks(id: number): Promise<void> {
    const replies = this.plan.sinks.filter((k) => k.spec.kind === "kafka-sink").map((k) => {
      const t = this.sinkThreads[k.id];
      return new Promise<ThreadReport>((resolve) => {
        const on = (m: ThreadReport) => { if (m.type === "committed" && m.id === id) { t.off("message", on); resolve(m); } };
        t.on("message", on);
        t.postMessage({ type: "commit", id });
      });
    });
    const all = await Promise.race([Promise.all(replies), timeout(60_000).then(() => null)]);
    if (all === null) throw new Error("a Kafka sink did not commit its transaction within 60 s");
    const failed = all.find((m) => typeof m.error === "string");
    if (failed) throw new Error(String(failed.error));
  }

  private async collectDirty(id: number): Promise<EncodedRecords[]> {
    return Promise.all(this.workerThreads.map((w) => new Promise<EncodedRecords>((resolve) => {
      const on = (m: WorkerReport) => {
        if (m.type === "snapshot" && m.id === id) { w.off("message", on); resolve(m.records); }
      };
      w.on("message", on);
      w.postMessage({ type: "checkpoint", id });
    })));
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

  private ioThread(init: IoInit, what: string): Worker {
    const t = new Worker(new URL("./io-thread.js", import.meta.url), { workerData: init, resourceLimits: IO_HEAP });
    t.on("message", (m: ThreadReport) => {
      if (m.type === "fatal") this.fail(`${m.where ?? what}: ${m.message}`);
    });
    t.on("error", (err) => this.fail(`${what} crashed: ${err.message}`));
    return t;
  }

  /** Resolves with the first message of `type` from a thread; rejects if it reports a fatal error or dies first. */
  private expect(t: Worker, type: string, what: string): Promise<ThreadReport> {
    return new Promise((resolve, reject) => {
      const onMessage = (m: ThreadReport) => {
        if (m.type === type) { cleanup(); resolve(m); }
        else if (m.type === "fatal") { cleanup(); reject(new EngineError(`${m.where ?? what}: ${m.message}`)); }
      };
      const onError = (err: Error) => { cleanup(); reject(new EngineError(`${what} failed: ${err.message}`)); };
      const onExit = (code: number) => { cleanup(); reject(new EngineError(`${what} exited with code ${code}`)); };
      const cleanup = () => { t.off("message", onMessage); t.off("error", onError); t.off("exit", onExit); };
      t.on("message", onMessage);
      t.on("error", onError);
      t.on("exit", onExit);
    });
  }

  private onWorkerReport(m: WorkerReport): void {
    if (m.type === "stats") {
      this.workerStats[m.worker] = m;
      if (m.recentErrors && this.metrics) this.metrics.addErrors(m.recentErrors);
    }
    else if (m.type === "fatal") this.fail(`${m.where}: ${m.message}`, m.where === "worker start" ? undefined : "--fail-fast");
  }

  private failed = false;
  private fail(message: string, reason?: string): void {
    if (this.failed) return;
    this.failed = true;
    this.log.fatal({ reason }, `stopping: ${message}`);
    void this.kill().then(() => this.settle.reject(new EngineError(message)));
  }

  private totals(): { in: number[]; out: number[]; errors: number } {
    const inSum = new Array<number>(this.plan.pipelines.length).fill(0);
    const outSum = new Array<number>(this.plan.sinks.length).fill(0);
    let errors = 0;
    for (const st of this.workerStats) {
      if (!st || st.type !== "stats") continue;
      st.in.forEach((v, i) => { inSum[i] += v; });
      st.out.forEach((v, i) => { outSum[i] += v; });
      errors += st.errors;
    }
    return { in: inSum, out: outSum, errors };
  }

  private logStats(): void {
    const now = performance.now();
    const secs = (now - this.lastStats.at) / 1000;
    const t = this.totals();
    const parts = this.plan.pipelines.map((p) => {
      const inRate = (t.in[p.id] - (this.lastStats.in[p.id] ?? 0)) / secs;
      const out = p.sinks.reduce((n, k) => n + t.out[k], 0);
      const outBefore = p.sinks.reduce((n, k) => n + (this.lastStats.out[k] ?? 0), 0);
      return `${p.name}: in ${fmtRate(inRate)}/s out ${fmtRate((out - outBefore) / secs)}/s (total in ${t.in[p.id]}, out ${out})`;
    });
    this.log.info({ stats: { in: t.in, out: t.out, errors: t.errors } }, `${parts.join(" | ")}${t.errors ? ` | errors ${t.errors}` : ""}`);
    this.lastStats = { at: now, in: t.in, out: t.out };
  }

  stop(): Promise<void> {
    if (!this.stopping) this.stopping = this.drainAndStop();
    return this.stopping;
  }

  private async drainAndStop(): Promise<void> {
    if (this.failed) return this.done;
    this.log.info("stopping: sources stop reading, in-flight messages drain to the sinks");
    if (this.checkpointer) await this.checkpointer.stop();
    const stopped = await Promise.all(this.sourceThreads.map((t) => {
      const stopped = this.expect(t, "stopped", "source");
      t.postMessage({ type: "stop" });
      return stopped;
    }));
    const drained = await this.waitQuiescent(this.s.drainTimeoutMs);
    if (!drained) this.log.error(`stopping: in-flight messages did not reach the sinks within ${this.s.drainTimeoutMs} ms; some output is lost`);
    if (this.checkpointer) {
      if (!drained) this.log.error("stopping: no final checkpoint (not drained); a restart resumes from the last periodic checkpoint");
      else {
        const positions: Positions = {};
        stopped.forEach((m, i) => {
          if (m.positions) positions[this.plan.pipelines[this.plan.sources[i].pipeline].name] = m.positions as Positions[string];
        });
        await this.checkpointer.final(positions).catch((err) => this.log.error(`final checkpoint failed: ${(err as Error).message}`));
      }
    }
    await Promise.all(this.sinkThreads.map((t) => {
      const closed = this.expect(t, "closed", "sink");
      t.postMessage({ type: "close" });
      return Promise.race([closed, timeout(5000)]);
    }));
    await this.refreshStats();
    if (this.s.statsIntervalMs > 0) this.logStats();
    await this.kill();
    this.log.info("stopped");
    this.settle.resolve();
  }

  /** Everything sent has been received and handled: every ring empty, every consumer asleep, twice in a row. */
  private async waitQuiescent(timeoutMs: number): Promise<boolean> {
    const w = this.wiring;
    const rings = [
      ...w.sourceRings.flat(), ...w.peerRings.flat().filter((r): r is SharedArrayBuffer => r !== null), ...w.sinkRings.flat(),
    ].map((sab) => new RingReader(sab));
    const deadline = performance.now() + timeoutMs;
    let previous = "";
    while (performance.now() < deadline) {
      const st = readStatus(w.status);
      const calm = st.allIdle && rings.every((r) => r.isEmpty());
      const snapshot = st.wakeups.join(",");
      if (calm && snapshot === previous) return true;
      previous = calm ? snapshot : "";
      await sleep(5);
    }
    return false;
  }

  private async refreshStats(): Promise<void> {
    const got = this.workerThreads.map((t) => new Promise<void>((resolve) => {
      const on = (m: WorkerReport) => { if (m.type === "stats") { t.off("message", on); resolve(); } };
      t.on("message", on);
      t.postMessage({ type: "report" });
    }));
    await Promise.race([Promise.all(got), timeout(1000)]);
  }

  async kill(): Promise<void> {
    if (this.statsTimer) clearInterval(this.statsTimer);
    if (this.metrics) await this.metrics.close().catch(() => {});
    this.metrics = null;
    if (this.checkpointer) void this.checkpointer.stop();
    this.s.resilience?.opened.store.close();
    await Promise.all([...this.sourceThreads, ...this.workerThreads, ...this.sinkThreads].map((t) => t.terminate()));
  }
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
