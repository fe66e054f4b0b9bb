/**
 * File sink, run in its own I/O thread: appends the encoder's bytes, gathered by the
 * workers into runs of whole outputs, to PATH; with `maxBytes`, once the next run
 * would take PATH past it, PATH is renamed PATH.<n+1> (n: rotations so far, so the
 * oldest output is in PATH.1) and a new PATH is started. A run is never split, so a
 * file is larger than maxBytes only when one run is.
 *
 * With --resilience-dir the sink takes part in checkpoints as the Kafka sink does
 * (ToIo "prepare"/"commit", SinkConnector.transactional): at each checkpoint's cut
 * everything before it is written and fsynced, and its end (rotations, bytes of PATH)
 * is recorded in the checkpoint as the sink's PendingTransaction (see
 * recovery/store.ts). A restart from that checkpoint truncates the output back to
 * that end (and drops rotations made after it): the outputs after the cut are written
 * again by the replay, so each output is in the files once.
 */
import {
  closeSync,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname } from "node:path";
import type { MessagePort } from "node:worker_threads";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { ChannelReader, copyBytes } from "../../transport/channel.js";
import { RingReader } from "../../transport/ring.js";
import { Doorbell } from "../../transport/doorbell.js";
import { StatusWord } from "../../transport/wiring.js";
import { createLogger } from "../../core/log.js";
import type { FromIo, ToIo } from "../../control/protocol.js";
import type { PendingTransaction } from "../../recovery/store.js";

export interface FileSinkInit {
  kind: "file-sink";
  sinkId: number;
  label: string;
  /** absolute */
  path: string;
  maxBytes: number;
  rings: SharedArrayBuffer[];
  bell: SharedArrayBuffer;
  status: SharedArrayBuffer;
  statusSlot: number;
  resilience: boolean;
  /** resilience: the end of the output the restored checkpoint recorded, or null (none) */
  restore: FileSinkEnd | null;
}

/** Where the output ended at a checkpoint: `rotations` files PATH.1.., then `bytes` of PATH. */
export interface FileSinkEnd {
  rotations: number;
  bytes: number;
}

/**
 * A file sink's end as the checkpoint store records it: in a PendingTransaction, the one
 * record of a sink the store keeps per checkpoint, with `transactionalId` naming the file
 * ("file PATH"; index.ts reads it back), `producerId` the bytes of PATH (decimal digits),
 * `producerEpoch` the rotations and `records` the bytes written since the previous checkpoint
 * (0: nothing new, so the checkpointer need not write a checkpoint for this sink alone).
 */
function endToRecord(sink: number, path: string, end: FileSinkEnd, written: number): PendingTransaction {
  return {
    sink,
    transactionalId: `file ${path}`,
    producerId: String(end.bytes),
    producerEpoch: end.rotations,
    records: written,
  };
}

/** size of the buffer outputs are gathered into before a write */
const GATHER = 1024 * 1024;
const BATCH = 4096;

const rotated = (path: string, n: number) => `${path}.${n}`;

/** The n of every PATH.<n> in PATH's directory. */
function rotationsOnDisk(path: string): number[] {
  const base = basename(path);
  const out: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dirname(path));
  } catch {
    return out;
  }
  for (const name of names) {
    if (!name.startsWith(`${base}.`)) continue;
    const rest = name.slice(base.length + 1);
    if (/^[1-9][0-9]*$/.test(rest)) out.push(Number(rest));
  }
  return out.sort((a, b) => a - b);
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function runFileSink(init: FileSinkInit, control: MessagePort): void {
  const log = createLogger("wallaroo.sink.file", { sink: init.label });
  const status = new StatusWord(init.status, init.statusSlot);
  const bell = new Doorbell(init.bell);
  const path = init.path;
  const fatal = (err: unknown) => {
    failed = true;
    control.postMessage({
      type: "fatal",
      where: `file sink ${init.label}`,
      message: `cannot write ${path}: ${(err as Error).message}`,
    } satisfies FromIo);
  };
  let failed = false;

  let rotations = 0;
  let fd = -1;
  /** bytes in PATH (written or gathered) */
  let size = 0;
  let deliveredBytes = 0;
  /** deliveredBytes at the last prepare */
  let preparedBytes = 0;
  /** a rotation since the last prepare: the directory is fsynced with the file */
  let renamed = false;

  try {
    const onDisk = rotationsOnDisk(path);
    if (init.resilience && init.restore) {
      rotations = init.restore.rotations;
      // PATH.<r+1> exists only when PATH was rotated after the checkpoint: it is the PATH the checkpoint saw.
      const wasCurrent = rotated(path, rotations + 1);
      /** bytes of output past the checkpoint: whole files removed, then the tail truncated */
      let removed = 0;
      const remove = (p: string) => {
        removed += statSync(p).size;
        unlinkSync(p);
      };
      if (existsSync(wasCurrent)) {
        if (existsSync(path)) remove(path);
        renameSync(wasCurrent, path);
      }
      for (const n of onDisk) if (n > rotations + 1) remove(rotated(path, n));
      fd = openSync(path, "a");
      const had = fstatSync(fd).size;
      if (had < init.restore.bytes) {
        throw new Error(
          `it holds ${had} bytes, fewer than the ${init.restore.bytes} the checkpoint wrote: it was changed outside the engine; ` +
            `move it back, or start with an empty --resilience-dir`,
        );
      }
      ftruncateSync(fd, init.restore.bytes);
      fsyncSync(fd);
      fsyncDir(dirname(path));
      size = init.restore.bytes;
      removed += had - size;
      if (removed > 0) {
        log.info(
          { path, removedBytes: removed, rotations },
          `restored ${path} to the checkpoint's end (${size} bytes after ${rotations} rotation(s)): the outputs after it are written again`,
        );
      }
    } else {
      if (init.resilience) {
        // No checkpoint has recorded this sink: the application starts from nothing (its sources
        // from their beginning), so what PATH holds is not part of its output; kept aside, not appended to.
        const stamp = new Date().toISOString().replace(/[:.]/g, "-");
        const aside = [...onDisk.map((n) => rotated(path, n)), path].filter(
          (p) => existsSync(p) && statSync(p).size > 0,
        );
        for (const p of aside) renameSync(p, `${p}.before-${stamp}`);
        if (aside.length > 0)
          log.warn(
            { moved: aside, suffix: `.before-${stamp}` },
            `no checkpoint records ${path}: its existing output (${aside.length} file(s)) is moved aside with the suffix .before-${stamp}, and the output starts afresh`,
          );
      } else {
        rotations = onDisk.length > 0 ? onDisk[onDisk.length - 1] : 0;
      }
      fd = openSync(path, "a");
      size = fstatSync(fd).size;
    }
  } catch (err) {
    fatal(err);
  }

  const gather = Buffer.allocUnsafe(GATHER);
  let gathered = 0;

  const flush = () => {
    let off = 0;
    while (off < gathered) off += writeSync(fd, gather, off, gathered - off);
    deliveredBytes += gathered;
    gathered = 0;
  };

  const rotate = () => {
    flush();
    closeSync(fd);
    renameSync(path, rotated(path, rotations + 1));
    rotations++;
    renamed = true;
    fd = openSync(path, "a");
    size = 0;
    log.info({ path, rotations }, `rotated ${path} to ${rotated(path, rotations)}`);
  };

  const write = (bytes: Uint8Array, off: number, len: number) => {
    if (init.maxBytes > 0 && size > 0 && size + len > init.maxBytes) rotate();
    if (gathered + len > GATHER) flush();
    if (len > GATHER) {
      let o = 0;
      while (o < len) o += writeSync(fd, bytes, off + o, len - o);
      deliveredBytes += len;
    } else {
      copyBytes(bytes, off, off + len, gather, gathered);
      gathered += len;
    }
    size += len;
  };

  const onMessage = (_tag: number, bytes: Uint8Array, off: number, len: number) => {
    if (failed) return;
    try {
      write(bytes, off, len);
    } catch (err) {
      fatal(err);
    }
  };
  const readers = init.rings.map((sab) => new ChannelReader(new RingReader(sab), onMessage));
  const ringsEmpty = () => !readers.some((r) => r.hasData());

  /** Takes everything in the rings and writes it (not fsynced). */
  const drain = () => {
    while (readers.reduce((n, r) => n + r.read(BATCH), 0) > 0) {}
    if (!failed) {
      try {
        flush();
      } catch (err) {
        fatal(err);
      }
    }
  };

  let closing = false;
  const loop = async () => {
    for (;;) {
      if (closing) return;
      let n = 0;
      for (const r of readers) n += r.read(BATCH);
      if (!failed && gathered > 0) {
        try {
          flush();
        } catch (err) {
          fatal(err);
        }
      }
      if (n > 0) {
        await yieldToEventLoop();
        continue;
      }
      await status.sleepIdle(bell, ringsEmpty);
    }
  };
  void loop();

  control.on("message", (msg: ToIo) => {
    if (msg.type === "prepare") {
      // The checkpoint's cut: everything before it is in the rings (the engine is quiescent).
      drain();
      let error: string | undefined;
      try {
        if (failed) throw new Error("the sink failed to write earlier");
        fsyncSync(fd);
        if (renamed) fsyncDir(dirname(path));
        renamed = false;
      } catch (err) {
        error = `file sink ${init.label}: ${(err as Error).message}`;
      }
      const record = error
        ? null
        : endToRecord(init.sinkId, path, { rotations, bytes: size }, deliveredBytes - preparedBytes);
      preparedBytes = deliveredBytes;
      control.postMessage({
        type: "prepared",
        id: msg.id,
        // Every checkpoint records the end, changed or not: a checkpoint without it could not be restored to.
        pending: record,
        error,
      } satisfies FromIo);
      return;
    }
    if (msg.type === "commit") {
      // Nothing to make visible: the bytes are in the file already, and a restart truncates to the recorded end.
      control.postMessage({ type: "committed", id: msg.id } satisfies FromIo);
      return;
    }
    if (msg.type === "close" && !closing) {
      closing = true;
      drain();
      try {
        if (fd >= 0) {
          fsyncSync(fd);
          closeSync(fd);
        }
      } catch (err) {
        log.error({ err: (err as Error).message }, `closing ${path}: ${(err as Error).message}`);
      }
      control.postMessage({ type: "closed", deliveredBytes } satisfies FromIo);
    }
  });
}
