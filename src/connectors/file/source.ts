/**
 * File source, run in its own I/O thread: reads a file, or the files of a directory
 * in name order, cuts it into messages ("lines": core/framing.ts LineFramer;
 * "length": the decoder's length header, checked by scanFrames) and hands them, as
 * runs of length-header frames, to one worker (a file is one ordered stream, like
 * one TCP connection). At the end it finishes (logged), or with `follow` waits for
 * the file to grow or the directory to get new files.
 *
 * Position: the bytes of each file consumed up to the last message boundary (a
 * partial line or frame is not consumed). A checkpoint's pause answers it, so after a
 * restart with --resilience-dir reading resumes at the first message the restored
 * checkpoint had not read: every message is read once into the state the checkpoint
 * holds.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { MessagePort } from "node:worker_threads";
import { setImmediate as yieldToEventLoop } from "node:timers/promises";
import { parseLengthFormat } from "../../core/struct.js";
import { FrameScan, LineFramer, frameEnd, scanFrames } from "../../core/framing.js";
import { ChannelWriter } from "../../transport/channel.js";
import { RingWriter } from "../../transport/ring.js";
import { Doorbell } from "../../transport/doorbell.js";
import { SOURCE_FRAMED, tag } from "../../transport/tags.js";
import { createLogger } from "../../core/log.js";
import { LineLimiter } from "../log-limit.js";
import type { FromIo, ToIo } from "../../control/protocol.js";
import type { StreamFraming } from "../../topology/spec.js";

export interface FileSourceInit {
  kind: "file-source";
  sourceId: number;
  pipeline: string;
  /** absolute: a file or a directory */
  path: string;
  framing: StreamFraming;
  follow: boolean;
  lengthFmt: string;
  maxFrameBytes: number;
  rings: SharedArrayBuffer[];
  workerBells: SharedArrayBuffer[];
  /** resilience: bytes of each file (by name) already consumed at the restored checkpoint; null: off */
  start: Record<string, string> | null;
  /** metrics on: ms the source waited for room in each worker's ring */
  blockedMs?: SharedArrayBuffer;
}

/** The position "topic" of a file source (as index.ts gives it): offsets saved for another path do not apply. */
const positionTopic = (path: string) => `file ${path}`;

/** bytes read at a time */
const READ_BYTES = 1024 * 1024;
/** how often a followed file or directory is looked at again once its end is reached */
const POLL_MS = Number(process.env.WALLAROO_FILE_POLL_MS ?? 200);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function runFileSource(init: FileSourceInit, control: MessagePort): void {
  const log = createLogger("wallaroo.source.file", { pipeline: init.pipeline, path: init.path });
  const lines = new LineLimiter(log);
  const fmt = parseLengthFormat(init.lengthFmt);
  const maxFrame = init.maxFrameBytes;
  const t = tag(SOURCE_FRAMED, init.sourceId);
  const worker = init.sourceId % init.rings.length;
  const ch = new ChannelWriter(new RingWriter(init.rings[worker], new Doorbell(init.workerBells[worker])));
  const blockedMs = init.blockedMs ? new Float64Array(init.blockedMs) : null;
  const scan = new FrameScan();
  let isDir = false;
  try {
    isDir = statSync(init.path).isDirectory();
  } catch {
    // A missing path is a file that does not exist yet (follow waits for it).
  }
  const dir = isDir ? init.path : dirname(init.path);
  /** bytes consumed up to a message boundary, per file name (the position) */
  const consumed: Record<string, number> = {};
  for (const [name, n] of Object.entries(init.start ?? {})) consumed[name] = Number(n);
  let messages = 0;
  let stopping = false;
  let paused = false;
  let pauseId: number | null = null;
  /** runs are queued in the channel (its ring is full): a pause or stop is answered once they are in */
  let flushing = false;
  let tooLong = 0;
  let unframeable = 0;
  let waitingLogged = false;

  const positions = () => ({
    topic: positionTopic(init.path),
    offsets: Object.fromEntries(Object.entries(consumed).map(([k, v]) => [k, String(v)])),
  });

  const fileNames = (): string[] => {
    if (!isDir) return [basename(init.path)];
    try {
      return readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isFile())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      lines.line(
        "list failed",
        "error",
        { err: (err as Error).message },
        `cannot list ${dir}: ${(err as Error).message}`,
      );
      return [];
    }
  };

  /** A run longer than a ring frame may be is split at message boundaries. */
  const sendRun = (buf: Buffer, start: number, end: number) => {
    while (end - start > ch.frameLimit) {
      let cut = start;
      while (cut < end) {
        const next = frameEnd(fmt, buf, cut);
        if (next - start > ch.frameLimit && cut > start) break;
        cut = next;
      }
      ch.send(t, buf, start, cut);
      start = cut;
    }
    if (end > start) ch.send(t, buf, start, end);
  };

  /** Waits until everything queued is in the ring; then answers a pending pause. */
  const publish = async () => {
    ch.commit();
    if (!ch.blocked) return answerPause();
    flushing = true;
    let mark = performance.now();
    while (!ch.flush()) {
      ch.commit();
      await ch.waitForSpace(50);
      if (blockedMs) {
        const now = performance.now();
        blockedMs[worker] += now - mark;
        mark = now;
      }
    }
    ch.commit();
    flushing = false;
    answerPause();
  };

  const answerPause = () => {
    if (pauseId === null || flushing) return;
    control.postMessage({ type: "paused", id: pauseId, positions: positions() } satisfies FromIo);
    pauseId = null;
  };

  /** Reads one file from its position to its end (or, following, for as long as it is the last). */
  const readFile = async (name: string, isLast: () => boolean): Promise<void> => {
    const file = join(dir, name);
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!isDir && init.follow && code === "ENOENT") {
        // Following a file that does not exist yet: said once, then looked for every POLL_MS.
        if (!waitingLogged) log.info(`waiting for ${file} to exist`);
        waitingLogged = true;
        return;
      }
      lines.line(
        "open failed",
        "error",
        { file, err: (err as Error).message },
        `cannot open ${file}: ${(err as Error).message}; skipping it`,
      );
      return;
    }
    try {
      let pos = consumed[name] ?? 0;
      if (fstatSync(fd).size < pos) {
        // Not the file the checkpoint read (replaced or truncated since): its bytes are new.
        lines.line(
          "file shrank",
          "warn",
          { file, position: pos },
          `${file} is shorter than the ${pos} bytes the checkpoint had read: it was truncated or replaced; reading it from its start`,
        );
        pos = 0;
      }
      consumed[name] = pos;
      const framer =
        init.framing === "lines"
          ? new LineFramer(fmt, maxFrame, (bytes) => {
              tooLong++;
              lines.line(
                "line too long",
                "error",
                { file, bytes, maxFrameBytes: maxFrame, tooLongLines: tooLong },
                `${file}: a line of ${bytes}+ bytes is over the ${maxFrame}-byte limit (--max-frame-bytes); ` +
                  `skipping it up to its newline (${tooLong} such lines so far)`,
              );
            })
          : null;
      /** "length": the bytes of an incomplete frame, carried to the next read */
      let carry: Buffer = Buffer.alloc(0);
      const buf = Buffer.allocUnsafe(READ_BYTES);
      for (;;) {
        while ((paused || flushing) && !stopping) await sleep(5);
        if (stopping) return;
        const n = readSync(fd, buf, 0, READ_BYTES, pos + (framer ? framer.pending : carry.length));
        if (n === 0) {
          // The end, for now: a followed last file may still grow.
          if (init.follow && isLast()) {
            if (fstatSync(fd).size < pos) {
              lines.line(
                "file shrank",
                "warn",
                { file },
                `${file} is shorter than the ${pos} bytes read: it was truncated or replaced; reading it from its start`,
              );
              pos = 0;
              consumed[name] = 0;
              framer?.reset();
              carry = Buffer.alloc(0);
            }
            await sleep(POLL_MS);
            continue;
          }
          if (framer) {
            // The last line without a newline is a line; a line over the limit was reported. Either way its bytes are consumed.
            const rest = framer.pending;
            const run = framer.end();
            if (run) {
              messages += framer.count;
              sendRun(run, 0, run.length);
            }
            pos += rest;
          } else if (carry.length > 0) {
            unframeable++;
            lines.line(
              "partial frame at end",
              "warn",
              { file, bytes: carry.length },
              `${file} ends in the middle of a frame: its last ${carry.length} bytes are not a whole message; left out`,
            );
            pos += carry.length;
          }
          consumed[name] = pos;
          await publish();
          return;
        }
        const chunk = buf.subarray(0, n);
        if (framer) {
          const before = framer.pending;
          const run = framer.push(chunk);
          if (run) {
            messages += framer.count;
            sendRun(run, 0, run.length);
          }
          // consumed up to the last line boundary: what was pending, plus this read, less what is pending now
          pos += before + n - framer.pending;
        } else {
          const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
          const { end, count, bad } = scanFrames(fmt, data, 0, data.length, maxFrame, scan);
          if (end > 0) sendRun(data, 0, end);
          messages += count;
          pos += end;
          if (bad !== null) {
            unframeable++;
            lines.line(
              "bad frame header",
              "error",
              { file, offset: pos, announced: bad, maxFrameBytes: maxFrame },
              `${file} at byte ${pos}: a header announces ${bad < 0 ? `a negative length (${bad})` : `a ${bad}-byte frame, over the ${maxFrame}-byte limit (--max-frame-bytes)`}: ` +
                `the rest of the file cannot be framed; skipping it`,
            );
            pos = fstatSync(fd).size;
            consumed[name] = pos;
            await publish();
            return;
          }
          // a copy: `buf` is read into again
          carry = Buffer.from(data.subarray(end));
        }
        consumed[name] = pos;
        await publish();
        await yieldToEventLoop();
      }
    } finally {
      closeSync(fd);
    }
  };

  const run = async () => {
    if (!isDir) {
      // One file: following, readFile returns only on a stop, or while the file does not exist.
      for (;;) {
        await readFile(basename(init.path), () => true);
        if (stopping || !init.follow) break;
        await sleep(POLL_MS);
      }
      if (!stopping) finished();
      return;
    }
    let names = fileNames();
    let i = 0;
    for (;;) {
      if (stopping) break;
      if (i >= names.length) {
        if (!init.follow) break;
        await sleep(POLL_MS);
        const now = fileNames();
        // only names after the last one read are new (the order is the names')
        const last = names[names.length - 1];
        names = last === undefined ? now : [...names, ...now.filter((n) => n > last)];
        continue;
      }
      const name = names[i];
      await readFile(name, () => {
        if (!isDir) return true;
        const now = fileNames();
        if (now.some((n) => n > name)) {
          names = [...names.slice(0, i + 1), ...now.filter((n) => n > name)];
          return false;
        }
        return true;
      });
      i++;
    }
    if (!stopping) finished();
  };

  /** The end of a source that does not follow: said once (the engine has no notion of a finished input). */
  const finished = () => {
    log.info(
      { messages, tooLongLines: tooLong, unframeable, finished: true },
      `read ${isDir ? `the files of ${init.path}` : init.path} to the end: ${messages} messages; this source is finished ` +
        `(the engine keeps running, and writing what is in flight, until it is stopped)`,
    );
  };

  control.postMessage({ type: "listening", port: 0 } satisfies FromIo);
  const done = run().catch((err: Error) => {
    control.postMessage({
      type: "fatal",
      where: `file source of pipeline ${JSON.stringify(init.pipeline)}`,
      message: `reading ${init.path}: ${err.message}`,
    } satisfies FromIo);
  });

  control.on("message", (msg: ToIo) => {
    if (msg.type === "pause") {
      paused = true;
      pauseId = msg.id;
      answerPause();
      return;
    }
    if (msg.type === "resume") {
      paused = false;
      pauseId = null;
      return;
    }
    if (msg.type === "stop" && !stopping) {
      stopping = true;
      void done.then(async () => {
        await publish();
        lines.close();
        control.postMessage({ type: "stopped", messages, positions: positions() } satisfies FromIo);
      });
    }
  });
}
