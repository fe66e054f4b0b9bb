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
}

export interface RingSizes {
  sourceRingBytes: number;
  peerRingBytes: number;
  sinkRingBytes: number;
}

export function createWiring(sources: number, workers: number, sinks: number, sizes: RingSizes): Wiring {
  const grid = <T>(rows: number, cols: number, make: (r: number, c: number) => T): T[][] =>
    Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => make(r, c)));
  return {
    workers,
    sourceRings: grid(sources, workers, () => createRing(sizes.sourceRingBytes)),
    peerRings: grid(workers, workers, (r, c) => (r === c ? null : createRing(sizes.peerRingBytes))),
    sinkRings: grid(workers, sinks, () => createRing(sizes.sinkRingBytes)),
    workerBells: Array.from({ length: workers }, () => createDoorbell()),
    sinkBells: Array.from({ length: sinks }, () => createDoorbell()),
    status: new SharedArrayBuffer(8 * (workers + sinks)),
  };
}

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
