/**
 * The metrics endpoint and live dashboard, on the coordinator (main thread):
 *
 *   GET /metrics      Prometheus text format (prom-client registry)
 *   GET /             the dashboard (static files in ./dashboard, shipped with the package);
 *                     index.html carries the graph and the latest snapshots, so the page
 *                     shows the engine's state before its event stream delivers anything
 *   GET /api/graph    the application's graph, as JSON
 *   GET /events       Server-Sent Events: one snapshot a second
 *
 * Nothing here runs per message: every number is read from the threads' shared
 * counters (metrics/layout.ts), from the rings' own positions, or from the event-loop
 * utilisation Node keeps for each thread, when a scrape or a dashboard tick asks.
 */
import http from "node:http";
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

export interface MetricsOptions {
  port: number;
  host: string;
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
  private readonly clients = new Set<http.ServerResponse>();
  /** the last snapshot sent on /events, with the time it was made (the page's first rates come from it) */
  private lastSent: { snap: unknown; at: number } | null = null;
  private readonly channels: ChannelInfo[];
  private tick: NodeJS.Timeout | null = null;
  private lastTick: { sums: Float64Array; elu: { idle: number; active: number }[]; at: number } | null = null;
  private busy: number[] = [];
  private readonly recentErrors: RecentError[] = [];
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
  ) {
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
    this.server = http.createServer((req, res) => {
      void this.handle(req, res);
    });
  }

  static async start(ctx: MetricsContext, opts: MetricsOptions): Promise<MetricsServer> {
    const m = new MetricsServer(ctx, opts);
    await new Promise<void>((resolve, reject) => {
      m.server.once("error", reject);
      m.server.listen(opts.port, opts.host, () => {
        m.server.off("error", reject);
        resolve();
      });
    });
    m.sample();
    m.tick = setInterval(() => m.broadcast(), 1000);
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

  /** A worker's stats report carried errors: keep the latest for the dashboard. */
  addErrors(errors: RecentError[]): void {
    this.recentErrors.push(...errors);
    if (this.recentErrors.length > 20) this.recentErrors.splice(0, this.recentErrors.length - 20);
  }

  onCheckpoint(outcome: CheckpointOutcome, stats: CheckpointStats | null, ms: number): void {
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
    for (const c of this.clients) c.end();
    this.clients.clear();
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
    add("wallaroo_sink_reconnects_total", "Reconnections of each TCP sink", "counter", () =>
      this.sinkCounter(SINK_RECONNECTS),
    );
    add(
      "wallaroo_sink_replayed_bytes_total",
      "Bytes a TCP sink wrote again after reconnecting (at-least-once tail)",
      "counter",
      () => this.sinkCounter(SINK_REPLAYED_BYTES),
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

  /** The dashboard's data for one tick. */
  snapshot(): unknown {
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
      states: plan.states.map((st) => ({ name: st.spec.name, instances: s[l.instances + st.id] })),
      channels: blocked.map((c) => ({
        channel: c.channel,
        from: c.from,
        to: c.to,
        occupancy: occupancy(c.ring),
        blockedMs: c.ms,
      })),
      workers: this.busy.map((b, w) => ({ worker: w, busy: b })),
      checkpoint: this.ctx.resilience ? { ...this.checkpoint } : null,
      errors: this.recentErrors.slice(-10),
    };
  }

  private broadcast(): void {
    if (this.clients.size === 0) {
      this.sample(); // keeps the busy gauge current for /metrics
      return;
    }
    const snap = this.snapshot();
    this.lastSent = { snap, at: Date.now() };
    const data = `data: ${JSON.stringify(snap)}\n\n`;
    for (const c of this.clients) c.write(data);
  }

  /**
   * What the page renders at once: the graph and the latest snapshots — the one sent on
   * /events within the last 3 s, when there is one, then a fresh one — so that rates too
   * show without waiting for the event stream (two snapshots make a rate).
   */
  initialState(): { graph: unknown; snapshots: unknown[] } {
    const recent = this.lastSent !== null && Date.now() - this.lastSent.at <= 3000 ? [this.lastSent.snap] : [];
    return { graph: this.graph(), snapshots: [...recent, this.snapshot()] };
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
        this.clients.add(res);
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
