/**
 * The metrics endpoint and live dashboard, on the coordinator (main thread):
 *
 *   GET /metrics      Prometheus text format (prom-client registry)
 *   GET /             the dashboard (static files in ./dashboard, shipped with the package);
 *                     index.html carries the graph and the latest snapshots, so the page
 *                     shows the engine's state before its event stream delivers anything
 *   GET /api/graph    the application's graph and the configuration it runs with, as JSON
 *   GET /api/snapshot one snapshot, with the checkpoint and exception histories
 *   GET /events       Server-Sent Events: one snapshot a second (the histories only when they changed)
 *
 * Nothing here runs per message: every number is read from the threads' shared
 * counters (metrics/layout.ts), from the rings' own positions, or from the event-loop
 * utilisation Node keeps for each thread, when a scrape or a dashboard tick asks.
 *
 * The server shares the engine's process, so its clients must not be able to take what
 * the data path needs (issue 24: 19,972 half-request connections used up the process's
 * file descriptors and the sources' new connections were reset). Hence three limits:
 * at most `maxConnections` connections at once (one more is closed as soon as it is
 * accepted); a request whose headers have not all arrived within `clientTimeoutMs` is
 * answered 408 and closed, and so is an idle keep-alive connection; an /events client
 * that does not read (write() refused for `clientTimeoutMs`, or more than
 * SSE_MAX_BUFFERED_BYTES unsent) is disconnected, since what it does not take would
 * stay in this process's memory. Each is counted (wallaroo_metrics_*_total) and logged,
 * rate-limited: a client can cause as many of these lines as it likes.
 */
import http from "node:http";
import type net from "node:net";
import type stream from "node:stream";
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Plan } from "../topology/plan.js";
import { describeSink, describeSource } from "../topology/plan.js";
import type { Wiring } from "../transport/wiring.js";
import {
  BUCKETS_MS,
  HIST_SLOTS,
  SINK_RECONNECTS,
  SINK_REPLAYED_BYTES,
  workerLayout,
  type MetricsMemory,
  type WorkerLayout,
} from "./layout.js";
import { RING_CAPACITY_WORD, RING_READ_POS_WORD, RING_WRITE_POS_WORD } from "../transport/ring.js";
import type { CheckpointOutcome, CheckpointStats } from "../recovery/checkpoint.js";
import type { RecentError } from "../control/protocol.js";
import type { ConfigEntry } from "./history.js";
import { BacklogHistory, CheckpointHistory, ErrorHistory } from "./history.js";
import type { Logger } from "../core/log.js";

export interface MetricsOptions {
  port: number;
  host: string;
  /** connections held at once; one more is closed when accepted (--metrics-max-connections) */
  maxConnections: number;
  /**
   * ms (--metrics-timeout): to send a request's headers; an idle keep-alive connection's life;
   * how long an /events client may leave write() refused before it is disconnected
   */
  clientTimeoutMs: number;
}

/** An /events client with more than this unsent (in this process) is disconnected at once. */
export const SSE_MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * ms between two dashboard snapshots (events). WALLAROO_METRICS_TICK_MS changes it: the test of
 * a client that does not read uses a short one to fill the socket buffers in a second, not a minute.
 */
export const TICK_MS = tickMs(process.env.WALLAROO_METRICS_TICK_MS);

function tickMs(v: string | undefined): number {
  if (v === undefined) return 1000;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`WALLAROO_METRICS_TICK_MS must be a positive integer (milliseconds), got ${JSON.stringify(v)}`);
  return n;
}

/** An /events client; `fullSince`: when write() first returned false with no 'drain' since (ms), or null. */
interface SseClient {
  fullSince: number | null;
}

/** What the coordinator hands the metrics server: the plan, the shared memory, the threads. */
export interface MetricsContext {
  plan: Plan;
  wiring: Wiring;
  memory: MetricsMemory;
  workerThreads: Worker[];
  resilience: boolean;
  /** per source: the topic whose consumer lag it reports in its lag slots, or null (from its connector) */
  lagTopics: readonly (string | null)[];
  /** the engine options in effect, secrets already left out (options.ts engineConfiguration) */
  configuration: readonly ConfigEntry[];
}

type Labels = Record<string, string | number>;
interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

/**
 * A metric whose values are read from shared memory when the registry is collected:
 * prom-client formats it (get() is the interface its registry calls on every metric).
 */
class Collected {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge" | "histogram",
    private readonly values: () => Value[],
  ) {}
  get(): { name: string; help: string; type: string; values: Value[]; aggregator: "sum" } {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: "sum" };
  }
  reset(): void {}
}

/** A Prometheus histogram from bucket counts in ms (non-cumulative) and a sum in ms. */
function histogramValues(name: string, labels: Labels, h: Float64Array): Value[] {
  const out: Value[] = [];
  let cum = 0;
  for (let i = 0; i < BUCKETS_MS.length; i++) {
    cum += h[i];
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: BUCKETS_MS[i] / 1000 }, value: cum });
  }
  cum += h[BUCKETS_MS.length];
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: cum });
  out.push({ metricName: `${name}_sum`, labels, value: h[HIST_SLOTS - 1] / 1000 });
  out.push({ metricName: `${name}_count`, labels, value: cum });
  return out;
}

/**
 * Estimated quantile (ms) of a bucketed histogram: the upper bound of the bucket holding
 * it; -1 when it is beyond the last bucket (JSON has no Infinity); null without samples.
 */
export function quantileMs(h: Float64Array | number[], q: number): number | null {
  let total = 0;
  for (let i = 0; i <= BUCKETS_MS.length; i++) total += h[i];
  if (total === 0) return null;
  const rank = q * total;
  let cum = 0;
  for (let i = 0; i < BUCKETS_MS.length; i++) {
    cum += h[i];
    if (cum >= rank) return BUCKETS_MS[i];
  }
  return -1;
}

/** A ring between two threads; `producer` and `index` locate its blocked-time slot (source or worker, then worker or peer/sink). */
export interface ChannelInfo {
  channel: "source" | "peer" | "sink";
  from: string;
  to: string;
  ring: SharedArrayBuffer;
  producer: number;
  index: number;
}

export class MetricsServer {
  readonly registry = new Registry();
  private readonly layout: WorkerLayout;
  private readonly server: http.Server;
  private readonly clients = new Map<http.ServerResponse, SseClient>();
  /** what clients cost and were refused: exported as wallaroo_metrics_*_total */
  private readonly guard = { refused: 0, timedOut: 0, sseDropped: 0 };
  private readonly limited: LimitedLines;
  /** the last snapshot sent on /events, with the time it was made (the page's first rates come from it) */
  private lastSent: { snap: unknown; at: number } | null = null;
  private readonly channels: ChannelInfo[];
  private tick: NodeJS.Timeout | null = null;
  private lastTick: { sums: Float64Array; elu: { idle: number; active: number }[]; at: number } | null = null;
  private busy: number[] = [];
  private readonly errorHistory = new ErrorHistory();
  private readonly checkpointHistory = new CheckpointHistory();
  private readonly backlogHistory = new BacklogHistory();
  /**
   * Bumped when a history changes: an event carries each history only when it changed since
   * the last event (the exception history, with its stacks, is the larger by far).
   */
  private readonly versions = { checkpoints: 0, errors: 0 };
  private readonly sentVersions = { checkpoints: -1, errors: -1 };
  private readonly checkpoint = {
    count: 0,
    failures: 0,
    lastSuccess: 0,
    lastBytes: 0,
    lastMs: 0,
    lastInstances: 0,
    lastId: 0,
  };
  private readonly checkpointHist: Histogram;
  private readonly startedAt = Date.now();
  private readonly staticDir: string;
  private readonly uplotDir: string;
  private readonly sinkNames: string[];
  private readonly stepNames: { pipeline: string; step: string }[];

  private constructor(
    private readonly ctx: MetricsContext,
    private readonly opts: MetricsOptions,
    log: Logger,
  ) {
    this.limited = new LimitedLines(log);
    const { plan, wiring } = ctx;
    this.layout = workerLayout({
      pipelines: plan.pipelines.length,
      sinks: plan.sinks.length,
      steps: plan.steps.length,
      states: plan.states.length,
      workers: plan.workers,
    });
    this.sinkNames = plan.sinks.map((k) => describeSink(k.spec));
    this.stepNames = plan.steps.map((s) => ({ pipeline: plan.pipelines[s.pipeline].name, step: s.name }));
    this.channels = [
      ...wiring.sourceRings.flatMap((row, s) =>
        row.map((ring, w) => ({
          channel: "source" as const,
          from: `source ${plan.pipelines[plan.sources[s].pipeline].name}`,
          to: `worker ${w}`,
          ring,
          producer: s,
          index: w,
        })),
      ),
      ...wiring.peerRings.flatMap((row, w) =>
        row.flatMap((ring, v) =>
          ring === null
            ? []
            : [
                {
                  channel: "peer" as const,
                  from: `worker ${w}`,
                  to: `worker ${v}`,
                  ring,
                  producer: w,
                  index: v,
                },
              ],
        ),
      ),
      ...wiring.sinkRings.flatMap((row, w) =>
        row.map((ring, k) => ({
          channel: "sink" as const,
          from: `worker ${w}`,
          to: `sink ${this.sinkNames[k]}`,
          ring,
          producer: w,
          index: wiring.workers + k,
        })),
      ),
    ];
    this.checkpointHist = new Histogram({
      name: "wallaroo_checkpoint_duration_seconds",
      help: "Duration of periodic checkpoints (pause, drain, collect, commit)",
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
      registers: [this.registry],
    });
    this.register();
    collectDefaultMetrics({ register: this.registry, prefix: "wallaroo_" });
    this.staticDir = findDashboardDir();
    this.uplotDir = dirname(createRequire(import.meta.url).resolve("uplot"));
    const timeout = Math.max(1, Math.round(opts.clientTimeoutMs));
    this.server = http.createServer(
      {
        // Node's defaults (60 s for the headers, 300 s for the request, checked every 30 s) let a
        // half request hold its connection, and its file descriptor, for a minute or more. A GET has
        // no body: the whole request is due when its headers are.
        headersTimeout: timeout,
        requestTimeout: timeout,
        // How late past the timeout a connection is closed: at most this, at least 50 ms apart.
        connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.round(timeout / 4))),
      },
      (req, res) => {
        void this.handle(req, res);
      },
    );
    this.server.keepAliveTimeout = timeout;
    // Node closes a connection accepted beyond this at once and emits "drop" for it.
    this.server.maxConnections = opts.maxConnections;
    this.server.on("drop", (d?: net.DropArgument) => {
      this.guard.refused++;
      this.limited.line(
        "refused",
        { remote: d?.remoteAddress, maxConnections: opts.maxConnections },
        `metrics server: connection from ${d?.remoteAddress ?? "?"} refused, already ${opts.maxConnections} open (--metrics-max-connections)`,
      );
    });
    this.server.on("clientError", (err: NodeJS.ErrnoException, socket: stream.Duplex) => this.clientError(err, socket));
  }

  /**
   * What Node does on a client error when nobody listens (answer 408, 431 or 400 if nothing was
   * sent yet, then close), plus counting the timeouts: a listener replaces that default.
   */
  private clientError(err: NodeJS.ErrnoException, socket: stream.Duplex): void {
    if (err.code === "ERR_HTTP_REQUEST_TIMEOUT") {
      this.guard.timedOut++;
      const remote = (socket as net.Socket).remoteAddress;
      this.limited.line(
        "timeout",
        { remote, timeoutMs: this.opts.clientTimeoutMs },
        `metrics server: closed a connection from ${remote ?? "?"} that did not send a whole request within ${this.opts.clientTimeoutMs / 1000} s (--metrics-timeout)`,
      );
    }
    if (socket.writable && (socket as net.Socket).bytesWritten === 0) {
      const status =
        err.code === "ERR_HTTP_REQUEST_TIMEOUT"
          ? "408 Request Timeout"
          : err.code === "HPE_HEADER_OVERFLOW"
            ? "431 Request Header Fields Too Large"
            : "400 Bad Request";
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\n\r\n`);
    }
    socket.destroy();
  }

  static async start(ctx: MetricsContext, opts: MetricsOptions, log: Logger): Promise<MetricsServer> {
    const m = new MetricsServer(ctx, opts, log);
    await new Promise<void>((resolve, reject) => {
      m.server.once("error", reject);
      m.server.listen(opts.port, opts.host, () => {
        m.server.off("error", reject);
        resolve();
      });
    });
    m.sample();
    m.tick = setInterval(() => m.broadcast(), TICK_MS);
    m.tick.unref();
    return m;
  }

  get port(): number {
    const a = this.server.address();
    return typeof a === "object" && a !== null ? a.port : this.opts.port;
  }

  get url(): string {
    const host = this.opts.host.includes(":") ? `[${this.opts.host}]` : this.opts.host;
    return `http://${host}:${this.port}/`;
  }

  /** A worker's stats report carried errors: into the exception history. */
  addErrors(batch: { errors: RecentError[]; unlisted: number }): void {
    this.errorHistory.add(batch.errors, batch.unlisted);
    this.versions.errors++;
  }

  onCheckpoint(outcome: CheckpointOutcome, stats: CheckpointStats | null, ms: number, reason?: string): void {
    this.checkpointHistory.add(outcome, stats, ms, reason);
    this.versions.checkpoints++;
    if (outcome === "abandoned" || outcome === "failed") this.checkpoint.failures++;
    if (outcome !== "committed" || stats === null) return;
    this.checkpoint.count++;
    this.checkpoint.lastSuccess = Date.now();
    this.checkpoint.lastBytes = stats.bytes;
    this.checkpoint.lastInstances = stats.instances;
    this.checkpoint.lastId = stats.checkpoint;
    this.checkpoint.lastMs = ms;
    this.checkpointHist.observe(ms / 1000);
  }

  async close(): Promise<void> {
    if (this.tick) clearInterval(this.tick);
    for (const c of this.clients.keys()) c.end();
    this.clients.clear();
    this.limited.flush(true);
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  /** Every worker's slots summed into one array of the same layout. */
  private sums(): Float64Array {
    const total = new Float64Array(this.layout.size);
    for (const sab of this.ctx.memory.workers) {
      const s = new Float64Array(sab);
      for (let i = 0; i < total.length; i++) total[i] += s[i];
    }
    return total;
  }

  private register(): void {
    const { plan } = this.ctx;
    const l = this.layout;
    const add = (name: string, help: string, type: "counter" | "gauge" | "histogram", values: () => Value[]) =>
      this.registry.registerMetric(new Collected(name, help, type, values) as never);
    const pipelineName = (p: number) => plan.pipelines[p].name;
    add("wallaroo_source_messages_total", "Messages decoded from the source, per pipeline", "counter", () => {
      const s = this.sums();
      return plan.pipelines.map((p) => ({ labels: { pipeline: p.name }, value: s[l.in + p.id] }));
    });
    add("wallaroo_sink_messages_total", "Outputs handed to each sink", "counter", () => {
      const s = this.sums();
      return plan.sinks.map((k) => ({
        labels: { pipeline: pipelineName(k.pipeline), sink: this.sinkNames[k.id] },
        value: s[l.out + k.id],
      }));
    });
    add("wallaroo_step_messages_total", "Messages that entered each step", "counter", () => {
      const s = this.sums();
      return plan.steps.map((st) => ({ labels: this.stepNames[st.id], value: s[l.stepMessages + st.id] }));
    });
    add(
      "wallaroo_step_errors_total",
      "Messages dropped on an error, by where it happened (a step, or the pipeline's (decoder) or (encoder))",
      "counter",
      () => {
        const s = this.sums();
        return [
          ...plan.steps.map((st) => ({ labels: this.stepNames[st.id], value: s[l.stepErrors + st.id] })),
          ...plan.pipelines.map((p) => ({
            labels: { pipeline: p.name, step: "(decoder)" },
            value: s[l.decodeErrors + p.id],
          })),
          ...plan.sinks.map((k) => ({
            labels: { pipeline: pipelineName(k.pipeline), step: `(encoder ${this.sinkNames[k.id]})` },
            value: s[l.encodeErrors + k.id],
          })),
        ];
      },
    );
    add(
      "wallaroo_step_late_events_total",
      "Events behind the watermark of each window step, whatever its late-data policy did with them",
      "counter",
      () => {
        const s = this.sums();
        return plan.steps
          .filter((st) => st.windows !== null)
          .map((st) => ({ labels: this.stepNames[st.id], value: s[l.stepLate + st.id] }));
      },
    );
    add(
      "wallaroo_step_processing_seconds",
      "Time in each step's computation (sampled: 1 in 1024 decoded messages, with all their outputs)",
      "histogram",
      () => {
        const s = this.sums();
        return plan.steps.flatMap((st) =>
          histogramValues(
            "wallaroo_step_processing_seconds",
            this.stepNames[st.id],
            s.subarray(l.stepHist + st.id * HIST_SLOTS, l.stepHist + (st.id + 1) * HIST_SLOTS),
          ),
        );
      },
    );
    add(
      "wallaroo_latency_seconds",
      "From a worker decoding a message to its output handed to the sink thread (sampled)",
      "histogram",
      () => {
        const s = this.sums();
        return plan.pipelines.flatMap((p) =>
          histogramValues(
            "wallaroo_latency_seconds",
            { pipeline: p.name },
            s.subarray(l.e2eHist + p.id * HIST_SLOTS, l.e2eHist + (p.id + 1) * HIST_SLOTS),
          ),
        );
      },
    );
    add(
      "wallaroo_ring_occupancy_ratio",
      "Fill of each ring between threads (1 = full: the producer waits)",
      "gauge",
      () =>
        this.channels.map((c) => ({
          labels: { channel: c.channel, from: c.from, to: c.to },
          value: occupancy(c.ring),
        })),
    );
    add(
      "wallaroo_ring_blocked_seconds_total",
      "Time the producer of each ring waited for room (source: connections paused; worker: loop waiting)",
      "counter",
      () => this.blocked().map((b) => ({ labels: { channel: b.channel, from: b.from, to: b.to }, value: b.ms / 1000 })),
    );
    add(
      "wallaroo_worker_busy_ratio",
      "Share of the last second each worker's event loop was busy (event-loop utilisation)",
      "gauge",
      () => this.busy.map((v, w) => ({ labels: { worker: w }, value: v })),
    );
    add("wallaroo_worker_busy_seconds_total", "Time each worker's event loop was busy", "counter", () =>
      this.ctx.workerThreads.map((t, w) => ({
        labels: { worker: w },
        value: t.performance.eventLoopUtilization().active / 1000,
      })),
    );
    add("wallaroo_state_instances", "Live instances of each state (all workers, updated every second)", "gauge", () => {
      const s = this.sums();
      return plan.states.map((st) => ({ labels: { state: st.spec.name }, value: s[l.instances + st.id] }));
    });
    add(
      "wallaroo_state_instances_deleted_total",
      "Instances of each state ended by their computation returning wallaroo.DELETE",
      "counter",
      () => {
        const s = this.sums();
        return plan.states.map((st) => ({ labels: { state: st.spec.name }, value: s[l.stateDeleted + st.id] }));
      },
    );
    add(
      "wallaroo_state_instances_expired_total",
      "Instances of each state removed by its ttl (no message touched them for that long)",
      "counter",
      () => {
        const s = this.sums();
        return plan.states.map((st) => ({ labels: { state: st.spec.name }, value: s[l.stateExpired + st.id] }));
      },
    );
    add(
      "wallaroo_kafka_consumer_lag",
      "Records behind the partition's high watermark after the last batch a Kafka source handed on",
      "gauge",
      () =>
        plan.sources.flatMap((src) => {
          const topic = this.ctx.lagTopics[src.id];
          if (topic === null) return [];
          const lag = new Float64Array(this.ctx.memory.lag[src.id]);
          const out: Value[] = [];
          lag.forEach((v, partition) => {
            if (v >= 0) out.push({ labels: { pipeline: pipelineName(src.pipeline), topic, partition }, value: v });
          });
          return out;
        }),
    );
    add(
      "wallaroo_source_backlog_bytes",
      "Bytes a source read from its connections and has not handed to a worker yet (TCP sources)",
      "gauge",
      () =>
        plan.sources.flatMap((src) => {
          const v = new Float64Array(this.ctx.memory.backlog[src.id])[0];
          return v >= 0 ? [{ labels: { pipeline: pipelineName(src.pipeline) }, value: v }] : [];
        }),
    );
    add("wallaroo_sink_reconnects_total", "Reconnections of each TCP sink", "counter", () =>
      this.sinkCounter(SINK_RECONNECTS),
    );
    add(
      "wallaroo_sink_replayed_bytes_total",
      "Bytes a TCP sink wrote again after reconnecting (at-least-once tail)",
      "counter",
      () => this.sinkCounter(SINK_REPLAYED_BYTES),
    );
    add(
      "wallaroo_metrics_connections_refused_total",
      "Connections to this server closed on accept: --metrics-max-connections were already open",
      "counter",
      () => [{ labels: {}, value: this.guard.refused }],
    );
    add(
      "wallaroo_metrics_request_timeouts_total",
      "Connections to this server closed because their request did not arrive within --metrics-timeout",
      "counter",
      () => [{ labels: {}, value: this.guard.timedOut }],
    );
    add(
      "wallaroo_metrics_sse_clients_dropped_total",
      "Dashboard (/events) clients disconnected because they did not take their events",
      "counter",
      () => [{ labels: {}, value: this.guard.sseDropped }],
    );
    if (this.ctx.resilience) {
      add("wallaroo_checkpoints_total", "Periodic checkpoints committed", "counter", () => [
        { labels: {}, value: this.checkpoint.count },
      ]);
      add("wallaroo_checkpoint_failures_total", "Periodic checkpoints abandoned or failed", "counter", () => [
        { labels: {}, value: this.checkpoint.failures },
      ]);
      add("wallaroo_checkpoint_bytes", "Size of the last committed checkpoint", "gauge", () => [
        { labels: {}, value: this.checkpoint.lastBytes },
      ]);
      add(
        "wallaroo_checkpoint_last_success_timestamp_seconds",
        "When the last checkpoint committed (Unix time; 0 = none yet)",
        "gauge",
        () => [{ labels: {}, value: this.checkpoint.lastSuccess / 1000 }],
      );
    }
  }

  private sinkCounter(slot: number): Value[] {
    const { plan } = this.ctx;
    return plan.sinks.map((k) => ({
      labels: { pipeline: plan.pipelines[k.pipeline].name, sink: this.sinkNames[k.id] },
      value: new Float64Array(this.ctx.memory.sinks[k.id])[slot],
    }));
  }

  /** ms waited on each channel, same order as this.channels */
  private blocked(): (ChannelInfo & { ms: number })[] {
    const { memory } = this.ctx;
    const source = memory.sources.map((sab) => new Float64Array(sab));
    const worker = memory.workers.map((sab) => new Float64Array(sab));
    // A worker's blocked slots: per peer worker, then per sink (see worker.ts).
    return this.channels.map((c) => ({
      ...c,
      ms: c.channel === "source" ? source[c.producer][c.index] : worker[c.producer][this.layout.blockedMs + c.index],
    }));
  }

  /** Busy share of each worker over the last interval. */
  private sample(): { sums: Float64Array; dt: number; prev: Float64Array | null } {
    const now = performance.now();
    const elu = this.ctx.workerThreads.map((t) => t.performance.eventLoopUtilization());
    const sums = this.sums();
    const prev = this.lastTick;
    if (prev) {
      this.busy = elu.map((e, i) => {
        const d = this.ctx.workerThreads[i].performance.eventLoopUtilization(e, prev.elu[i] as never);
        return d.utilization;
      });
    }
    this.lastTick = { sums, elu, at: now };
    return { sums, dt: prev ? (now - prev.at) / 1000 : 0, prev: prev ? prev.sums : null };
  }

  /**
   * Each source's backlog now: a Kafka source's consumer lag summed over the partitions it
   * has seen (records), a TCP source's bytes read and not yet handed on; null when not measured yet.
   */
  private backlog(): { value: number | null; unit: "records" | "bytes"; partitions: number }[] {
    return this.ctx.plan.sources.map((src) => {
      if (this.ctx.lagTopics[src.id] !== null) {
        let sum = 0;
        let seen = 0;
        for (const v of new Float64Array(this.ctx.memory.lag[src.id])) {
          if (v < 0) continue;
          sum += v;
          seen++;
        }
        return { value: seen > 0 ? sum : null, unit: "records" as const, partitions: seen };
      }
      const v = new Float64Array(this.ctx.memory.backlog[src.id])[0];
      return { value: v >= 0 ? v : null, unit: "bytes" as const, partitions: 0 };
    });
  }

  /**
   * The dashboard's data for one tick. `histories`: with the checkpoint and exception
   * histories (each bounded: history.ts); an event leaves them out when they did not change.
   */
  snapshot(histories = { checkpoints: true, errors: true }): unknown {
    const { plan } = this.ctx;
    const l = this.layout;
    const { sums: s, prev } = this.sample();
    const windowed = (base: number) => {
      const h = Array.from(s.subarray(base, base + HIST_SLOTS));
      if (prev) {
        const d = h.map((v, i) => v - prev[base + i]);
        if (d.slice(0, HIST_SLOTS - 1).some((v) => v > 0)) return d;
      }
      return h; // no sample in the last second: the whole run's
    };
    const q = (h: number[]) => {
      const n = h.slice(0, HIST_SLOTS - 1).reduce((x, y) => x + y, 0);
      return {
        p50: quantileMs(h, 0.5),
        p90: quantileMs(h, 0.9),
        p99: quantileMs(h, 0.99),
        meanMs: n > 0 ? h[HIST_SLOTS - 1] / n : null,
      };
    };
    const blocked = this.blocked();
    return {
      at: Date.now(),
      uptime: (Date.now() - this.startedAt) / 1000,
      pipelines: plan.pipelines.map((p) => ({
        name: p.name,
        in: s[l.in + p.id],
        errors: s[l.decodeErrors + p.id],
        latency: q(windowed(l.e2eHist + p.id * HIST_SLOTS)),
      })),
      steps: plan.steps.map((st) => ({
        id: st.id,
        messages: s[l.stepMessages + st.id],
        errors: s[l.stepErrors + st.id],
        time: q(windowed(l.stepHist + st.id * HIST_SLOTS)),
      })),
      sinks: plan.sinks.map((k) => ({
        id: k.id,
        out: s[l.out + k.id],
        errors: s[l.encodeErrors + k.id],
        reconnects: new Float64Array(this.ctx.memory.sinks[k.id])[SINK_RECONNECTS],
        replayedBytes: new Float64Array(this.ctx.memory.sinks[k.id])[SINK_REPLAYED_BYTES],
      })),
      states: plan.states.map((st) => ({
        name: st.spec.name,
        instances: s[l.instances + st.id],
        deleted: s[l.stateDeleted + st.id],
        expired: s[l.stateExpired + st.id],
      })),
      channels: blocked.map((c) => ({
        channel: c.channel,
        from: c.from,
        to: c.to,
        occupancy: occupancy(c.ring),
        blockedMs: c.ms,
      })),
      workers: this.busy.map((b, w) => ({ worker: w, busy: b })),
      checkpoint: this.ctx.resilience ? { ...this.checkpoint } : null,
      backlog: this.backlog(),
      ...(histories.checkpoints ? { checkpoints: this.ctx.resilience ? this.checkpointHistory.list() : null } : {}),
      ...(histories.errors ? { errors: this.errorHistory.list(), errorsUnlisted: this.errorHistory.unlisted } : {}),
    };
  }

  private broadcast(): void {
    this.limited.flush(false);
    this.backlogHistory.add(
      Date.now(),
      this.backlog().map((b) => b.value),
    );
    if (this.clients.size === 0) {
      this.sample(); // keeps the busy gauge current for /metrics
      return; // a client's first event carries the histories whole (handle, /events)
    }
    const changed = {
      checkpoints: this.versions.checkpoints !== this.sentVersions.checkpoints,
      errors: this.versions.errors !== this.sentVersions.errors,
    };
    Object.assign(this.sentVersions, this.versions);
    const snap = this.snapshot(changed);
    this.lastSent = { snap, at: Date.now() };
    const data = `data: ${JSON.stringify(snap)}\n\n`;
    const now = performance.now();
    for (const [res, c] of this.clients) {
      if (!res.write(data) && c.fullSince === null) {
        c.fullSince = now;
        res.once("drain", () => {
          c.fullSince = null;
        });
      }
      // A client that does not read: every event it does not take stays here, in the engine's memory.
      const unsent = res.writableLength;
      if (unsent > SSE_MAX_BUFFERED_BYTES || (c.fullSince !== null && now - c.fullSince >= this.opts.clientTimeoutMs)) {
        this.dropClient(res, unsent, c.fullSince === null ? 0 : now - c.fullSince);
      }
    }
  }

  private dropClient(res: http.ServerResponse, unsent: number, fullMs: number): void {
    this.clients.delete(res);
    this.guard.sseDropped++;
    const remote = res.socket?.remoteAddress;
    this.limited.line(
      "sse",
      { remote, unsentBytes: unsent, blockedMs: Math.round(fullMs) },
      `metrics server: disconnected dashboard client ${remote ?? "?"} that does not read its events (${unsent} bytes unsent, ` +
        `its connection full for ${(fullMs / 1000).toFixed(1)} s; limits ${SSE_MAX_BUFFERED_BYTES} bytes and --metrics-timeout ${this.opts.clientTimeoutMs / 1000} s)`,
    );
    res.destroy();
  }

  /**
   * What the page renders at once: the graph and the latest snapshots — the one sent on
   * /events within the last 3 s, when there is one, then a fresh one — so that rates too
   * show without waiting for the event stream (two snapshots make a rate).
   */
  initialState(): { graph: unknown; snapshots: unknown[]; backlog: unknown } {
    const recent = this.lastSent !== null && Date.now() - this.lastSent.at <= 3000 ? [this.lastSent.snap] : [];
    return { graph: this.graph(), snapshots: [...recent, this.snapshot()], backlog: this.backlogHistory.list() };
  }

  graph(): unknown {
    const { plan } = this.ctx;
    return {
      app: plan.app.name,
      workers: plan.workers,
      pipelines: plan.pipelines.map((p) => ({
        id: p.id,
        name: p.name,
        source: describeSource(plan.sources[p.source].spec),
        steps: plan.steps
          .filter((s) => s.pipeline === p.id)
          .map((s) => ({
            id: s.id,
            name: s.name,
            kind: s.kind,
            multi: s.multi,
            state: s.state >= 0 ? plan.states[s.state].spec.name : null,
          })),
        sinks: p.sinks.map((k) => ({ id: k, name: this.sinkNames[k] })),
      })),
      states: plan.states.map((s) => ({ id: s.id, name: s.spec.name, partitioned: s.partitioned })),
      sources: plan.sources.map((src) => ({
        pipeline: plan.pipelines[src.pipeline].name,
        source: describeSource(src.spec),
        lagTopic: this.ctx.lagTopics[src.id],
      })),
      resilience: this.ctx.resilience,
      options: this.ctx.configuration,
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0];
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { allow: "GET" }).end();
      } else if (path === "/metrics") {
        const body = await this.registry.metrics();
        res.writeHead(200, { "content-type": this.registry.contentType }).end(body);
      } else if (path === "/api/graph") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.graph()));
      } else if (path === "/api/snapshot") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(this.snapshot()));
      } else if (path === "/events") {
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          connection: "keep-alive",
        });
        res.write(`retry: 2000\ndata: ${JSON.stringify(this.snapshot())}\n\n`);
        this.clients.set(res, { fullSince: null });
        req.on("close", () => this.clients.delete(res));
      } else if (path === "/uplot.js" || path === "/uplot.css") {
        const file = join(this.uplotDir, path === "/uplot.js" ? "uPlot.iife.min.js" : "uPlot.min.css");
        res.writeHead(200, { "content-type": contentType(file) }).end(await readFile(file));
      } else {
        const name = path === "/" ? "index.html" : path.slice(1);
        if (!STATIC_FILES.has(name)) {
          res.writeHead(404, { "content-type": "text/plain" }).end("not found; try / or /metrics\n");
          return;
        }
        const file = join(this.staticDir, name);
        const body =
          name === "index.html"
            ? withInitialState(await readFile(file, "utf8"), this.initialState())
            : await readFile(file);
        res.writeHead(200, { "content-type": contentType(file) }).end(body);
      }
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end(`error: ${(err as Error).message}\n`);
    }
  }
}

/**
 * Log lines that clients cause at will (a refused connection, a timeout, a dropped client):
 * per kind, the first line of a window is logged, the others are counted, and the count goes
 * out in one line when the window is over (flush), so lines shown + suppressed = events.
 */
class LimitedLines {
  private readonly kinds = new Map<string, { windowStart: number; suppressed: number }>();
  constructor(
    private readonly log: Logger,
    private readonly windowMs = 10_000,
  ) {}

  line(kind: string, obj: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    const k = this.kinds.get(kind);
    if (k !== undefined && now - k.windowStart < this.windowMs) {
      k.suppressed++;
      return;
    }
    if (k !== undefined) this.summarize(kind, k.suppressed);
    this.kinds.set(kind, { windowStart: now, suppressed: 0 });
    this.log.warn({ kind: `metrics-${kind}`, ...obj }, msg);
  }

  /** Reports the counts of windows that ended (of all windows when `all`, at close). */
  flush(all: boolean): void {
    const now = performance.now();
    for (const [kind, k] of this.kinds) {
      if (!all && now - k.windowStart < this.windowMs) continue;
      this.summarize(kind, k.suppressed);
      this.kinds.delete(kind);
    }
  }

  private summarize(kind: string, n: number): void {
    if (n > 0)
      this.log.warn(
        { kind: `metrics-${kind}`, suppressed: n },
        `metrics server: ${n} more like the last (${kind}) in ${this.windowMs / 1000} s`,
      );
  }
}

const STATIC_FILES = new Set(["index.html", "dashboard.js", "dashboard.css"]);

/**
 * index.html with `state` in place of its <!-- initial-state --> marker, as a JSON script
 * element; "<" is escaped so that no string in the state (an error message, a step
 * name) can close the element.
 */
export function withInitialState(html: string, state: unknown): string {
  const json = JSON.stringify(state).replace(/</g, "\\u003c");
  return html.replace(
    "<!-- initial-state -->",
    () => `<script id="initial-state" type="application/json">${json}</script>`,
  );
}

/** The dashboard's files: beside this module in the sources, or in src/ next to dist/ when built. */
function findDashboardDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [join(here, "dashboard"), join(here, "..", "..", "src", "metrics", "dashboard")]) {
    if (existsSync(join(dir, "index.html"))) return dir;
  }
  throw new Error(`the dashboard's files are missing (looked beside ${here} and in src/metrics/dashboard)`);
}

function contentType(file: string): string {
  if (file.endsWith(".html")) return "text/html; charset=utf-8";
  if (file.endsWith(".js")) return "text/javascript; charset=utf-8";
  if (file.endsWith(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

/** Fill of a ring from its own write and read positions (u32 counters that wrap). */
function occupancy(ring: SharedArrayBuffer): number {
  const h = new Uint32Array(ring, 0, 32);
  const used = (Atomics.load(h, RING_WRITE_POS_WORD) - Atomics.load(h, RING_READ_POS_WORD)) >>> 0;
  return Math.min(1, used / h[RING_CAPACITY_WORD]);
}
