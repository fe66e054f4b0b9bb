/**
 * Length-header framing, the wire format of a TCP source: every message is a header
 * holding the payload's length (one integer in the decoder's `lengthFmt`, see
 * struct.ts; 4 bytes big-endian by default) followed by the payload. The same frames
 * go, unchanged and back to back, from a TCP source's socket through the source ring
 * to the worker (a SOURCE_FRAMED run), and `wallaroo send` / `receive` write and read
 * them. This module is the one place that writes, finds and reassembles them.
 */
import type { LengthFormat } from "./struct.js";

/** The largest payload length a header of this format can announce. */
export function maxPayload(fmt: LengthFormat): number {
  // 8-byte headers go past 2^53: lengths are doubles, and nothing that large is framed anyway.
  return fmt.size >= 7 ? Number.MAX_SAFE_INTEGER : 2 ** (fmt.size * 8 - (fmt.signed ? 1 : 0)) - 1;
}

/**
 * The offset just past the frame whose header starts at `pos`. The header must be
 * whole and its length already checked (scanFrames); the workers call this once per
 * message on runs a source checked, so it stays a two-operation function V8 inlines.
 */
export function frameEnd(fmt: LengthFormat, buf: Uint8Array, pos: number): number {
  return pos + fmt.size + fmt.read(buf, pos);
}

/**
 * Writes the frame of `payload[start..end)` at `off` of `out` (which must have room
 * for fmt.size + the payload); returns the offset after it. Throws a RangeError when
 * the header cannot announce that length.
 */
export function writeFrame(
  fmt: LengthFormat,
  out: Uint8Array,
  off: number,
  payload: Uint8Array,
  start = 0,
  end = payload.length,
): number {
  const n = end - start;
  if (n > maxPayload(fmt)) {
    throw new RangeError(`a ${n}-byte payload is more than a ${JSON.stringify(fmt.fmt)} length header can announce`);
  }
  fmt.write(out, off, n);
  out.set(payload.subarray(start, end), off + fmt.size);
  return off + fmt.size + n;
}

/** What scanFrames found; one instance is reused, so that a scan allocates nothing. */
export class FrameScan {
  /** offset of the first byte not in a whole frame (an incomplete frame, a bad header, or the end) */
  end = 0;
  /** whole frames between the scan's start and `end` */
  count = 0;
  /** the length a header at `end` announced when it was negative or over the limit; null if none */
  bad: number | null = null;
}

/**
 * Finds the whole frames at the start of buf[pos..end): stops before an incomplete
 * header or payload, or at a header announcing a length below 0 or above
 * `maxLength` (reported in `out.bad`, the frames before it count). Returns `out`.
 */
export function scanFrames(
  fmt: LengthFormat,
  buf: Uint8Array,
  pos: number,
  end: number,
  maxLength: number,
  out: FrameScan,
): FrameScan {
  const H = fmt.size;
  let count = 0;
  let bad: number | null = null;
  while (end - pos >= H) {
    const n = fmt.read(buf, pos);
    if (n < 0 || n > maxLength) {
      bad = n;
      break;
    }
    if (end - pos - H < n) break;
    pos += H + n;
    count++;
  }
  out.end = pos;
  out.count = count;
  out.bad = bad;
  return out;
}

/**
 * Follows the frames of one stream across chunk boundaries (e.g. the chunks of a
 * socket). Without a listener it only skips payloads; with one it hands each payload
 * over: a view of the chunk when the frame lies in one chunk, a copy assembled from
 * the pieces when it spans several. It holds the payload buffer of the frame in
 * progress, sized by its header: for trusted streams (`wallaroo receive`); the TCP
 * source, which must not trust a header, keeps pieces instead (connectors/tcp/source.ts).
 */
export class FrameReader {
  private readonly header: Buffer;
  private headerFill = 0;
  /** payload bytes still to come for the current frame; 0 while reading a header */
  private remaining = 0;
  private payload: Buffer | undefined;
  private payloadFill = 0;

  constructor(
    private readonly fmt: LengthFormat,
    private readonly onMessage?: (payload: Buffer) => void,
  ) {
    this.header = Buffer.alloc(fmt.size);
  }

  /** Returns how many frames `chunk` completed; throws on a negative length. */
  push(chunk: Buffer): number {
    const hs = this.fmt.size;
    const end = chunk.length;
    let off = 0;
    let done = 0;
    while (off < end) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, end - off);
        this.payload?.set(chunk.subarray(off, off + take), this.payloadFill);
        this.payloadFill += take;
        this.remaining -= take;
        off += take;
        if (this.remaining === 0) {
          done++;
          if (this.payload) this.onMessage!(this.payload);
          this.payload = undefined;
        }
        continue;
      }
      let len: number;
      if (this.headerFill === 0 && end - off >= hs) {
        len = this.fmt.read(chunk, off);
        off += hs;
      } else {
        const take = Math.min(hs - this.headerFill, end - off);
        chunk.copy(this.header, this.headerFill, off, off + take);
        this.headerFill += take;
        off += take;
        if (this.headerFill < hs) break;
        this.headerFill = 0;
        len = this.fmt.read(this.header, 0);
      }
      if (len < 0) throw new Error(`frame header announces a negative length (${len}) in '${this.fmt.fmt}'`);
      if (end - off >= len) {
        done++;
        this.onMessage?.(chunk.subarray(off, off + len));
        off += len;
      } else {
        this.remaining = len;
        this.payloadFill = 0;
        if (this.onMessage) this.payload = Buffer.allocUnsafe(len);
      }
    }
    return done;
  }
}

/**
 * Newline framing, for line-oriented producers (`cat file | nc`, a file source's
 * "lines"): cuts a byte stream at `\n`, strips one `\r` before it, and rewrites each
 * line as a length-header frame in `fmt`, so that what leaves here is a run the
 * workers split exactly as a TCP source's (scanFrames/frameEnd). The line itself,
 * without its terminator, is the payload; an empty line is an empty payload.
 *
 * A line longer than `maxLine` bytes is refused alone: reported through `onTooLong`
 * (once, when it is found to be too long) and skipped up to its `\n`, where framing
 * resynchronises; the lines around it are kept. Memory: at most `maxLine` + 1 bytes
 * of an unfinished line are held (the + 1 is a `\r` that may turn out to end it).
 */
export class LineFramer {
  /** the bytes of the unfinished line, as they arrived (copies), oldest first */
  private pieces: Buffer[] = [];
  /** bytes in `pieces` */
  held = 0;
  /** inside a line over the limit: bytes are dropped until the next `\n` */
  private skipping = false;
  /** bytes of the line being skipped seen so far (part of `pending`) */
  private skipped = 0;
  /** lines framed by the last push() or end() */
  count = 0;
  readonly maxLine: number;

  constructor(
    private readonly fmt: LengthFormat,
    maxLine: number,
    private readonly onTooLong: (bytesSoFar: number) => void,
  ) {
    this.maxLine = Math.min(maxLine, maxPayload(fmt));
  }

  /**
   * Bytes pushed since the last line boundary (held or being skipped): a position
   * taken at a message boundary is the bytes consumed minus these.
   */
  get pending(): number {
    return this.held + this.skipped;
  }

  /** Forgets the unfinished line (its connection is gone). */
  reset(): void {
    this.pieces = [];
    this.held = 0;
    this.skipping = false;
    this.skipped = 0;
  }

  /** The frames of the lines `chunk` completes, as one run (null if none); their number in `count`. */
  push(chunk: Buffer): Buffer | null {
    this.count = 0;
    let newlines = 0;
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) newlines++;
    if (newlines === 0) {
      this.keep(chunk, 0);
      return null;
    }
    const H = this.fmt.size;
    // An upper bound: every byte held or in the chunk, plus a header per line.
    const out = Buffer.allocUnsafe(this.held + chunk.length + newlines * H);
    let at = 0;
    let pos = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, pos)) {
      if (this.skipping) {
        this.skipping = false;
        this.skipped = 0;
        pos = nl + 1;
        continue;
      }
      let len = this.held + (nl - pos);
      const cr = nl > pos ? chunk[nl - 1] === 13 : this.held > 0 && this.lastHeld() === 13;
      if (cr) len--;
      if (len > this.maxLine) {
        this.onTooLong(len);
        this.pieces = [];
        this.held = 0;
        pos = nl + 1;
        continue;
      }
      this.fmt.write(out, at, len);
      at += H;
      let left = len;
      for (const p of this.pieces) {
        const n = Math.min(p.length, left);
        p.copy(out, at, 0, n);
        at += n;
        left -= n;
      }
      if (left > 0) {
        chunk.copy(out, at, pos, pos + left);
        at += left;
      }
      this.pieces = [];
      this.held = 0;
      this.count++;
      pos = nl + 1;
    }
    this.keep(chunk, pos);
    return this.count > 0 ? out.subarray(0, at) : null;
  }

  /**
   * The end of the stream: the last line if it had no `\n` (as `cat` and most tools
   * treat it: still a line), as a run, or null. `count` is 1 or 0.
   */
  end(): Buffer | null {
    this.count = 0;
    if (this.skipping || this.held === 0) {
      this.reset();
      return null;
    }
    const run = this.push(Buffer.from("\n"));
    this.reset();
    return run;
  }

  private lastHeld(): number {
    const p = this.pieces[this.pieces.length - 1];
    return p[p.length - 1];
  }

  /** Holds chunk[pos..] as the start of the next line, or starts skipping a line now over the limit. */
  private keep(chunk: Buffer, pos: number): void {
    const n = chunk.length - pos;
    if (n === 0) return;
    if (this.skipping) {
      this.skipped += n;
      return;
    }
    if (this.held + n > this.maxLine + 1) {
      this.onTooLong(this.held + n);
      this.skipping = true;
      this.skipped = this.held + n;
      this.pieces = [];
      this.held = 0;
      return;
    }
    // A copy: a view would keep the whole read buffer alive for a few bytes.
    this.pieces.push(Buffer.from(chunk.subarray(pos)));
    this.held += n;
  }
}

/**
 * Follows the lines of one trusted stream across chunk boundaries (`wallaroo
 * receive --lines`): counts each `\n`-terminated line and, with a listener, hands
 * it over without its `\n` (nor a `\r` before it): a view of the chunk when the line
 * lies in one chunk, a copy when it spans several. end() passes on a last line
 * without a newline. No limit: the TCP source, which must not trust its peer, uses
 * LineFramer instead.
 */
export class LineReader {
  private pieces: Buffer[] = [];
  /** bytes arrived after the last `\n` */
  private partial = false;

  constructor(private readonly onLine?: (line: Buffer) => void) {}

  /** Returns how many lines `chunk` completed. */
  push(chunk: Buffer): number {
    let done = 0;
    let pos = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, pos)) {
      done++;
      if (this.onLine) {
        let line = chunk.subarray(pos, nl);
        if (this.pieces.length > 0) {
          line = Buffer.concat([...this.pieces, line]);
          this.pieces = [];
        }
        this.onLine(line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line);
      }
      pos = nl + 1;
    }
    if (this.onLine && pos < chunk.length) this.pieces.push(Buffer.from(chunk.subarray(pos)));
    this.partial = pos < chunk.length || (done === 0 && this.partial);
    return done;
  }

  /** The stream ended: 1 if it ended in a line without a newline (handed over), else 0. */
  end(): number {
    if (!this.partial) return 0;
    this.partial = false;
    if (this.onLine) {
      const line = Buffer.concat(this.pieces);
      this.pieces = [];
      this.onLine(line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line);
    }
    return 1;
  }
}
