/**
 * The shared memory of one engine run: every ring and doorbell, created by the
 * coordinator and handed to each thread at start. Rings are single-producer,
 * single-consumer, so there is one per (producer thread, consumer thread) pair:
 *
 *   source thread s --sourceRings[s][w]--> worker w --peerRings[w][v]--> worker v
 *   worker w --sinkRings[w][k]--> sink thread k
 */
import { createRing } from "../transport/ring.js";
import { createDoorbell, type Doorbell } from "../transport/doorbell.js";

export interface Wiring {
  readonly workers: number;
  /** [source][worker] */
  readonly sourceRings: SharedArrayBuffer[][];
  /** [from worker][to worker]; null on the diagonal (a worker calls itself directly) */
  readonly peerRings: (SharedArrayBuffer | null)[][];
  /** [worker][sink] */
  readonly sinkRings: SharedArrayBuffer[][];
  readonly workerBells: SharedArrayBuffer[];
  readonly sinkBells: SharedArrayBuffer[];
  /**
   * Int32 pairs per consumer thread (workers, then sinks): [idle, wakeups]. The
   * coordinator reads them to tell when everything in flight has been delivered.
   */
  readonly status: SharedArrayBuffer;
  /**
   * Int32 pairs per sink: [workers whose output to it is backed up, episode logged].
   * A worker stops reading the sources whose messages can reach a sink while any
   * worker is backed up on it (see the worker loop).
   */
  readonly sinkCongestion: SharedArrayBuffer;
}

export interface RingSizes {
  sourceRingBytes: number;
  peerRingBytes: number;
  sinkRingBytes: number;
}

/** bytes of worker-to-worker rings into one worker (all its peers together), before rounding */
export const PEER_RING_BUDGET = 8 * 1024 * 1024;
/** smallest worker-to-worker ring */
export const PEER_RING_MIN = 64 * 1024;

/**
 * Size of each worker-to-worker ring: PEER_RING_BUDGET / workers (createRing rounds it
 * up to a power of two), so that a worker's inbound peer rings hold about the budget
 * whatever the count and the engine's peer memory grows linearly with the workers
 * (about 8 MiB per worker: 8, 24, 56, 120 MiB for 2, 4, 8, 16 workers) instead of with
 * their square: there are workers x (workers - 1) rings. Rings are allocated up front
 * but pages count in RSS only once written through, which steady cross-worker traffic
 * does for every pair. The floor used to be 256 KiB, which made the total quadratic
 * past 32 workers (64 workers: 1 GiB); at 64 KiB it stays linear to about 256
 * workers. A small ring should cost little there (not measured: no machine with that
 * many cores was at hand): each pair carries 1/(workers - 1) of a worker's
 * cross-worker output, and a producer publishes at least every COMMIT_MS. Up to 32
 * workers the sizes are what they were.
 */
export function peerRingBytes(workers: number): number {
  return Math.max(PEER_RING_MIN, Math.floor(PEER_RING_BUDGET / workers));
}

const grid = <T>(rows: number, cols: number, make: (r: number, c: number) => T): T[][] =>
  Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => make(r, c)));

/**
 * The worker-to-worker rings alone, for a caller that allocates them before loading
 * the application. Why it matters: a SharedArrayBuffer comes from calloc, and once
 * loading modules (tsx) has freed large blocks, glibc's dynamic mmap threshold has
 * risen and rings under it are carved from the heap, where calloc clears them: their
 * pages count in RSS from the start (measured: 240 rings of 512 KiB, 16 workers, add
 * 32 MB of RSS after loading an app, 1 MB before).
 */
export function createPeerRings(workers: number, bytes: number): (SharedArrayBuffer | null)[][] {
  return grid(workers, workers, (r, c) => (r === c ? null : createRing(bytes)));
}

export function createWiring(
  sources: number,
  workers: number,
  sinks: number,
  sizes: RingSizes,
  peerRings?: (SharedArrayBuffer | null)[][],
): Wiring {
  return {
    workers,
    sourceRings: grid(sources, workers, () => createRing(sizes.sourceRingBytes)),
    peerRings: peerRings ?? createPeerRings(workers, sizes.peerRingBytes),
    sinkRings: grid(workers, sinks, () => createRing(sizes.sinkRingBytes)),
    workerBells: Array.from({ length: workers }, () => createDoorbell()),
    sinkBells: Array.from({ length: sinks }, () => createDoorbell()),
    status: new SharedArrayBuffer(8 * (workers + sinks)),
    sinkCongestion: new SharedArrayBuffer(8 * Math.max(1, sinks)),
  };
}

/** Word indexes of a sink in `sinkCongestion`. */
export const congestedWorkersWord = (k: number): number => 2 * k;
export const congestionLoggedWord = (k: number): number => 2 * k + 1;

/** Slot of a consumer thread in `status`. */
export const workerSlot = (w: number): number => w;
export const sinkSlot = (workers: number, k: number): number => workers + k;

/** A consumer thread's view of its own status words. */
export class StatusWord {
  private readonly words: Int32Array;
  private readonly at: number;
  constructor(status: SharedArrayBuffer, slot: number) {
    this.words = new Int32Array(status);
    this.at = slot * 2;
  }
  setIdle(idle: boolean): void {
    Atomics.store(this.words, this.at, idle ? 1 : 0);
  }
  wake(): void {
    Atomics.add(this.words, this.at + 1, 1);
  }
  /** Sleeps as an idle consumer until one of its rings has data (or a second passes). */
  async sleepIdle(bell: Doorbell, inputsEmpty: () => boolean): Promise<void> {
    this.setIdle(true);
    await bell.sleep(inputsEmpty, 1000);
    this.wake();
    this.setIdle(false);
  }
}

/** The coordinator's view: idle flags and wake-up counters of all consumer threads. */
export function readStatus(status: SharedArrayBuffer): { allIdle: boolean; idle: boolean[]; wakeups: number[] } {
  const words = new Int32Array(status);
  let allIdle = true;
  const idle: boolean[] = [];
  const wakeups: number[] = [];
  for (let i = 0; i < words.length; i += 2) {
    const slotIdle = Atomics.load(words, i) === 1;
    if (!slotIdle) allIdle = false;
    idle.push(slotIdle);
    wakeups.push(Atomics.load(words, i + 1));
  }
  return { allIdle, idle, wakeups };
}
