/**
 * The checkpoint store: one directory holding an append-only log of state
 * records and a MANIFEST that commits a prefix of it.
 *
 *   log-<n>    records [u32 LE payload length][u32 LE crc32 of payload][payload]
 *              payload = msgpack [state name, key tag, key, value bytes], or with
 *              nil for the value bytes: a tombstone (the instance was removed, by
 *              its computation's DELETE or its state's ttl)
 *   MANIFEST   one JSON line + one line with its crc32 (hex): the application
 *              identity, the current log file, how many of its bytes are
 *              committed, the checkpoint id and the source positions.
 *
 * A checkpoint appends its records, fsyncs the log, then writes MANIFEST.tmp,
 * fsyncs it, renames it over MANIFEST and fsyncs the directory: the rename is the
 * commit. Bytes past the committed length (a crash mid-checkpoint) are ignored and
 * truncated on open, so the previous checkpoint stays intact. When the log grows
 * past twice the size of its live records (the latest record of every key), the
 * live records are copied to a new log file, which the next manifest names.
 * Compaction runs after a checkpoint's commit and is never part of it: when it fails
 * (a full disk), the checkpoint stays committed (the caller is told, and may already
 * have committed the Kafka transactions it names), the old log stays the current one,
 * and the new file is removed unless a MANIFEST naming it was renamed into place.
 *
 * Every write either completes (a short write, as on a nearly full disk, is continued)
 * or throws a StoreError naming the file: no partial MANIFEST or record is ever committed.
 *
 * A directory with log files and no MANIFEST is refused, never started empty over:
 * without the MANIFEST there is no telling what the logs hold.
 *
 * A tombstone ends its key's life in the log: a key whose latest record is a
 * tombstone is not live (not restored, not counted in the live bytes), and a
 * compaction copies neither it nor the records before it. A tombstone is never live
 * itself, so its bytes count towards the next compaction like any overwritten record.
 *
 * DIR/LOCK.<n> (the owner's pid) keeps a second engine off the same store.
 *
 * Every file name the store opens, truncates or deletes is one it made: the
 * manifest's log name must be `log-<n>`, anything else is a corrupt manifest
 * (a manifest naming `../x` must never make the engine truncate a file elsewhere).
 *
 * A record that fails its checksum, or a log shorter than the manifest says, is a
 * startup error naming the file: never silently wrong state.
 */
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { randomBytes } from "node:crypto";
import { Packr } from "msgpackr";

/** key tags: how a partition key is written (JSON and msgpack alone cannot tell a bigint from a string) */
export type KeyTag = "s" | "n" | "b" | "-";

export interface StoredEntry {
  state: string;
  tag: KeyTag;
  /** the key: a string for "s" and "b" (a bigint's decimal digits), a number for "n", 0 for "-" (toStateful) */
  key: string | number;
  value: Uint8Array;
}

/** A record of the log: an entry, or a tombstone (value null) that removes its key. */
export interface StoredRecord extends Omit<StoredEntry, "value"> {
  value: Uint8Array | null;
}

export interface AppIdentity {
  app: string;
  /** every state: name, class name, partitioned or not */
  states: { name: string; class: string; partitioned: boolean }[];
}

/** Kafka positions per pipeline: the next offset to read of every partition */
export type Positions = Record<string, { topic: string; offsets: Record<string, string> }>;

/**
 * A Kafka sink's transaction that a checkpoint decided to commit (two-phase commit: every send of
 * it was acknowledged before the checkpoint was written; EndTxn comes after). A restart commits it
 * with this identity before anything else uses the transactional id, since the crash may have come
 * between the two.
 *
 * A file sink records its end in the same place (connectors/file/sink.ts): `transactionalId`
 * "file PATH", `producerId` the bytes of PATH, `producerEpoch` its rotations, `records` the
 * bytes written since the previous checkpoint; a restart truncates the output back to it.
 */
export interface PendingTransaction {
  sink: number;
  transactionalId: string;
  /** int64 as decimal digits */
  producerId: string;
  producerEpoch: number;
  /** how many records it holds (for the logs) */
  records: number;
}

interface Manifest extends AppIdentity {
  format: 1;
  checkpoint: number;
  log: string;
  committedBytes: number;
  positions: Positions;
  workers: number;
  at: string;
  /** absent in manifests written before two-phase commit: none */
  transactions?: PendingTransaction[];
  /**
   * This store's random id, made when it is created (or first opened by an engine that has them): the
   * Kafka sinks' transactional ids include it, so that engines of the same application on other stores
   * (another deployment, a test) do not fence each other's transactions.
   */
  instance?: string;
}

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StoreError";
  }
}

/** writeManifest failed; `renamed`: after the rename (the directory fsync failed), so MANIFEST is the new one */
class ManifestWriteError extends StoreError {
  constructor(
    message: string,
    readonly renamed: boolean,
  ) {
    super(message);
  }
}

const HEADER = 8;
const MANIFEST = "MANIFEST";
/** the only log file names the store makes, and so the only ones it follows from a manifest */
const LOG_RE = /^log-[1-9][0-9]{0,14}$/;
/** logs smaller than this are never compacted */
const MIN_COMPACT_BYTES = 64 * 1024;
const packr = new Packr({ useRecords: false, moreTypes: false });

export const crc32: (b: Uint8Array) => number =
  (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32 ?? tableCrc32;

export interface OpenedStore {
  store: CheckpointStore;
  /** the live entries of the last committed checkpoint (empty for a new store) */
  entries: StoredEntry[];
  positions: Positions;
  checkpoint: number;
  /** the Kafka transactions the last checkpoint committed to (a restart makes sure they are committed) */
  transactions: PendingTransaction[];
  /** the store's id (see Manifest.instance) */
  instance: string;
}

export class CheckpointStore {
  private fd: number;
  private size: number;
  /** live record of every key: where it is in the current log */
  private readonly live = new Map<string, { off: number; len: number }>();
  private liveBytes = 0;
  private manifest: Manifest;

  private constructor(
    readonly dir: string,
    manifest: Manifest,
    fd: number,
  ) {
    this.manifest = manifest;
    this.fd = fd;
    this.size = manifest.committedBytes;
  }

  get checkpoint(): number {
    return this.manifest.checkpoint;
  }
  get logFile(): string {
    return path.join(this.dir, this.manifest.log);
  }
  get bytes(): number {
    return this.size;
  }

  /**
   * Opens (or creates) the store in `dir` for this application. Refuses a store
   * written by another application or another set of states.
   */
  static open(dir: string, identity: AppIdentity, workers: number): OpenedStore {
    fs.mkdirSync(dir, { recursive: true });
    lock(dir);
    try {
      return CheckpointStore.openLocked(dir, identity, workers);
    } catch (err) {
      const notReleased = unlock(dir);
      if (notReleased && err instanceof Error) err.message += `; also: ${notReleased.message}`;
      throw err;
    }
  }

  private static openLocked(dir: string, identity: AppIdentity, workers: number): OpenedStore {
    const manifestPath = path.join(dir, MANIFEST);
    let manifest: Manifest;
    if (!fs.existsSync(manifestPath)) {
      refuseOrphanLogs(dir, manifestPath);
      manifest = {
        format: 1,
        ...identity,
        checkpoint: 0,
        log: "log-1",
        committedBytes: 0,
        positions: {},
        workers,
        at: new Date().toISOString(),
        instance: newInstance(),
      };
      fs.writeFileSync(path.join(dir, manifest.log), "");
      writeManifest(dir, manifest);
    } else {
      manifest = readManifest(manifestPath);
      checkIdentity(dir, manifest, identity);
      if (manifest.instance === undefined) {
        // Written before stores had an id: given one now, before any transaction uses it.
        manifest = { ...manifest, instance: newInstance() };
        writeManifest(dir, manifest);
      }
    }
    const logPath = path.join(dir, manifest.log);
    let fd: number;
    try {
      fd = fs.openSync(logPath, "r+");
    } catch (err) {
      throw new StoreError(
        `checkpoint store ${logPath} is missing (${(err as Error).message}), but ${manifestPath} names it; move ${dir} away to start empty`,
      );
    }
    const store = new CheckpointStore(dir, manifest, fd);
    const entries = store.load();
    // Anything past the committed prefix was written by a checkpoint that did not commit.
    fs.ftruncateSync(fd, manifest.committedBytes);
    removeStrays(dir, manifest.log);
    return {
      store,
      entries,
      positions: manifest.positions,
      checkpoint: manifest.checkpoint,
      transactions: manifest.transactions ?? [],
      instance: manifest.instance!,
    };
  }

  /** Reads and checks the committed prefix of the log; fills the live index. */
  private load(): StoredEntry[] {
    const file = this.logFile;
    const committed = this.manifest.committedBytes;
    const actual = fs.fstatSync(this.fd).size;
    if (actual < committed) {
      throw new StoreError(
        `checkpoint store ${file} is corrupt at offset ${actual}: truncated (MANIFEST commits ${committed} bytes, the file has ${actual}); move it away to start empty`,
      );
    }
    const buf = Buffer.allocUnsafe(committed);
    if (committed > 0) readFully(this.fd, buf, 0);
    const latest = new Map<string, StoredEntry>();
    let off = 0;
    while (off < committed) {
      if (committed - off < HEADER) throw corrupt(file, off, "truncated record header");
      const len = buf.readUInt32LE(off);
      const crc = buf.readUInt32LE(off + 4);
      if (len > committed - off - HEADER) throw corrupt(file, off, `record length ${len} runs past the committed end`);
      const payload = buf.subarray(off + HEADER, off + HEADER + len);
      if (crc32(payload) !== crc) throw corrupt(file, off, "checksum mismatch");
      let e: StoredRecord;
      try {
        e = decodeRecord(payload);
      } catch (err) {
        throw corrupt(file, off, `undecodable record (${(err as Error).message})`);
      }
      const id = entryId(e);
      const old = this.live.get(id);
      if (old) this.liveBytes -= old.len;
      if (e.value === null) {
        // A tombstone: the key is gone (its earlier records are garbage, and so is this one).
        this.live.delete(id);
        latest.delete(id);
      } else {
        this.live.set(id, { off, len: HEADER + len });
        this.liveBytes += HEADER + len;
        latest.set(id, e as StoredEntry);
      }
      off += HEADER + len;
    }
    return [...latest.values()];
  }

  /**
   * Commits one checkpoint: the changed entries, as the workers encoded them in
   * parallel (RecordWriter, one part per worker, appended as they are), and the
   * source positions. When this returns, the checkpoint survives a crash; if it
   * throws or the process dies first, the previous checkpoint is what a restart finds
   * (except after a failed fsync of the directory, when the MANIFEST was already renamed:
   * then either one, each whole). A compaction after the commit never makes it throw
   * (see compactionError).
   */
  commitEncoded(
    parts: EncodedRecords[],
    positions: Positions,
    workers: number,
    transactions: PendingTransaction[] = [],
  ): {
    checkpoint: number;
    bytes: number;
    compacted: boolean;
    /** the log needed compacting and that failed (the checkpoint is committed all the same) */
    compactionError: string | null;
  } {
    if (this.fd < 0) throw new StoreError(`checkpoint store ${this.dir} is closed`);
    let appended = 0;
    const nonEmpty = parts.filter((p) => p.ids.length > 0);
    if (nonEmpty.length > 0) {
      const block = Buffer.concat(nonEmpty.map((p) => p.bytes));
      writeFully(this.fd, block, this.size, this.logFile);
      fsyncFile(this.fd, this.logFile);
      let off = this.size;
      for (const p of nonEmpty) {
        p.ids.forEach((id, i) => {
          const len = p.lens[i];
          const old = this.live.get(id);
          if (old) this.liveBytes -= old.len;
          if (p.tombstones[i]) this.live.delete(id);
          else {
            this.live.set(id, { off, len });
            this.liveBytes += len;
          }
          off += len;
        });
      }
      this.size += block.length;
      appended = block.length;
    }
    const next: Manifest = {
      ...this.manifest,
      checkpoint: this.manifest.checkpoint + 1,
      committedBytes: this.size,
      positions,
      workers,
      at: new Date().toISOString(),
      transactions,
    };
    try {
      writeManifest(this.dir, next);
    } catch (err) {
      // Renamed, but the directory fsync failed: MANIFEST names this checkpoint (durably or not); number
      // the next one after it. The caller treats the checkpoint as failed all the same.
      if (err instanceof ManifestWriteError && err.renamed) this.manifest = next;
      throw err;
    }
    this.manifest = next;
    // The checkpoint is committed: from here on nothing may throw. A failed compaction is reported,
    // not thrown: the caller goes on to commit the Kafka transactions this checkpoint names.
    let compacted = false;
    let compactionError: string | null = null;
    if (this.size > MIN_COMPACT_BYTES && this.size > 2 * this.liveBytes) {
      try {
        this.compact();
        compacted = true;
      } catch (err) {
        compactionError = (err as Error).message;
      }
    }
    return { checkpoint: next.checkpoint, bytes: appended, compacted, compactionError };
  }

  /**
   * Copies the live records into a new log file and commits a manifest naming it. On a failure
   * before that manifest's rename, the new file is removed and the current log stays as it was
   * (this object too: nothing is changed before the rename); after it, the new log is used.
   */
  private compact(): void {
    const n = Number(this.manifest.log.slice(4)) + 1;
    const name = `log-${n}`;
    const target = path.join(this.dir, name);
    let fd: number;
    try {
      fd = fs.openSync(target, "w+");
    } catch (err) {
      throw fileError("create", target, err);
    }
    let failure: unknown = null;
    let copy: { moved: Map<string, { off: number; len: number }>; off: number } | null = null;
    try {
      copy = this.copyLive(fd, target);
      writeManifest(this.dir, { ...this.manifest, log: name, committedBytes: copy.off });
    } catch (err) {
      if (!(err instanceof ManifestWriteError && err.renamed)) {
        fs.closeSync(fd);
        fs.rmSync(target, { force: true });
        throw err;
      }
      // MANIFEST names the new log, though perhaps not durably: use the new log, keep the old one
      // (the previous MANIFEST names it; the next open removes whichever the MANIFEST does not name).
      failure = err;
    }
    const { moved, off } = copy!;
    const old = this.manifest.log;
    fs.closeSync(this.fd);
    this.fd = fd;
    this.manifest = { ...this.manifest, log: name, committedBytes: off };
    this.size = off;
    this.live.clear();
    for (const [id, loc] of moved) this.live.set(id, loc);
    if (failure !== null) throw failure;
    fs.rmSync(path.join(this.dir, old), { force: true });
  }

  /** Writes the live records, in log order, into `fd` (a new log) and fsyncs it; where each one went. */
  private copyLive(fd: number, target: string): { moved: Map<string, { off: number; len: number }>; off: number } {
    const index = [...this.live.entries()].sort((a, b) => a[1].off - b[1].off);
    let off = 0;
    const moved = new Map<string, { off: number; len: number }>();
    const chunk: Buffer[] = [];
    let chunkBytes = 0;
    const flush = () => {
      if (chunkBytes === 0) return;
      const b = Buffer.concat(chunk, chunkBytes);
      writeFully(fd, b, off - chunkBytes, target);
      chunk.length = 0;
      chunkBytes = 0;
    };
    for (const [id, loc] of index) {
      const rec = Buffer.allocUnsafe(loc.len);
      readFully(this.fd, rec, loc.off);
      chunk.push(rec);
      chunkBytes += loc.len;
      moved.set(id, { off, len: loc.len });
      off += loc.len;
      if (chunkBytes > 1 << 20) flush();
    }
    flush();
    fsyncFile(fd, target);
    return { moved, off };
  }

  /**
   * Closes the log and releases the lock. Throws (after closing) when the lock could not be marked
   * released (a full disk): harmless for the data, and the next engine takes the lock over once this
   * process is gone, but said rather than swallowed.
   */
  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
    const notReleased = unlock(this.dir);
    if (notReleased) throw notReleased;
  }
}

/** Records encoded for the log, with the identity (state, key) and length of each, and which are tombstones. */
export interface EncodedRecords {
  bytes: Uint8Array;
  ids: string[];
  lens: number[];
  tombstones: boolean[];
}

/** Encodes log records; used by the workers, so a checkpoint's records are built in parallel. */
export class RecordWriter {
  private readonly chunks: Buffer[] = [];
  private readonly ids: string[] = [];
  private readonly lens: number[] = [];
  private readonly tombstones: boolean[] = [];
  private bytes = 0;

  /** the instance's latest value; null: a tombstone (the instance was removed) */
  add(state: string, tag: KeyTag, key: string | number, value: Uint8Array | null): void {
    const rec = encodeRecord({ state, tag, key, value });
    this.chunks.push(rec);
    this.ids.push(entryId({ state, tag, key }));
    this.lens.push(rec.length);
    this.tombstones.push(value === null);
    this.bytes += rec.length;
  }

  finish(): EncodedRecords {
    // An ArrayBuffer of its own, never a slice of Buffer's shared pool (where Buffer.concat puts
    // under 4 KiB): the worker transfers it to the main thread, and the pool is untransferable
    // (Node 24 throws DataCloneError; a transfer of it would detach every Buffer in it).
    const bytes = Buffer.allocUnsafeSlow(this.bytes);
    let at = 0;
    for (const c of this.chunks) at += c.copy(bytes, at);
    return { bytes, ids: this.ids, lens: this.lens, tombstones: this.tombstones };
  }
}

/** How a partition key is written: its tag and its value as a string or a number. */
export function keyTagged(partitioned: boolean, key: string | number | bigint): { tag: KeyTag; key: string | number } {
  if (!partitioned) return { tag: "-", key: 0 };
  if (typeof key === "string") return { tag: "s", key };
  if (typeof key === "number") return { tag: "n", key };
  return { tag: "b", key: key.toString() };
}

export function encodeRecord(e: StoredRecord): Buffer {
  const payload = packr.pack([e.state, e.tag, e.key, e.value]);
  const rec = Buffer.allocUnsafe(HEADER + payload.length);
  rec.writeUInt32LE(payload.length, 0);
  rec.writeUInt32LE(crc32(payload), 4);
  rec.set(payload, HEADER);
  return rec;
}

/** The record in a payload (the bytes after its length and checksum; checked by the caller). */
export function decodeRecord(payload: Uint8Array): StoredRecord {
  const [state, tag, key, value] = packr.unpack(payload) as [string, KeyTag, string | number, Uint8Array | null];
  if (value !== null && !(value instanceof Uint8Array)) throw new Error("the value is neither bytes nor a tombstone");
  return { state, tag, key, value };
}

/** Every record of a block of whole records (as RecordWriter writes them), checked; `what` names the block in errors. */
export function decodeRecords(bytes: Uint8Array, what: string): StoredRecord[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: StoredRecord[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < HEADER) throw new StoreError(`${what} is corrupt at offset ${off}: truncated record header`);
    const len = buf.readUInt32LE(off);
    if (len > buf.length - off - HEADER)
      throw new StoreError(`${what} is corrupt at offset ${off}: record length ${len} runs past the end`);
    const payload = buf.subarray(off + HEADER, off + HEADER + len);
    if (crc32(payload) !== buf.readUInt32LE(off + 4))
      throw new StoreError(`${what} is corrupt at offset ${off}: checksum mismatch`);
    out.push(decodeRecord(payload));
    off += HEADER + len;
  }
  return out;
}

export const entryId = (e: { state: string; tag: KeyTag; key: string | number }) => `${e.state}\u0000${e.tag}${e.key}`;

/**
 * One engine per store. The lock is the highest-numbered file `DIR/LOCK.<n>`; it
 * holds its owner's pid, or "released" after a clean close. Taking the lock is
 * one exclusive create (O_EXCL, through link() so that the file never exists
 * without its content) of `LOCK.<n+1>` after finding `LOCK.<n>` free (released, or
 * its owner gone, as after kill -9). No step deletes or replaces a lock another
 * process might be judging, so there is no check-then-act race: two engines that
 * find the same stale `LOCK.<n>` both try to create `LOCK.<n+1>`, exactly one
 * succeeds, and the other looks again and finds a live owner. The winner then
 * checks that no higher number exists (a contender that judged an old number long
 * ago may re-create a name the previous winner deleted: it then withdraws), and
 * deletes the lower numbers (never the highest, so the numbers only grow). A
 * release rewrites the content (rename over it) instead of deleting the file:
 * deleting the highest would let a later engine start over at `LOCK.1` while an
 * earlier one, which judged the old holder gone, creates the next number.
 */
/** stores this process holds (a lock with our own pid and not in here is stale: a container restarted with the same pid) */
const held = new Map<string, string>();
const LOCK_RE = /^LOCK\.([1-9][0-9]{0,14})$/;
const RELEASED = "released";

function lock(dir: string): void {
  const abs = path.resolve(dir);
  const tmp = path.join(dir, `LOCK.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    fs.writeFileSync(tmp, String(process.pid));
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw new StoreError(
      `cannot lock checkpoint store ${dir}: writing ${tmp} failed (${(err as Error).message}); free space on the filesystem of ${dir}`,
    );
  }
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      refuseLegacyLock(dir);
      const top = highestLock(dir);
      if (top > 0) {
        let text: string;
        try {
          text = fs.readFileSync(path.join(dir, `LOCK.${top}`), "utf8").trim();
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // a newer lock replaced it: look again
          throw err;
        }
        if (text !== RELEASED) {
          const pid = Number(text);
          const ours = pid === process.pid;
          if (Number.isInteger(pid) && pid > 0 && (ours ? held.has(abs) : alive(pid))) {
            throw new StoreError(
              `checkpoint store ${dir} is in use by process ${pid} (${path.join(dir, `LOCK.${top}`)}); one engine per --resilience-dir`,
            );
          }
        }
      }
      const name = `LOCK.${top + 1}`;
      try {
        fs.linkSync(tmp, path.join(dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "EEXIST") continue; // another engine took it first: look again
        throw fileError("create", path.join(dir, name), err);
      }
      // Created, but not necessarily the highest: the winner of an earlier round deletes the
      // numbers below its own, so a contender that judged an old `LOCK.<top>` stale long ago
      // can still create `LOCK.<top+1>` after that name was deleted, while a higher lock is
      // held. The highest lock is never deleted, so a look after our create sees any
      // lock taken before it: if one is higher, ours never counted; withdraw it and look again.
      if (highestLock(dir) > top + 1) {
        fs.rmSync(path.join(dir, name), { force: true });
        continue;
      }
      held.set(abs, name);
      for (const f of fs.readdirSync(dir)) {
        const m = LOCK_RE.exec(f);
        if (m && Number(m[1]) < top + 1) fs.rmSync(path.join(dir, f), { force: true });
      }
      return;
    }
    throw new StoreError(`cannot lock checkpoint store ${dir}: other processes keep taking and releasing it`);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

function highestLock(dir: string): number {
  let top = 0;
  for (const f of fs.readdirSync(dir)) {
    const m = LOCK_RE.exec(f);
    if (m) top = Math.max(top, Number(m[1]));
  }
  return top;
}

/** `DIR/LOCK` of engines before numbered locks: refused while its owner lives, else removed. */
function refuseLegacyLock(dir: string): void {
  const file = path.join(dir, "LOCK");
  let pid: number;
  try {
    pid = Number(fs.readFileSync(file, "utf8").trim());
  } catch {
    return;
  }
  if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
    throw new StoreError(
      `checkpoint store ${dir} is in use by process ${pid} (${file}); one engine per --resilience-dir`,
    );
  }
  fs.rmSync(file, { force: true });
}

/** Marks our lock released; the error when that failed (the directory gone is no error: nothing to release). */
function unlock(dir: string): StoreError | null {
  const abs = path.resolve(dir);
  const name = held.get(abs);
  held.delete(abs);
  if (name === undefined) return null;
  // Rewritten, not deleted: see lock(). The rename is atomic, so a reader sees our pid or "released".
  const tmp = path.join(dir, `LOCK.tmp-${process.pid}-release`);
  const file = path.join(dir, name);
  try {
    fs.writeFileSync(tmp, RELEASED);
    fs.renameSync(tmp, file);
    return null;
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && !fs.existsSync(dir)) return null;
    return new StoreError(
      `checkpoint store ${dir}: could not mark ${file} released (writing ${tmp}: ${(err as Error).message}); ` +
        `it still holds the id of process ${process.pid}, and the next engine takes it over once this process is gone`,
    );
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function corrupt(file: string, off: number, why: string): StoreError {
  return new StoreError(`checkpoint store ${file} is corrupt at offset ${off}: ${why}; move it away to start empty`);
}

function checkIdentity(dir: string, m: Manifest, id: AppIdentity): void {
  const describe = (x: AppIdentity) =>
    `application ${JSON.stringify(x.app)} with states [${x.states.map((s) => `${JSON.stringify(s.name)} (${s.class}${s.partitioned ? ", partitioned" : ""})`).join(", ")}]`;
  const same =
    m.app === id.app &&
    m.states.length === id.states.length &&
    m.states.every(
      (s, i) =>
        s.name === id.states[i].name && s.class === id.states[i].class && s.partitioned === id.states[i].partitioned,
    );
  if (!same) {
    throw new StoreError(
      `checkpoint store ${dir} belongs to ${describe(m)}, not to ${describe(id)}; ` +
        "refusing to mix them up: use another --resilience-dir, or move this one away to start empty",
    );
  }
}

function readManifest(file: string): Manifest {
  const text = fs.readFileSync(file, "utf8");
  const nl = text.indexOf("\n");
  const body = nl < 0 ? text : text.slice(0, nl);
  const sum = nl < 0 ? "" : text.slice(nl + 1).trim();
  if (sum !== crc32(Buffer.from(body, "utf8")).toString(16).padStart(8, "0")) {
    throw new StoreError(
      `checkpoint store ${file} is corrupt at offset 0: checksum mismatch; move it away to start empty`,
    );
  }
  let m: Manifest;
  try {
    m = JSON.parse(body) as Manifest;
  } catch (err) {
    throw new StoreError(
      `checkpoint store ${file} is corrupt: not JSON (${(err as Error).message}); move it away to start empty`,
    );
  }
  if (m === null || typeof m !== "object")
    throw new StoreError(`checkpoint store ${file} is corrupt: not a manifest object; move it away to start empty`);
  if (m.format !== 1)
    throw new StoreError(`checkpoint store ${file} has format ${m.format}, this engine reads format 1`);
  const bad = (field: string, why: string) =>
    new StoreError(
      `checkpoint store ${file} is corrupt: ${field} ${JSON.stringify((m as unknown as Record<string, unknown>)[field])} ${why}; move it away to start empty`,
    );
  // The log is opened read-write and truncated: only a name this store makes, inside its directory.
  if (typeof m.log !== "string" || !LOG_RE.test(m.log))
    throw bad("log", "is not a log file name this store writes (log-<n>)");
  if (!Number.isSafeInteger(m.committedBytes) || m.committedBytes < 0)
    throw bad("committedBytes", "is not a byte count");
  if (!Number.isSafeInteger(m.checkpoint) || m.checkpoint < 0) throw bad("checkpoint", "is not a checkpoint number");
  if (typeof m.app !== "string" || !Array.isArray(m.states)) throw bad("app", "or its states are missing");
  if (m.positions === null || typeof m.positions !== "object" || Array.isArray(m.positions))
    throw bad("positions", "is not an object");
  const okTxn = (t: PendingTransaction) =>
    t !== null &&
    typeof t === "object" &&
    Number.isSafeInteger(t.sink) &&
    typeof t.transactionalId === "string" &&
    typeof t.producerId === "string" &&
    /^-?[0-9]{1,19}$/.test(t.producerId) &&
    Number.isSafeInteger(t.producerEpoch) &&
    Number.isSafeInteger(t.records);
  if (m.transactions !== undefined && (!Array.isArray(m.transactions) || !m.transactions.every(okTxn)))
    throw bad("transactions", "is not a list of Kafka transactions");
  if (m.instance !== undefined && (typeof m.instance !== "string" || !/^[0-9a-f]{1,32}$/.test(m.instance)))
    throw bad("instance", "is not a store id");
  return m;
}

const newInstance = () => randomBytes(4).toString("hex");

/**
 * Writes MANIFEST.tmp in full, fsyncs it, renames it over MANIFEST (the commit) and fsyncs the
 * directory. Throws a ManifestWriteError naming the file; before the rename, MANIFEST.tmp is
 * removed (its space freed) and MANIFEST is untouched.
 */
function writeManifest(dir: string, m: Manifest): void {
  const body = JSON.stringify(m);
  const text = Buffer.from(`${body}\n${crc32(Buffer.from(body, "utf8")).toString(16).padStart(8, "0")}\n`, "utf8");
  const tmp = path.join(dir, `${MANIFEST}.tmp`);
  const target = path.join(dir, MANIFEST);
  let renamed = false;
  try {
    let fd: number;
    try {
      fd = fs.openSync(tmp, "w");
    } catch (err) {
      throw fileError("create", tmp, err);
    }
    try {
      writeFully(fd, text, 0, tmp);
      fsyncFile(fd, tmp);
    } finally {
      fs.closeSync(fd);
    }
    try {
      fs.renameSync(tmp, target);
    } catch (err) {
      throw fileError(`rename to ${target}`, tmp, err);
    }
    renamed = true;
    const dfd = fs.openSync(dir, "r");
    try {
      fsyncFile(dfd, dir);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (err) {
    if (!renamed) fs.rmSync(tmp, { force: true });
    throw new ManifestWriteError((err as Error).message, renamed);
  }
}

/**
 * A log-N that is not empty in a directory without a MANIFEST: refused. The MANIFEST is what says
 * which of its bytes are committed and to which application they belong; starting empty would
 * truncate or delete them. (An empty log-1 and no MANIFEST is a first open that died before its
 * MANIFEST was written: nothing to lose.)
 */
function refuseOrphanLogs(dir: string, manifestPath: string): void {
  const logs: string[] = [];
  for (const f of fs.readdirSync(dir).sort()) {
    if (!LOG_RE.test(f)) continue;
    const st = fs.statSync(path.join(dir, f));
    if (st.isFile() && st.size > 0) logs.push(`${path.join(dir, f)} (${st.size} bytes)`);
  }
  if (logs.length === 0) return;
  throw new StoreError(
    `checkpoint store ${dir} has no ${manifestPath}, but holds ${logs.join(", ")}: without the MANIFEST there is no ` +
      "telling which checkpoint they hold, and starting empty would destroy them; restore the MANIFEST " +
      `(from a backup of ${dir}), or move ${dir} away to start from empty state`,
  );
}

/** Log files the manifest does not name: left by a compaction that crashed before or after its commit. */
function removeStrays(dir: string, current: string): void {
  for (const f of fs.readdirSync(dir)) {
    if ((LOG_RE.test(f) && f !== current) || f === `${MANIFEST}.tmp`) fs.rmSync(path.join(dir, f), { force: true });
    // temporary files of lock attempts by processes that died in the middle
    const t = /^LOCK\.tmp-([0-9]+)-/.exec(f);
    if (t && Number(t[1]) !== process.pid && !alive(Number(t[1]))) fs.rmSync(path.join(dir, f), { force: true });
  }
}

function readFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new StoreError(`unexpected end of file reading the checkpoint log at ${position + done}`);
    done += n;
  }
}

/**
 * Writes all of `buf` at `position` in `file`: a short write (what a nearly full disk gives) is
 * continued; a write that fails (ENOSPC, EFBIG) or makes no progress throws, naming the file.
 */
function writeFully(fd: number, buf: Buffer, position: number, file: string): void {
  let done = 0;
  while (done < buf.length) {
    let n: number;
    try {
      n = fs.writeSync(fd, buf, done, buf.length - done, position + done);
    } catch (err) {
      throw fileError(`write (${done} of ${buf.length} bytes written)`, file, err);
    }
    if (n <= 0)
      throw new StoreError(`cannot write ${file}: a write made no progress (${done} of ${buf.length} bytes written)`);
    done += n;
  }
}

function fsyncFile(fd: number, file: string): void {
  try {
    fs.fsyncSync(fd);
  } catch (err) {
    throw fileError("fsync", file, err);
  }
}

/** A failed file operation as a StoreError naming the file (Node's own message names the call only) */
function fileError(what: string, file: string, err: unknown): StoreError {
  return new StoreError(`checkpoint store: cannot ${what} ${file}: ${(err as Error).message}`);
}

let table: Int32Array | null = null;
function tableCrc32(b: Uint8Array): number {
  if (!table) {
    table = new Int32Array(256);
    for (let i = 0; i < 256; i++) {
      let c = i;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[i] = c;
    }
  }
  let crc = -1;
  for (let i = 0; i < b.length; i++) crc = table[(crc ^ b[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
