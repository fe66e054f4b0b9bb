/**
 * Where each thread keeps its counters: one SharedArrayBuffer of Float64 slots per
 * worker (and one per source and sink thread), written only by that thread and read
 * by the coordinator when /metrics is scraped or the dashboard ticks. The executor's
 * own counters (messages in per pipeline, out per sink, per step) are views on these
 * slots, so counting costs what it cost before: one typed-array increment, no message,
 * no atomics. Single writer per slot; an aligned 8-byte store is not torn on the
 * platforms Node runs on, so a reader sees either the old or the new count.
 */

/**
 * Upper bounds (ms) of the histogram buckets kept in shared memory: processing time
 * of a step (a microsecond and up) and end-to-end latency (up to seconds).
 */
export const BUCKETS_MS = [
  0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000,
];
/** per histogram: one count per bucket, the +Inf bucket, then the sum (ms) */
export const HIST_SLOTS = BUCKETS_MS.length + 2;

/**
 * One in SAMPLE_EVERY messages is timed (a power of two: the test is a mask).
 * WALLAROO_METRICS_SAMPLE_EVERY changes it (tests time every message with 1).
 */
export const SAMPLE_EVERY = sampleEvery(process.env.WALLAROO_METRICS_SAMPLE_EVERY);

function sampleEvery(v: string | undefined): number {
  // A timed source message times everything it fans out to (a line's words): keep it rare.
  if (v === undefined || v === "") return 1024;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || (n & (n - 1)) !== 0) {
    throw new Error(`WALLAROO_METRICS_SAMPLE_EVERY must be a power of two (1, 2, 4, ...), got ${JSON.stringify(v)}`);
  }
  return n;
}

export interface PlanShape {
  pipelines: number;
  sinks: number;
  steps: number;
  states: number;
  workers: number;
}

/** Slot offsets (in Float64 units) of a worker's metrics buffer. */
export interface WorkerLayout {
  readonly in: number;
  readonly out: number;
  readonly stepMessages: number;
  readonly stepErrors: number;
  /** events behind the watermark, per (window) step, whatever the late-data policy did with them */
  readonly stepLate: number;
  /** errors outside a step: decoders per pipeline */
  readonly decodeErrors: number;
  /** errors in encoders, per sink */
  readonly encodeErrors: number;
  readonly stepHist: number;
  readonly e2eHist: number;
  /** ms spent waiting for a full output ring: per peer worker, then per sink */
  readonly blockedMs: number;
  readonly instances: number;
  /** per state: instances ended by their computation returning DELETE, and removed by the state's ttl */
  readonly stateDeleted: number;
  readonly stateExpired: number;
  readonly size: number;
}

/**
 * Free slots before and after a worker's counters (128 bytes each): a small
 * SharedArrayBuffer can sit next to the rings' doorbells and status words, which
 * other threads hammer with atomics; sharing a cache line with them would make every
 * counter increment contend (false sharing).
 */
const PAD_SLOTS = 16;

export function workerLayout(s: PlanShape): WorkerLayout {
  let at = PAD_SLOTS;
  const take = (n: number) => {
    const a = at;
    at += n;
    return a;
  };
  const l = {
    in: take(s.pipelines),
    out: take(s.sinks),
    stepMessages: take(s.steps),
    stepErrors: take(s.steps),
    stepLate: take(s.steps),
    decodeErrors: take(s.pipelines),
    encodeErrors: take(s.sinks),
    stepHist: take(s.steps * HIST_SLOTS),
    e2eHist: take(s.pipelines * HIST_SLOTS),
    blockedMs: take(s.workers + s.sinks),
    instances: take(s.states),
    stateDeleted: take(s.states),
    stateExpired: take(s.states),
    size: 0,
  };
  l.size = at + PAD_SLOTS;
  return l;
}

/** Slots of a sink thread: reconnects, bytes written again after reconnecting. */
export const SINK_RECONNECTS = 0;
export const SINK_REPLAYED_BYTES = 1;
export const SINK_SLOTS = 2;

export interface MetricsMemory {
  /** per worker */
  readonly workers: SharedArrayBuffer[];
  /** per source thread: ms its connections were paused on a full ring, per worker */
  readonly sources: SharedArrayBuffer[];
  /** per sink thread: SINK_SLOTS */
  readonly sinks: SharedArrayBuffer[];
  /** per source thread: Kafka consumer lag per partition (KAFKA_PARTITIONS slots, -1 = not seen) */
  readonly lag: SharedArrayBuffer[];
  /**
   * per source thread: one slot, the bytes it read and has not handed to a worker yet
   * (a TCP source); -1 = the source does not measure it (its backlog is its lag, above)
   */
  readonly backlog: SharedArrayBuffer[];
}

/** partitions whose lag is reported (a topic with more reports its first KAFKA_PARTITIONS) */
export const KAFKA_PARTITIONS = 256;

export function createMetricsMemory(s: PlanShape, sources: number): MetricsMemory {
  const l = workerLayout(s);
  return {
    workers: Array.from({ length: s.workers }, () => new SharedArrayBuffer(8 * l.size)),
    sources: Array.from({ length: sources }, () => new SharedArrayBuffer(8 * s.workers)),
    sinks: Array.from({ length: s.sinks }, () => new SharedArrayBuffer(8 * SINK_SLOTS)),
    lag: Array.from({ length: sources }, () => {
      const sab = new SharedArrayBuffer(8 * KAFKA_PARTITIONS);
      new Float64Array(sab).fill(-1);
      return sab;
    }),
    backlog: Array.from({ length: sources }, () => {
      const sab = new SharedArrayBuffer(8);
      new Float64Array(sab)[0] = -1;
      return sab;
    }),
  };
}

/** Adds one observation (ms) to the histogram at `base` of `slots`. Only sampled messages get here. */
export function observe(slots: Float64Array, base: number, ms: number): void {
  let i = 0;
  while (i < BUCKETS_MS.length && ms > BUCKETS_MS[i]) i++;
  slots[base + i]++;
  slots[base + HIST_SLOTS - 1] += ms;
}
