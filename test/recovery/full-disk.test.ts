/**
 * The checkpoint store and the checkpointer on a full disk (issue 24), on a real small
 * filesystem (a tmpfs; needs root, skipped otherwise): a short MANIFEST write is never
 * committed, a compaction failing after a commit does not undo it, the lock's release and
 * take-over name their file, a checkpoint failing during a stop does not let the final
 * checkpoint report success without its state; and a store without its MANIFEST is refused.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import {
  CheckpointStore,
  RecordWriter,
  type AppIdentity,
  type PendingTransaction,
  type Positions,
  type StoredEntry,
} from "../../dist/recovery/store.js";
import { Checkpointer } from "../../dist/recovery/checkpoint.js";
import { canMount, mountSmallFs, PAGE, type SmallFs } from "../helpers/small-fs.js";

const ID: AppIdentity = { app: "alphabet", states: [{ name: "letter state", class: "TotalVotes", partitioned: true }] };
const entry = (key: string, value: string): StoredEntry => ({
  state: "letter state",
  tag: "s",
  key,
  value: Buffer.from(value),
});
const encode = (entries: StoredEntry[]) => {
  const w = new RecordWriter();
  for (const e of entries) w.add(e.state, e.tag, e.key, e.value);
  return w.finish();
};
const text = (entries: StoredEntry[]) =>
  Object.fromEntries(entries.map((e) => [e.key, Buffer.from(e.value).toString()]));
/** Kafka positions of `n` partitions: a MANIFEST over 4 KiB for n = 400 */
const manyPartitions = (n: number, base: number): Positions => ({
  orders: {
    topic: "orders",
    offsets: Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i), String(base + i)])),
  },
});
const lockTemps = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith("LOCK.tmp-"));

describe.skipIf(!canMount)("checkpoint store on a full disk (tmpfs)", () => {
  let small: SmallFs;
  let dir: string;
  beforeEach(() => {
    small = mountSmallFs(512);
    dir = path.join(small.dir, "store");
  });
  afterEach(() => {
    small.unmount();
  });

  it("a MANIFEST written short (one page left) is not committed: the commit throws naming the file, the previous checkpoint reopens", () => {
    const { store } = CheckpointStore.open(dir, ID, 1);
    store.commitEncoded([encode([entry("a", "1")])], manyPartitions(400, 1000), 1);
    const manifest = fs.readFileSync(path.join(dir, "MANIFEST"));
    expect(manifest.length).toBeGreaterThan(PAGE);
    small.fill(PAGE); // room for the first page of MANIFEST.tmp only: the write is short
    expect(() => store.commitEncoded([], manyPartitions(400, 2000), 1)).toThrow(
      new RegExp(`cannot write \\(${PAGE} of ${manifest.length} bytes written\\) ${dir}/MANIFEST\\.tmp: ENOSPC`),
    );
    expect(fs.existsSync(path.join(dir, "MANIFEST.tmp"))).toBe(false);
    expect(fs.readFileSync(path.join(dir, "MANIFEST"))).toEqual(manifest);
    store.close();
    small.unfill();
    const again = CheckpointStore.open(dir, ID, 1);
    expect(again.checkpoint).toBe(1);
    expect(again.positions).toEqual(manyPartitions(400, 1000));
    expect(text(again.entries)).toEqual({ a: "1" });
    again.store.close();
  });

  it("a compaction that fails after the MANIFEST commit (ENOSPC) leaves the checkpoint committed, the old log current, no partial new log", () => {
    const { store } = CheckpointStore.open(dir, ID, 1);
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const round = (r: number) => encode(keys.map((k) => entry(k, `${r}:`.padEnd(2048, "x"))));
    // Each round rewrites every key: the log passes 64 KiB (and twice its live size) at round 4.
    for (let r = 1; r <= 3; r++) expect(store.commitEncoded([round(r)], {}, 1).compacted).toBe(false);
    const last = round(4);
    const size = store.bytes;
    const pages = (n: number) => Math.ceil(n / PAGE);
    // Room for round 4's records and the MANIFEST.tmp (plus a page to spare), not for the compacted log.
    small.fill((pages(size + last.bytes.length) - pages(size) + 2) * PAGE);
    const r = store.commitEncoded([last], { p: { topic: "t", offsets: { "0": "4" } } }, 1);
    expect(r.checkpoint).toBe(4);
    expect(r.compacted).toBe(false);
    expect(r.compactionError).toMatch(new RegExp(`cannot write .*${dir}/log-2: ENOSPC`));
    expect(fs.readdirSync(dir).filter((f) => f.startsWith("log-"))).toEqual(["log-1"]);
    expect(store.checkpoint).toBe(4);
    store.close();
    // The store reopens at checkpoint 4, on the full disk and after.
    const full = CheckpointStore.open(dir, ID, 1);
    expect(full.checkpoint).toBe(4);
    expect(full.positions).toEqual({ p: { topic: "t", offsets: { "0": "4" } } });
    expect(Object.values(text(full.entries)).every((v) => v.startsWith("4:"))).toBe(true);
    expect(full.entries.length).toBe(8);
    full.store.close();
    small.unfill();
    const again = CheckpointStore.open(dir, ID, 1);
    expect(again.checkpoint).toBe(4);
    // with room, the next checkpoint compacts
    const next = again.store.commitEncoded([round(5)], {}, 1);
    expect(next).toMatchObject({ checkpoint: 5, compacted: true, compactionError: null });
    again.store.close();
    expect(text(CheckpointStore.open(dir, ID, 1).entries)).toEqual(
      Object.fromEntries(keys.map((k) => [k, "5:".padEnd(2048, "x")])),
    );
  });

  it("a lock that cannot be marked released (full disk) is said, naming the file; no LOCK.tmp is left; the next engine takes it over", () => {
    const { store } = CheckpointStore.open(dir, ID, 1);
    store.commitEncoded([encode([entry("a", "1")])], {}, 1);
    small.fill(0);
    expect(() => store.close()).toThrow(new RegExp(`could not mark ${dir}/LOCK\\.1 released .*ENOSPC`));
    expect(lockTemps(dir)).toEqual([]);
    small.unfill();
    const again = CheckpointStore.open(dir, ID, 1);
    expect(text(again.entries)).toEqual({ a: "1" });
    again.store.close();
  });

  it("a restart on a full disk is refused naming the lock file it could not write; no LOCK.tmp is left", () => {
    const { store } = CheckpointStore.open(dir, ID, 1);
    store.commitEncoded([encode([entry("a", "1")])], {}, 1);
    store.close();
    small.fill(0);
    expect(() => CheckpointStore.open(dir, ID, 1)).toThrow(
      new RegExp(`cannot lock checkpoint store ${dir}: writing ${dir}/LOCK\\.tmp-[0-9]+-\\w+ failed \\(ENOSPC`),
    );
    expect(lockTemps(dir)).toEqual([]);
  });
});

describe("checkpoint store without its MANIFEST", () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-store-"));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("is refused, naming the files and the choice; the log is untouched", () => {
    const { store } = CheckpointStore.open(dir, ID, 1);
    store.commitEncoded([encode([entry("a", "1")])], {}, 1);
    store.close();
    const log = fs.readFileSync(path.join(dir, "log-1"));
    expect(log.length).toBeGreaterThan(0);
    fs.rmSync(path.join(dir, "MANIFEST"));
    expect(() => CheckpointStore.open(dir, ID, 1)).toThrow(
      `checkpoint store ${dir} has no ${dir}/MANIFEST, but holds ${dir}/log-1 (${log.length} bytes): ` +
        "without the MANIFEST there is no telling which checkpoint they hold, and starting empty would destroy them; " +
        `restore the MANIFEST (from a backup of ${dir}), or move ${dir} away to start from empty state`,
    );
    expect(fs.readFileSync(path.join(dir, "log-1"))).toEqual(log);
  });

  it("an empty log-1 without a MANIFEST (a first open that died) opens as a new store", () => {
    fs.writeFileSync(path.join(dir, "log-1"), "");
    const opened = CheckpointStore.open(dir, ID, 1);
    expect(opened.checkpoint).toBe(0);
    expect(opened.entries).toEqual([]);
    opened.store.close();
  });
});

/**
 * The checkpointer with the real store: the hooks stand for the engine (the workers' dirty
 * instances, cleared when collected as the workers clear their marks; the Kafka sinks' answers).
 */
describe.skipIf(!canMount)("a checkpoint failing during a stop (tmpfs)", () => {
  let small: SmallFs;
  let dir: string;
  beforeEach(() => {
    small = mountSmallFs(256);
    dir = path.join(small.dir, "store");
  });
  afterEach(() => {
    small.unmount();
  });

  const TXN: PendingTransaction = {
    sink: 0,
    transactionalId: "wallaroo.alphabet.x.sink-0.0",
    producerId: "7",
    producerEpoch: 0,
    records: 3,
  };

  /**
   * A checkpointer whose first periodic checkpoint runs into a stop: the stop comes while the workers
   * hand over their state, then `during` (a full disk...) happens; `sinks` answers the Kafka phases.
   */
  function setup(opts: {
    during?: () => void;
    prepare?: (call: number) => PendingTransaction[];
    commit?: (call: number) => void;
  }) {
    const opened = CheckpointStore.open(dir, ID, 1);
    const lines: { level: number; msg: string }[] = [];
    const log = pino({ level: "info" }, { write: (s: string) => lines.push(JSON.parse(s)) });
    let dirty: StoredEntry[] = [entry("a", "1"), entry("b", "2")];
    let prepares = 0;
    let commits = 0;
    const fatal: string[] = [];
    const cp = new Checkpointer(
      opened.store,
      { workers: 1 } as never,
      {},
      {
        pauseSources: async () => ({ p: { topic: "t", offsets: { "0": "10" } } }),
        resumeSources: () => {},
        waitQuiescent: async () => true,
        collect: async () => {
          const parts = [encode(dirty)];
          dirty = [];
          if (prepares === 0) {
            void cp.stop();
            opts.during?.();
          }
          return parts;
        },
        prepareSinks: async () => {
          const call = prepares++;
          return opts.prepare ? opts.prepare(call) : [];
        },
        commitSinks: async () => opts.commit?.(commits++),
        fatal: (m) => fatal.push(m),
      },
      log,
      1000,
      1000,
    );
    const reopen = () => {
      opened.store.close();
      return CheckpointStore.open(dir, ID, 1);
    };
    return { cp, lines, fatal, reopen, store: opened.store };
  }

  it("the failed checkpoint's state goes into the final checkpoint (disk freed in between): written, and there after a restart", async () => {
    const t = setup({ during: () => small.fill(0) });
    expect(await t.cp.checkpoint()).toBe(null);
    expect(t.fatal).toEqual([]);
    expect(t.lines.some((l) => /checkpoint failed during the stop \(.*ENOSPC.*2 state instance/.test(l.msg))).toBe(
      true,
    );
    small.unfill();
    await t.cp.final({ p: { topic: "t", offsets: { "0": "12" } } });
    const again = t.reopen();
    expect(again.checkpoint).toBe(1);
    expect(text(again.entries)).toEqual({ a: "1", b: "2" });
    expect(again.positions).toEqual({ p: { topic: "t", offsets: { "0": "12" } } });
    again.store.close();
  });

  it("the disk still full: the final checkpoint fails (never 'written' without the state), the store keeps the checkpoint before", async () => {
    const t = setup({ during: () => small.fill(0) });
    await t.cp.checkpoint();
    // no source moved on either (a TCP source has no positions): only the carried state is left to write
    await expect(t.cp.final({})).rejects.toThrow(/ENOSPC/);
    small.unfill();
    const again = t.reopen();
    expect(again.checkpoint).toBe(0);
    again.store.close();
  });

  it("a Kafka transaction prepared for the failed checkpoint: the final checkpoint refuses (the state is lost, not committed without it)", async () => {
    const t = setup({ during: () => small.fill(0), prepare: () => [TXN] });
    await t.cp.checkpoint();
    small.unfill();
    await expect(t.cp.final({})).rejects.toThrow(/^refused: a checkpoint failed during the stop \(.*ENOSPC.*prepared/);
    expect(t.reopen().checkpoint).toBe(0);
  });

  it("a Kafka prepare failing during the stop: the final checkpoint refuses rather than commit advanced offsets without the state", async () => {
    const t = setup({
      prepare: (call) => {
        if (call === 0) throw new Error("Kafka sink kafka-0: the transaction could not be flushed (broker gone)");
        return [];
      },
    });
    await t.cp.checkpoint();
    await expect(t.cp.final({ p: { topic: "t", offsets: { "0": "12" } } })).rejects.toThrow(
      /^refused: a checkpoint failed during the stop \(.*broker gone\).*could not be prepared/,
    );
    expect(t.reopen().checkpoint).toBe(0);
  });

  it("EndTxn failing after the store commit during the stop: no final checkpoint, the MANIFEST still names the transaction for the restart", async () => {
    const t = setup({
      prepare: (call) => (call === 0 ? [TXN] : []),
      commit: (call) => {
        if (call === 0) throw new Error("Kafka sink kafka-0: committing the transaction failed (timeout)");
      },
    });
    await t.cp.checkpoint();
    await expect(t.cp.final({ p: { topic: "t", offsets: { "0": "12" } } })).rejects.toThrow(
      /^refused: the Kafka transactions of checkpoint 1, written during the stop, could not be committed/,
    );
    const again = t.reopen();
    expect(again.checkpoint).toBe(1);
    expect(again.transactions).toEqual([TXN]);
    again.store.close();
  });
});
