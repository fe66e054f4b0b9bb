/**
 * Consistent checkpoints by stop-and-drain, on the coordinator: every interval
 * the sources are asked to pause at a message boundary and report their
 * positions (Kafka: the next offset of each partition), the engine is drained
 * until quiescent (everything read before the cut has been processed and handed
 * to the sinks), every worker hands over the state instances marked saveState
 * since the last checkpoint, and the store commits them with the positions as
 * one checkpoint. Then the sources resume. This is a degenerate aligned barrier:
 * the whole engine is the barrier's wave front, and the pause lasts as long as
 * the drain plus the write.
 *
 * A checkpoint that cannot drain within the timeout (a sink not taking output) is
 * abandoned with a log line: the sources resume, the dirty marks stay on the
 * workers for the next one, and the previous checkpoint remains the latest.
 *
 * A checkpoint that fails after `collect` has taken the workers' dirty marks: its
 * records exist nowhere else. While running, that stops the engine (no final
 * checkpoint: exit 3). During a stop, the final checkpoint comes next and must not
 * report success without them: it carries them into its own commit when the failure
 * was the store's and no Kafka transaction was prepared (the records are whole, in
 * memory; written later, the latest record of a key still wins). Otherwise it refuses
 * (finalCheckpoint "failed", exit 4): a prepared transaction would be replaced by the
 * final checkpoint's own (the sink keeps one), and a store-committed one whose EndTxn
 * failed must stay named by the latest MANIFEST so that the restart commits it.
 */
import type { Plan } from "../topology/plan.js";
import { ownerOf } from "../topology/plan.js";
import type { Key } from "../topology/spec.js";
import type { Logger } from "../core/log.js";
import { privateMembers } from "../transport/serde.js";
import type {
  AppIdentity,
  CheckpointStore,
  EncodedRecords,
  KeyTag,
  PendingTransaction,
  Positions,
  StoredEntry,
} from "./store.js";

/** [state id, key, serialized instance]: what a worker restores */
export type WorkerEntry = [number, Key, Uint8Array];

/** What the checkpointer needs from the engine. */
export interface CheckpointHooks {
  /** asks every source to pause at a message boundary; null when one did not within timeoutMs */
  pauseSources(id: number, timeoutMs: number): Promise<Positions | null>;
  resumeSources(id: number): void;
  waitQuiescent(timeoutMs: number): Promise<boolean>;
  /** the dirty instances of every worker, encoded as log records (clears their marks) */
  collect(id: number): Promise<EncodedRecords[]>;
  /**
   * Two-phase commit of the Kafka sinks' transactions. Prepare: every output before the
   * cut is acknowledged by the brokers, in a transaction still open; answers the
   * transactions to commit, which the store commit records with the checkpoint. Then
   * commitSinks makes them visible to read_committed consumers. A crash before the store
   * commit: the open transactions are aborted (fencing) and the interval is replayed; a
   * crash after it: the restart commits the transactions the checkpoint names (never both,
   * never neither).
   */
  prepareSinks(id: number): Promise<PendingTransaction[]>;
  commitSinks(id: number): Promise<void>;
  /**
   * A checkpoint failed after the workers handed over (and forgot) their dirty marks:
   * going on would leave those instances out of every later checkpoint, so the engine stops.
   */
  fatal(message: string): void;
}

/** committed; nothing changed since the last one (nothing written); abandoned (could not drain in time); failed */
export type CheckpointOutcome = "committed" | "unchanged" | "abandoned" | "failed";

export interface CheckpointStats {
  checkpoint: number;
  /** instances written */
  instances: number;
  /** instances removed (tombstones written: DELETE or ttl since the previous checkpoint) */
  removed: number;
  bytes: number;
  pauseMs: number;
  compacted: boolean;
}

/**
 * The application's identity in the store. Called once, when resilience is on and
 * before any thread starts: a state class whose instances cannot be saved is refused
 * here, naming it, rather than checkpointed "successfully" and broken after a restart.
 */
export function appIdentity(plan: Plan): AppIdentity {
  for (const s of plan.states) {
    const priv = privateMembers(s.spec.stateClass);
    if (priv.length > 0) {
      const C = s.spec.stateClass.name || "(anonymous)";
      throw new Error(
        `state ${JSON.stringify(s.spec.name)}: class ${C} has private member(s) ${priv.join(", ")}, which a checkpoint cannot save ` +
          `(they are not properties: after a restart every access would throw "Cannot read private member"); ` +
          `make them ordinary properties of ${C} (e.g. _${priv[0].replace(/^#/, "").replace(/ .*/, "")}), or run without --resilience-dir`,
      );
    }
  }
  return {
    app: plan.app.name,
    states: plan.states.map((s) => ({ name: s.spec.name, class: s.spec.stateClass.name, partitioned: s.partitioned })),
  };
}

/** The stored entries, restored into the workers that own them under this plan (any worker count). */
export function entriesByOwner(plan: Plan, entries: StoredEntry[]): WorkerEntry[][] {
  const byName = new Map(plan.states.map((s) => [s.spec.name, s]));
  const out: WorkerEntry[][] = Array.from({ length: plan.workers }, () => []);
  for (const e of entries) {
    const state = byName.get(e.state);
    if (!state)
      throw new Error(`the checkpoint holds state ${JSON.stringify(e.state)}, which this application does not have`);
    const key = fromTagged(e.tag, e.key);
    out[ownerOf(state, key, plan.workers)].push([state.id, key, e.value]);
  }
  return out;
}

function fromTagged(tag: KeyTag, key: string | number): Key {
  return tag === "b" ? BigInt(key) : tag === "-" ? 0 : key;
}

export class Checkpointer {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private nextId = 1;
  /** records of a checkpoint that failed during the stop, for the final checkpoint (see the top) */
  private carried: EncodedRecords[] = [];
  /** why the final checkpoint must refuse (see the top), or null */
  private refuseFinal: string | null = null;
  /** a compaction failed and none succeeded since (logged once per streak) */
  private compactionFailing = false;
  /** told the outcome of each periodic checkpoint (metrics); stats only when committed */
  observer: ((outcome: CheckpointOutcome, stats: CheckpointStats | null, ms: number, reason?: string) => void) | null =
    null;

  constructor(
    private readonly store: CheckpointStore,
    private readonly plan: Plan,
    private positions: Positions,
    private readonly hooks: CheckpointHooks,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const t0 = performance.now();
      this.running = this.checkpoint()
        .then(
          (st) => {
            if (st !== null) this.observer?.("committed", st, performance.now() - t0);
          },
          (err) => {
            this.observer?.("failed", null, performance.now() - t0, (err as Error).message);
            this.log.error(
              { err: (err as Error).message },
              `checkpoint failed: ${(err as Error).message}; the previous checkpoint stays the latest`,
            );
          },
        )
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a checkpoint in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** One periodic checkpoint: pause, drain, collect, commit, resume. */
  async checkpoint(): Promise<CheckpointStats | null> {
    const id = this.nextId++;
    const t0 = performance.now();
    let resumed = false;
    const resume = () => {
      if (!resumed) this.hooks.resumeSources(id);
      resumed = true;
    };
    try {
      this.log.debug({ checkpointRequest: id }, `checkpoint: pausing the sources (request ${id})`);
      const positions = await this.hooks.pauseSources(id, this.timeoutMs);
      if (positions === null) {
        this.log.warn(
          { checkpointTimeoutMs: this.timeoutMs },
          `checkpoint abandoned: a source could not pause within ${this.timeoutMs} ms (its worker ring stays full: is a sink stalled?); the previous checkpoint stays the latest`,
        );
        this.observer?.(
          "abandoned",
          null,
          performance.now() - t0,
          `a source could not pause within ${this.timeoutMs} ms`,
        );
        return null;
      }
      const left = Math.max(0, this.timeoutMs - (performance.now() - t0));
      if (!(await this.hooks.waitQuiescent(left))) {
        this.log.warn(
          { checkpointTimeoutMs: this.timeoutMs },
          `checkpoint abandoned: in-flight messages did not drain within ${this.timeoutMs} ms (is a sink stalled?); the previous checkpoint stays the latest`,
        );
        this.observer?.(
          "abandoned",
          null,
          performance.now() - t0,
          `in-flight messages did not drain within ${this.timeoutMs} ms`,
        );
        return null;
      }
      const entries = await this.hooks.collect(id);
      let stats: CheckpointStats | null;
      let written = false;
      let pending: PendingTransaction[] | null = null;
      try {
        pending = await this.hooks.prepareSinks(id);
        stats = this.commit(entries, positions, t0, pending);
        written = true;
        await this.hooks.commitSinks(id);
      } catch (err) {
        const why = (err as Error).message;
        this.observer?.("failed", null, performance.now() - t0, why);
        if (!this.stopped) {
          this.hooks.fatal(
            written
              ? `the Kafka transactions of the checkpoint just written could not be committed (${why}); stopping so that a restart commits them`
              : `checkpoint could not be written (${why}); stopping so that a restart resumes from the last checkpoint`,
          );
        } else if (!written && pending !== null && pending.length === 0) {
          this.carried.push(...entries);
          const n = entries.reduce((k, p) => k + p.ids.length, 0);
          this.log.error(
            { err: why, instances: n },
            `checkpoint failed during the stop (${why}); the final checkpoint will write its ${n} state instance(s)`,
          );
        } else {
          this.refuseFinal = written
            ? `the Kafka transactions of checkpoint ${this.store.checkpoint}, written during the stop, could not be committed (${why}); no final checkpoint, so that a restart commits them`
            : `a checkpoint failed during the stop (${why}) after the workers handed over their state${pending === null ? ", and the Kafka transactions could not be prepared" : " and its Kafka transactions were prepared"}: that state is lost, a restart resumes from the last checkpoint`;
          this.log.error({ err: why }, `checkpoint failed during the stop: ${this.refuseFinal}`);
        }
        return null;
      }
      resume();
      if (stats) stats.pauseMs = performance.now() - t0;
      if (stats) this.logCommitted(stats);
      else this.observer?.("unchanged", null, performance.now() - t0);
      return stats;
    } finally {
      resume();
    }
  }

  /**
   * The last checkpoint of a clean stop: the sources are stopped and the engine is
   * drained, so only the dirty instances and the sources' final positions remain.
   */
  async final(positions: Positions): Promise<void> {
    if (this.refuseFinal !== null) throw new Error(`refused: ${this.refuseFinal}`);
    const t0 = performance.now();
    const id = this.nextId++;
    // Carried records first: a key's record collected now is newer and must come after (the latest wins).
    const entries = [...this.carried, ...(await this.hooks.collect(id))];
    const pending = await this.hooks.prepareSinks(id);
    const stats = this.commit(entries, positions, t0, pending);
    this.carried = [];
    await this.hooks.commitSinks(id);
    if (stats) this.logCommitted(stats, "final ");
  }

  private commit(
    parts: EncodedRecords[],
    positions: Positions,
    t0: number,
    pending: PendingTransaction[],
  ): CheckpointStats | null {
    const merged: Positions = { ...this.positions };
    for (const [pipeline, p] of Object.entries(positions)) {
      const before = merged[pipeline]?.topic === p.topic ? merged[pipeline].offsets : {};
      merged[pipeline] = { topic: p.topic, offsets: { ...before, ...p.offsets } };
    }
    const records = parts.reduce((n, p) => n + p.ids.length, 0);
    const removed = parts.reduce((n, p) => n + p.tombstones.reduce((m, t) => m + (t ? 1 : 0), 0), 0);
    const instances = records - removed;
    // A transaction to commit is written even when nothing else changed: it is the commit decision. A
    // record of nothing new (a file sink's unchanged end, records 0) is not a change: the manifest
    // already holds that end.
    const decisions = pending.filter((p) => p.records > 0).length;
    if (records === 0 && decisions === 0 && JSON.stringify(merged) === JSON.stringify(this.positions)) return null;
    const r = this.store.commitEncoded(parts, merged, this.plan.workers, pending);
    // Test hook (test/kafka/txn-window.test.ts): a crash in the window between the store commit and the
    // Kafka commits, at the first checkpoint numbered at least N that has a transaction to commit.
    if (pending.length > 0 && r.checkpoint >= Number(process.env.WALLAROO_TEST_DIE_AFTER_STORE_COMMIT || Infinity))
      process.kill(process.pid, "SIGKILL");
    this.positions = merged;
    if (r.compactionError !== null) {
      if (!this.compactionFailing)
        this.log.warn(
          { checkpoint: r.checkpoint, err: r.compactionError, logBytes: this.store.bytes },
          `checkpoint ${r.checkpoint} is committed, but compacting its log failed (${r.compactionError}); ` +
            "the log keeps its old records and grows until a compaction succeeds (tried at every checkpoint)",
        );
      this.compactionFailing = true;
    } else if (r.compacted && this.compactionFailing) {
      this.compactionFailing = false;
      this.log.info({ checkpoint: r.checkpoint }, `checkpoint ${r.checkpoint}: the log is compacted again`);
    }
    return {
      checkpoint: r.checkpoint,
      instances,
      removed,
      bytes: r.bytes,
      pauseMs: performance.now() - t0,
      compacted: r.compacted,
    };
  }

  private logCommitted(s: CheckpointStats, what = ""): void {
    this.log.info(
      {
        checkpoint: s.checkpoint,
        instances: s.instances,
        removed: s.removed,
        bytes: s.bytes,
        pauseMs: Number(s.pauseMs.toFixed(2)),
        logBytes: this.store.bytes,
        compacted: s.compacted,
      },
      `${what}checkpoint ${s.checkpoint} committed: ${s.instances} state instance(s)${s.removed > 0 ? `, ${s.removed} removed` : ""}, ${s.bytes} bytes, ${what ? "took" : "sources paused"} ${s.pauseMs.toFixed(1)} ms${s.compacted ? ", log compacted" : ""}`,
    );
  }
}
