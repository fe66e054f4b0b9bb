/**
 * The checkpoint store on real files: commit and reopen, the previous checkpoint
 * surviving a checkpoint that did not commit, corruption and truncation refused
 * with the file named, another application refused, compaction bounding the log.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  CheckpointStore,
  crc32,
  encodeRecord,
  RecordWriter,
  type AppIdentity,
  type Positions,
  type StoredEntry,
} from "../../dist/recovery/store.js";

const ID: AppIdentity = { app: "alphabet", states: [{ name: "letter state", class: "TotalVotes", partitioned: true }] };
const entry = (key: string, n: number): StoredEntry => ({
  state: "letter state",
  tag: "s",
  key,
  value: Buffer.from(`${key}=${n}`),
});
/**
 * Commits as the engine does: each worker encodes the entries it owns (here: dealt
 * round-robin to `workers`) with a RecordWriter, and the store appends the parts.
 */
function commit(store: CheckpointStore, entries: StoredEntry[], positions: Positions, workers: number) {
  const writers = Array.from({ length: workers }, () => new RecordWriter());
  entries.forEach((e, i) => writers[i % workers].add(e.state, e.tag, e.key, e.value));
  return store.commitEncoded(
    writers.map((w) => w.finish()),
    positions,
    workers,
  );
}
const text = (entries: StoredEntry[]) =>
  Object.fromEntries(entries.map((e) => [e.key, Buffer.from(e.value).toString()]));

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-store-"));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("checkpoint store", () => {
  it("crc32 is the standard one", () => {
    expect(crc32(Buffer.from("123456789"))).toBe(0xcbf43926);
  });

  it("commits and reopens: the latest value of every key, and the positions", () => {
    const { store, entries } = CheckpointStore.open(dir, ID, 2);
    expect(entries).toEqual([]);
    commit(store, [entry("a", 1), entry("b", 2)], {}, 2);
    commit(store, [entry("a", 5)], { p: { topic: "t", offsets: { 0: "17" } } }, 2);
    store.close();
    const again = CheckpointStore.open(dir, ID, 3);
    expect(text(again.entries)).toEqual({ a: "a=5", b: "b=2" });
    expect(again.positions).toEqual({ p: { topic: "t", offsets: { 0: "17" } } });
    expect(again.checkpoint).toBe(2);
    again.store.close();
  });

  it("keeps the Kafka transactions a checkpoint decided to commit until the next one; an old manifest has none", () => {
    const { store, transactions } = CheckpointStore.open(dir, ID, 2);
    expect(transactions).toEqual([]);
    const t = {
      sink: 0,
      transactionalId: "wallaroo.a.sink-0.1",
      producerId: "9007199254740993",
      producerEpoch: 3,
      records: 7,
    };
    store.commitEncoded([], {}, 2, [t]);
    store.close();
    const again = CheckpointStore.open(dir, ID, 2);
    expect(again.transactions).toEqual([t]);
    again.store.commitEncoded([], { p: { topic: "t", offsets: { 0: "1" } } }, 2);
    again.store.close();
    expect(CheckpointStore.open(dir, ID, 2).transactions).toEqual([]);
  });

  it("has an id of its own, kept across reopens; a store made before ids gets one when opened", () => {
    const first = CheckpointStore.open(dir, ID, 2);
    expect(first.instance).toMatch(/^[0-9a-f]{8}$/);
    first.store.close();
    const again = CheckpointStore.open(dir, ID, 2);
    expect(again.instance).toBe(first.instance);
    again.store.close();
    const other = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-store-"));
    try {
      expect(CheckpointStore.open(other, ID, 2).instance).not.toBe(first.instance);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
    const m = JSON.parse(fs.readFileSync(path.join(dir, "MANIFEST"), "utf8").split("\n")[0]);
    delete m.instance;
    const body = JSON.stringify(m);
    fs.writeFileSync(
      path.join(dir, "MANIFEST"),
      `${body}\n${crc32(Buffer.from(body)).toString(16).padStart(8, "0")}\n`,
    );
    const old = CheckpointStore.open(dir, ID, 2);
    expect(old.instance).toMatch(/^[0-9a-f]{8}$/);
    old.store.close();
    expect(CheckpointStore.open(dir, ID, 2).instance).toBe(old.instance);
  });

  it("refuses a manifest whose transactions are not Kafka transactions", () => {
    CheckpointStore.open(dir, ID, 2).store.close();
    for (const bad of [
      {},
      [{ sink: 0 }],
      [{ sink: 0, transactionalId: "x", producerId: "1e3", producerEpoch: 0, records: 1 }],
    ]) {
      const m = JSON.parse(fs.readFileSync(path.join(dir, "MANIFEST"), "utf8").split("\n")[0]);
      m.transactions = bad;
      const body = JSON.stringify(m);
      fs.writeFileSync(
        path.join(dir, "MANIFEST"),
        `${body}\n${crc32(Buffer.from(body)).toString(16).padStart(8, "0")}\n`,
      );
      expect(() => CheckpointStore.open(dir, ID, 2), JSON.stringify(bad)).toThrow(
        /MANIFEST is corrupt: transactions .* is not a list of Kafka transactions/,
      );
    }
  });

  it("a checkpoint that did not reach its commit leaves the previous one intact", () => {
    const { store } = CheckpointStore.open(dir, ID, 2);
    commit(store, [entry("a", 1)], {}, 2);
    store.close();
    // As if the process died after appending records but before renaming the manifest.
    fs.appendFileSync(path.join(dir, "log-1"), Buffer.concat([encodeRecord(entry("a", 99)), Buffer.from([1, 2, 3])]));
    fs.writeFileSync(path.join(dir, "MANIFEST.tmp"), "half a manifest");
    const again = CheckpointStore.open(dir, ID, 2);
    expect(text(again.entries)).toEqual({ a: "a=1" });
    expect(fs.existsSync(path.join(dir, "MANIFEST.tmp"))).toBe(false);
    commit(again.store, [entry("b", 2)], {}, 2);
    again.store.close();
    expect(text(CheckpointStore.open(dir, ID, 2).entries)).toEqual({ a: "a=1", b: "b=2" });
  });

  it("refuses a log with a corrupt byte, naming the file and the offset", () => {
    const { store } = CheckpointStore.open(dir, ID, 2);
    commit(store, [entry("a", 1), entry("b", 2)], {}, 2);
    store.close();
    const log = path.join(dir, "log-1");
    const bytes = fs.readFileSync(log);
    const second = encodeRecord(entry("a", 1)).length;
    bytes[second + 12] ^= 0x40;
    fs.writeFileSync(log, bytes);
    expect(() => CheckpointStore.open(dir, ID, 2)).toThrow(
      `checkpoint store ${log} is corrupt at offset ${second}: checksum mismatch; move it away to start empty`,
    );
  });

  it("refuses a truncated log, naming the file", () => {
    const { store } = CheckpointStore.open(dir, ID, 2);
    commit(store, [entry("a", 1), entry("b", 2)], {}, 2);
    store.close();
    const log = path.join(dir, "log-1");
    const size = fs.statSync(log).size;
    fs.truncateSync(log, size - 3);
    expect(() => CheckpointStore.open(dir, ID, 2)).toThrow(
      new RegExp(`checkpoint store ${log} is corrupt at offset ${size - 3}: truncated`),
    );
  });

  it("refuses a corrupt manifest", () => {
    CheckpointStore.open(dir, ID, 2).store.close();
    const m = path.join(dir, "MANIFEST");
    fs.writeFileSync(m, fs.readFileSync(m, "utf8").replace('"alphabet"', '"alphabEt"'));
    expect(() => CheckpointStore.open(dir, ID, 2)).toThrow(
      `checkpoint store ${m} is corrupt at offset 0: checksum mismatch`,
    );
  });

  it("refuses the store of another application or of other states", () => {
    CheckpointStore.open(dir, ID, 2).store.close();
    expect(() => CheckpointStore.open(dir, { ...ID, app: "word count" }, 2)).toThrow(
      /belongs to application "alphabet" .* not to application "word count"/,
    );
    expect(() =>
      CheckpointStore.open(
        dir,
        { app: "alphabet", states: [{ name: "letters", class: "TotalVotes", partitioned: true }] },
        2,
      ),
    ).toThrow(/refusing to mix them up/);
  });

  it("one engine per store: a live owner is refused, a dead one's lock is taken over", () => {
    const locks = () =>
      fs
        .readdirSync(dir)
        .filter((f) => f.startsWith("LOCK"))
        .sort();
    const { store } = CheckpointStore.open(dir, ID, 2);
    expect(() => CheckpointStore.open(dir, ID, 2)).toThrow(
      `checkpoint store ${dir} is in use by process ${process.pid}`,
    );
    expect(locks()).toEqual(["LOCK.1"]);
    store.close();
    expect(fs.readFileSync(path.join(dir, "LOCK.1"), "utf8")).toBe("released");
    CheckpointStore.open(dir, ID, 2).store.close();
    expect(locks()).toEqual(["LOCK.2"]);
    fs.writeFileSync(path.join(dir, "LOCK.2"), "999999999"); // no such process: as after kill -9
    const again = CheckpointStore.open(dir, ID, 2);
    expect(locks()).toEqual(["LOCK.3"]);
    expect(fs.readFileSync(path.join(dir, "LOCK.3"), "utf8")).toBe(String(process.pid));
    again.store.close();
    fs.writeFileSync(path.join(dir, "LOCK.3"), String(process.pid)); // our pid, but not held: a restarted container
    CheckpointStore.open(dir, ID, 2).store.close();
    fs.writeFileSync(path.join(dir, "LOCK"), "999999999"); // the lock file of an older engine, owner gone
    CheckpointStore.open(dir, ID, 2).store.close();
    expect(locks()).toEqual(["LOCK.5"]);
  });

  it("engines taking over stale locks at once: never two holders (three real processes, hundreds of takeovers)", async () => {
    const { spawn } = await import("node:child_process");
    const racer = fileURLToPath(new URL("../fixtures/lock-racer.mjs", import.meta.url));
    const storeModule = fileURLToPath(new URL("../../dist/recovery/store.js", import.meta.url));
    const dead = spawn(process.execPath, ["-e", ""]);
    const deadPid = dead.pid!;
    await new Promise((r) => dead.on("exit", r));
    // Each winner checks it is the only holder, then "crashes" holding the lock (kill -9
    // leaves its pid behind; here the pid of a process that is gone), so the others
    // take over stale locks again and again, at the same moments.
    const goAt = Date.now() + 2000;
    const outs = await Promise.all(
      Array.from(
        { length: 3 },
        () =>
          new Promise<string>((resolve, reject) => {
            const c = spawn(process.execPath, [racer, storeModule, dir, String(goAt), "150", String(deadPid)], {
              stdio: ["ignore", "pipe", "inherit"],
            });
            let out = "";
            c.stdout!.on("data", (d) => {
              out += d;
            });
            c.on("error", reject);
            c.on("exit", (code) => resolve(`${out.trim()} exit ${code}`));
          }),
      ),
    );
    let won = 0;
    for (const o of outs) {
      const m = /^won (\d+) lost (\d+) violations (\d+) errors (\d+).* exit (\d+)$/.exec(o);
      expect(m, outs.join("\n")).not.toBeNull();
      expect({ violations: m![3], errors: m![4], exit: m![5] }, outs.join("\n")).toEqual({
        violations: "0",
        errors: "0",
        exit: "0",
      });
      won += Number(m![1]);
    }
    expect(won, outs.join("\n")).toBeGreaterThan(3); // the lock did change hands
  }, 60_000);

  it("follows only log names it made: a manifest naming a file outside the directory is refused, the file untouched", () => {
    CheckpointStore.open(dir, ID, 2).store.close();
    const victim = path.join(path.dirname(dir), `victim-${path.basename(dir)}.txt`);
    fs.writeFileSync(victim, "precious");
    try {
      for (const log of [
        "../" + path.basename(victim),
        "/etc/passwd",
        "log-1/../../x",
        "MANIFEST",
        "log-0",
        "log-01",
        7,
      ]) {
        const m = JSON.parse(fs.readFileSync(path.join(dir, "MANIFEST"), "utf8").split("\n")[0]);
        m.log = log;
        m.committedBytes = 0;
        const body = JSON.stringify(m);
        fs.writeFileSync(
          path.join(dir, "MANIFEST"),
          `${body}\n${crc32(Buffer.from(body)).toString(16).padStart(8, "0")}\n`,
        );
        expect(() => CheckpointStore.open(dir, ID, 2), String(log)).toThrow(
          /MANIFEST is corrupt: log .* is not a log file name this store writes/,
        );
      }
      expect(fs.readFileSync(victim, "utf8")).toBe("precious");
    } finally {
      fs.rmSync(victim, { force: true });
    }
  });

  it("compacts: updating the same keys over and over keeps the log near twice its live size", () => {
    const { store } = CheckpointStore.open(dir, ID, 2);
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    let peak = 0;
    for (let round = 0; round < 100; round++) {
      commit(
        store,
        keys.map((k) => entry(k, round)),
        {},
        2,
      );
      peak = Math.max(peak, store.bytes);
    }
    store.close();
    const live = keys.reduce((n, k) => n + encodeRecord(entry(k, 99)).length, 0);
    expect(peak).toBeLessThanOrEqual(Math.max(2 * live + live, 64 * 1024 + live));
    const files = fs.readdirSync(dir).filter((f) => f.startsWith("log-"));
    expect(files.length).toBe(1);
    const again = CheckpointStore.open(dir, ID, 2);
    expect(text(again.entries)).toEqual(Object.fromEntries(keys.map((k) => [k, `${k}=99`])));
    again.store.close();
  });

  it("a tombstone removes its key: not restored, and gone from the log after a compaction (with its earlier records)", () => {
    const { store } = CheckpointStore.open(dir, ID, 2);
    commit(store, [entry("a", 1), entry("b", 2), entry("c", 3)], {}, 2);
    const removal = new RecordWriter();
    removal.add("letter state", "s", "a", null);
    removal.add("letter state", "s", "never-saved", null); // harmless: nothing to remove
    const r = store.commitEncoded([removal.finish()], {}, 2);
    expect(r.bytes).toBeGreaterThan(0);
    store.close();
    const again = CheckpointStore.open(dir, ID, 2);
    expect(text(again.entries)).toEqual({ b: "b=2", c: "c=3" });
    // Saved again after its removal: back, with the new value.
    commit(again.store, [entry("a", 7)], {}, 2);
    again.store.close();
    const third = CheckpointStore.open(dir, ID, 2);
    expect(text(third.entries)).toEqual({ a: "a=7", b: "b=2", c: "c=3" });

    // Many keys saved, then all but one removed: the log compacts down to the one live record.
    const keys = Array.from({ length: 2000 }, (_, i) => `k${i}`);
    commit(
      third.store,
      keys.map((k) => entry(k, 1)),
      {},
      2,
    );
    const gone = new RecordWriter();
    for (const k of [...keys.slice(1), "a", "b", "c"]) gone.add("letter state", "s", k, null);
    expect(third.store.commitEncoded([gone.finish()], {}, 2).compacted).toBe(true);
    expect(third.store.bytes).toBe(encodeRecord(entry("k0", 1)).length);
    third.store.close();
    const last = CheckpointStore.open(dir, ID, 2);
    expect(text(last.entries)).toEqual({ k0: "k0=1" });
    last.store.close();
  });
});
