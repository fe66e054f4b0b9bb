/**
 * The Kafka record frame: how a worker hands records to the Kafka sink thread.
 * One module holds both sides (the workers write it, the sink reads it, the test
 * driver decodes it), so the format cannot drift apart.
 *
 * A ring frame holds any number of records, each
 *
 *     [u32 LE hash][u32 LE tail length][tail]
 *
 * - hash: the key's murmur2, made positive (`murmur2(key) & 0x7fffffff`, Kafka's
 *   Utils.toPositive), so the record's partition is `hash % partitions`, as the Java
 *   client's (and kafkajs') default partitioner puts it; NO_KEY (0xFFFFFFFF) for a
 *   record without a key, which the sink spreads over the partitions. The worker
 *   hashes because it has the key bytes at hand; the sink thread, which every record
 *   of every worker goes through, only takes a remainder.
 * - tail: the record's last fields exactly as a Kafka v2 record (magic 2) holds them:
 *   varint key length (-1: no key), key, varint value length, value, varint header
 *   count, and the headers (varint name length, name, varint value length (-1: null),
 *   value), which an encoder returning `{ value, key, headers }` sets.
 * - a record whose encoder set its timestamp has TS_FLAG set in its tail length and
 *   the timestamp (f64 LE, ms) between the header and the tail; the sink writes it as
 *   the record's timestamp delta. Without it (the common case) nothing more is written
 *   and the record carries its batch's time. The sink completes a record in front of it (varint length,
 *   attributes, timestamp delta, offset delta: what depends on the record's place in
 *   its batch) and copies the tail as it is.
 *
 * Varints are zigzag-encoded, as in the Kafka protocol.
 */
import { syncOnly } from "../../core/sync-only.js";
import { readU32LE, writeU32LE } from "../../core/bytes.js";
import { utf8Length, utf8Write } from "../../transport/utf8.js";
import { copyBytes } from "../../transport/channel.js";

export const NO_KEY = 0xffffffff;
/** set in an entry's tail length when a timestamp (f64 LE) follows the entry's header */
export const TS_FLAG = 0x80000000;
/** bytes of an entry's timestamp */
export const TS_BYTES = 8;

/** The f64 LE at `at` of any Uint8Array (a ring's bytes are not a Buffer). */
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);
export function readF64LE(bytes: Uint8Array, at: number): number {
  for (let i = 0; i < 8; i++) f64Bytes[i] = bytes[at + i];
  return f64[0];
}

/** bytes of a zigzag varlong (v a safe integer: |v| < 2^52, so that 2|v| stays exact) */
export function sizeOfVarLong(v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  let n = 1;
  while (z >= 128) {
    n++;
    z = Math.floor(z / 128);
  }
  return n;
}

/** Writes `v` (|v| < 2^52) as a zigzag varlong at `at`; returns the offset after it. */
export function writeVarLong(buf: Uint8Array, at: number, v: number): number {
  let z = v >= 0 ? v * 2 : -v * 2 - 1;
  while (z >= 128) {
    buf[at++] = (z % 128) | 0x80;
    z = Math.floor(z / 128);
  }
  buf[at++] = z;
  return at;
}

/** A zigzag varlong at `at` (|value| < 2^52): [value, offset after it]. */
export function readVarLong(buf: Uint8Array, at: number): [number, number] {
  let z = 0;
  let mul = 1;
  for (;;) {
    const b = buf[at++];
    z += (b & 0x7f) * mul;
    if (b < 0x80) break;
    mul *= 128;
  }
  return [z % 2 === 0 ? z / 2 : -(z + 1) / 2, at];
}

/** Largest timestamp an encoder may set: 2^51 ms (about 71000 years); the deltas then stay exact. */
const MAX_TIMESTAMP = 2 ** 51;
/** bytes in front of each record's tail: hash, tail length */
export const ENTRY_HEADER = 8;
/** bytes of records gathered on a worker before they go to the sink's ring as one frame */
export const GATHER_BYTES = 64 * 1024;

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2) of data[off, off + length), on 32-bit ints. */
export function murmur2(data: Uint8Array, off = 0, length = data.length - off): number {
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = off + i * 4;
    let k = data[i4] | (data[i4 + 1] << 8) | (data[i4 + 2] << 16) | (data[i4 + 3] << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = off + (length & ~3);
  switch (length % 4) {
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: murmur2 mixes the 3, 2 or 1 tail bytes in turn
    case 3:
      h ^= data[tail + 2] << 16; // falls through
    // biome-ignore lint/suspicious/noFallthroughSwitchClause: as above
    case 2:
      h ^= data[tail + 1] << 8; // falls through
    case 1:
      h ^= data[tail];
      h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** bytes of a zigzag varint */
export function sizeOfVarInt(v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0;
  let n = 1;
  while (z >= 0x80) {
    n++;
    z >>>= 7;
  }
  return n;
}

/** Writes `v` as a zigzag varint at `at`; returns the offset after it. */
export function writeVarInt(buf: Uint8Array, at: number, v: number): number {
  let z = ((v << 1) ^ (v >> 31)) >>> 0;
  while (z >= 0x80) {
    buf[at++] = (z & 0x7f) | 0x80;
    z >>>= 7;
  }
  buf[at++] = z;
  return at;
}

/** A zigzag varint at `at`: [value, offset after it]. */
export function readVarInt(buf: Uint8Array, at: number): [number, number] {
  let z = 0;
  let shift = 0;
  for (;;) {
    const b = buf[at++];
    z |= (b & 0x7f) << shift;
    if (b < 0x80) break;
    shift += 7;
  }
  return [(z >>> 1) ^ -(z & 1), at];
}

type Bytes = string | Uint8Array;

function checkBytes(v: unknown, what: string): Bytes {
  if (typeof v === "string" || v instanceof Uint8Array) return v;
  throw new TypeError(
    `the Kafka ${what} returned by an encoder must be a string, Buffer or Uint8Array, got ${describe(v)}`,
  );
}

function describe(v: unknown): string {
  if (v == null) return String(v);
  if (Array.isArray(v)) return "an array";
  return typeof v === "object"
    ? `an object (${(v as object).constructor?.name ?? "Object"})`
    : `${typeof v} ${String(v)}`;
}

const byteLength = (v: Bytes): number => (typeof v === "string" ? utf8Length(v) : v.length);

/** Writes v (byteLength n) at `at`; returns the offset after it. */
function writeBytes(buf: Buffer, at: number, v: Bytes, n: number): number {
  if (typeof v === "string") utf8Write(buf, v, at, n);
  else buf.set(v, at);
  return at + n;
}

/** Bytes of the entry (header and tail) of a record with a `keyLen`-byte key (-1: none) and a `valueLen`-byte value. */
export const entryBytes = (
  keyLen: number,
  valueLen: number,
  headers: HeaderPair[] = NO_HEADERS,
  timestamp = Number.NaN,
): number =>
  ENTRY_HEADER +
  (Number.isNaN(timestamp) ? 0 : TS_BYTES) +
  sizeOfVarInt(keyLen) +
  Math.max(keyLen, 0) +
  sizeOfVarInt(valueLen) +
  valueLen +
  headersBytes(headers);

/** A record header: name (UTF-8 bytes) and value (null: a null value). */
type HeaderPair = readonly [Buffer, Buffer | null];
const NO_HEADERS: HeaderPair[] = [];

function headersBytes(headers: HeaderPair[]): number {
  let n = sizeOfVarInt(headers.length);
  for (const [name, v] of headers)
    n += sizeOfVarInt(name.length) + name.length + (v ? sizeOfVarInt(v.length) + v.length : 1);
  return n;
}

/** An encoder's `headers` ({ name: value | value[] }) as pairs, arrays spread in order. */
function headerPairs(h: unknown): HeaderPair[] {
  if (h == null) return NO_HEADERS;
  if (typeof h !== "object" || Array.isArray(h)) {
    throw new TypeError(
      `the headers returned by a Kafka encoder must be an object { name: value }, got ${describe(h)}`,
    );
  }
  const out: HeaderPair[] = [];
  for (const [name, v] of Object.entries(h)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      const b = one == null ? null : checkBytes(one, `header ${JSON.stringify(name)}`);
      out.push([
        Buffer.from(name),
        b === null ? null : typeof b === "string" ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength),
      ]);
    }
  }
  return out;
}

/**
 * Writes one record's entry at `at` of `buf` (which must have room: entryBytes) and returns the
 * offset after it. `key` null: no key.
 */
export function writeRecordEntry(
  buf: Buffer,
  at: number,
  value: Bytes,
  valueLen: number,
  key: Bytes | null,
  keyLen: number,
  headers: HeaderPair[] = NO_HEADERS,
  timestamp = Number.NaN,
): number {
  const start = at;
  at += ENTRY_HEADER;
  const timed = !Number.isNaN(timestamp);
  if (timed) {
    f64[0] = timestamp;
    buf.set(f64Bytes, at);
    at += TS_BYTES;
  }
  const tailAt = at;
  at = writeVarInt(buf, at, key === null ? -1 : keyLen);
  let hash = NO_KEY;
  if (key !== null) {
    const keyAt = at;
    at = writeBytes(buf, at, key, keyLen);
    hash = murmur2(buf, keyAt, keyLen) & 0x7fffffff;
  }
  at = writeVarInt(buf, at, valueLen);
  at = writeBytes(buf, at, value, valueLen);
  at = writeVarInt(buf, at, headers.length);
  for (const [name, v] of headers) {
    at = writeVarInt(buf, at, name.length);
    buf.set(name, at);
    at += name.length;
    at = writeVarInt(buf, at, v === null ? -1 : v.length);
    if (v !== null) {
      buf.set(v, at);
      at += v.length;
    }
  }
  writeU32LE(buf, start, hash);
  writeU32LE(buf, start + 4, (at - tailAt + (timed ? TS_FLAG : 0)) >>> 0);
  return at;
}

/**
 * Strings of at most this many UTF-16 units take at most 3 bytes each, 63 bytes in all: their
 * zigzag varint length is one byte (2n < 128), known before the string is written.
 */
const SHORT_CHARS = 21;
/** the largest entry of short strings: header, two one-byte lengths, 63 + 63 bytes, header count */
const SHORT_ENTRY_MAX = ENTRY_HEADER + 1 + 63 + 1 + 63 + 1;

/** writeRecordEntry for a string value and key (or none) of at most SHORT_CHARS units each: no utf8Length pass. */
function writeShortEntry(buf: Buffer, at: number, value: string, key: string | null): number {
  const start = at;
  at += ENTRY_HEADER;
  let hash = NO_KEY;
  if (key === null) {
    buf[at++] = 1; // zigzag -1: no key
  } else {
    const n = utf8Write(buf, key, at + 1, 63);
    buf[at] = n << 1;
    hash = murmur2(buf, at + 1, n) & 0x7fffffff;
    at += 1 + n;
  }
  const n = utf8Write(buf, value, at + 1, 63);
  buf[at] = n << 1;
  at += 1 + n;
  buf[at++] = 0; // no headers
  writeU32LE(buf, start, hash);
  writeU32LE(buf, start + 4, at - start - ENTRY_HEADER);
  return at;
}

/**
 * A worker's writer of one Kafka sink's records: turns each encoder result
 * (`[value, key]`, key null or absent for none, or `{ value, key, headers, timestamp }`) into an entry, gathered into
 * frames of up to GATHER_BYTES that `send` hands to the sink's ring (it must copy
 * them: the buffer is reused). A record bigger than that is a frame of its own.
 */
export class RecordFrameWriter {
  private readonly buf: Buffer;
  private len = 0;

  constructor(
    private readonly send: (bytes: Uint8Array, len: number) => void,
    /** false: every record is its own frame (the test driver hands outputs back one by one) */
    private readonly gather = true,
  ) {
    this.buf = Buffer.allocUnsafe(GATHER_BYTES);
  }

  /** Throws a TypeError (nothing written) when `encoded` is not [value, key] or { value, key, headers }. */
  write(encoded: unknown): void {
    let value: Bytes;
    let key: Bytes | null;
    let headers = NO_HEADERS;
    let timestamp = Number.NaN;
    if (Array.isArray(encoded)) {
      value = checkBytes(encoded[0], "value");
      key = encoded[1] == null ? null : checkBytes(encoded[1], "key");
    } else if (
      encoded !== null &&
      typeof encoded === "object" &&
      !(encoded instanceof Uint8Array) &&
      "value" in encoded
    ) {
      const o = encoded as { value: unknown; key?: unknown; headers?: unknown; timestamp?: unknown };
      for (const k of Object.keys(o)) {
        if (k !== "value" && k !== "key" && k !== "headers" && k !== "timestamp") {
          throw new TypeError(
            `a Kafka encoder returned an unknown field "${k}"; the fields are value, key, headers and timestamp`,
          );
        }
      }
      if (o.timestamp != null) {
        const t = o.timestamp instanceof Date ? o.timestamp.getTime() : o.timestamp;
        if (typeof t !== "number" || !Number.isInteger(t) || t < 0 || t > MAX_TIMESTAMP) {
          throw new TypeError(
            `the timestamp returned by a Kafka encoder must be an integer number of ms since the epoch (or a Date), got ${describe(o.timestamp)}`,
          );
        }
        timestamp = t;
      }
      value = checkBytes(o.value, "value");
      key = o.key == null ? null : checkBytes(o.key, "key");
      headers = headerPairs(o.headers);
    } else {
      if (encoded instanceof Promise) throw syncOnly("an encoder");
      throw new TypeError(
        `an encoder for a Kafka sink must return [value, key] or { value, key, headers }, got ${describe(encoded)}`,
      );
    }
    if (
      headers.length === 0 &&
      Number.isNaN(timestamp) &&
      this.gather &&
      typeof value === "string" &&
      value.length <= SHORT_CHARS &&
      (key === null || (typeof key === "string" && key.length <= SHORT_CHARS))
    ) {
      // The common case (words, numbers as text): short strings, written without measuring them first.
      if (this.len + SHORT_ENTRY_MAX > GATHER_BYTES) this.flush();
      this.len = writeShortEntry(this.buf, this.len, value, key);
      return;
    }
    const valueLen = byteLength(value);
    const keyLen = key === null ? -1 : byteLength(key);
    const n = entryBytes(keyLen, valueLen, headers, timestamp);
    if (this.len + n > GATHER_BYTES || !this.gather) {
      this.flush();
      if (n > GATHER_BYTES || !this.gather) {
        const own = Buffer.allocUnsafe(n);
        writeRecordEntry(own, 0, value, valueLen, key, keyLen, headers, timestamp);
        this.send(own, n);
        return;
      }
    }
    this.len = writeRecordEntry(this.buf, this.len, value, valueLen, key, keyLen, headers, timestamp);
  }

  /** Hands what was gathered to the ring. */
  flush(): void {
    if (this.len > 0) {
      this.send(this.buf, this.len);
      this.len = 0;
    }
  }

  get pending(): number {
    return this.len;
  }
}

/**
 * Calls `onRecord(hash, tailAt, tailLen, timestamp)` for each record of the frame bytes[off, off + len)
 * (timestamp NaN: the encoder set none). Throws on a frame that does not parse (a bug, never user data).
 */
export function forEachRecord(
  bytes: Uint8Array,
  off: number,
  len: number,
  onRecord: (hash: number, tailAt: number, tailLen: number, timestamp: number) => void,
): void {
  const end = off + len;
  while (off < end) {
    const hash = readU32LE(bytes, off);
    let tailLen = readU32LE(bytes, off + 4);
    let tailAt = off + ENTRY_HEADER;
    let timestamp = Number.NaN;
    if (tailLen >= TS_FLAG) {
      tailLen -= TS_FLAG;
      timestamp = readF64LE(bytes, tailAt);
      tailAt += TS_BYTES;
    }
    off = tailAt + tailLen;
    if (off > end) throw new Error(`Kafka record frame: a record runs past its frame (${off} > ${end})`);
    onRecord(hash, tailAt, tailLen, timestamp);
  }
}

/** A record's headers as kafkajs takes them: a name given more than once has an array of its values. */
export type RecordHeaders = Record<string, Buffer | null | (Buffer | null)[]>;

/**
 * Key, value and headers of a record's tail (views into `bytes`); key null when the record has
 * none; headers absent when it has none.
 */
export function decodeTail(
  bytes: Uint8Array,
  tailAt: number,
): { key: Buffer | null; value: Buffer; headers?: RecordHeaders } {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [keyLen, keyAt] = readVarInt(b, tailAt);
  const key = keyLen < 0 ? null : b.subarray(keyAt, keyAt + keyLen);
  const [valueLen, valueAt] = readVarInt(b, keyAt + Math.max(keyLen, 0));
  const value = b.subarray(valueAt, valueAt + valueLen);
  let [count, at] = readVarInt(b, valueAt + valueLen);
  if (count === 0) return { key, value };
  const headers: RecordHeaders = {};
  for (; count > 0; count--) {
    const [nameLen, nameAt] = readVarInt(b, at);
    const name = b.toString("utf8", nameAt, nameAt + nameLen);
    const [vLen, vAt] = readVarInt(b, nameAt + nameLen);
    const v = vLen < 0 ? null : b.subarray(vAt, vAt + vLen);
    at = vAt + Math.max(vLen, 0);
    const had = headers[name];
    if (had === undefined) headers[name] = v;
    else if (Array.isArray(had)) had.push(v);
    else headers[name] = [had, v];
  }
  return { key, value, headers };
}

/** Key + value bytes of a record's tail (what maxMessageSize bounds). */
export function tailKeyValueBytes(bytes: Uint8Array, tailAt: number): number {
  const [keyLen, keyAt] = readVarInt(bytes, tailAt);
  const [valueLen] = readVarInt(bytes, keyAt + Math.max(keyLen, 0));
  return Math.max(keyLen, 0) + valueLen;
}

/** Every record of a frame: hash, key and value (views into `bytes`). */
export function decodeRecords(
  bytes: Uint8Array,
  off = 0,
  len = bytes.length - off,
): { hash: number; key: Buffer | null; value: Buffer; headers?: RecordHeaders; timestamp?: number }[] {
  const out: { hash: number; key: Buffer | null; value: Buffer; headers?: RecordHeaders; timestamp?: number }[] = [];
  forEachRecord(bytes, off, len, (hash, tailAt, _tailLen, timestamp) =>
    out.push({ hash, ...decodeTail(bytes, tailAt), ...(Number.isNaN(timestamp) ? {} : { timestamp }) }),
  );
  return out;
}

/** first size of a partition's buffer; it doubles as needed and is kept for the next batches */
const FIRST_BUFFER = 16 * 1024;
/**
 * The sink's side: one partition's part of a batch: complete Kafka v2 records, offset deltas
 * 0..count-1.
 *
 * Timestamps: while no record of the part has one (`base` NaN), every timestamp delta is 0 and
 * the batch carries the time it is sent (kafkajs-patches.ts encodePartition). The first record
 * that has one sets `base`, the batch's first timestamp: its own time when it is the part's
 * first record, else now (the records before it, delta 0, get that time); from then on each
 * record's delta is its time, or now, less `base` (negative deltas are valid, as in the Java
 * client's batches), and `max` is the batch's max timestamp.
 */
export class PartitionRecords {
  buf = Buffer.allocUnsafe(FIRST_BUFFER);
  len = 0;
  count = 0;
  base = Number.NaN;
  max = Number.NaN;

  /** Empties the part, keeping its buffer. */
  clear(): void {
    this.len = 0;
    this.count = 0;
    this.base = Number.NaN;
    this.max = Number.NaN;
  }

  /** Appends the record whose tail (record-frame.ts) is bytes[at, at + tailLen), with its timestamp (NaN: none). */
  append(bytes: Uint8Array, at: number, tailLen: number, timestamp = Number.NaN): number {
    let delta = 0;
    if (!Number.isNaN(timestamp) || !Number.isNaN(this.base)) {
      const t = Number.isNaN(timestamp) ? Date.now() : timestamp;
      if (Number.isNaN(this.base)) {
        this.base = this.count === 0 ? t : Date.now();
        this.max = this.base;
      }
      delta = t - this.base;
      if (t > this.max) this.max = t;
    }
    const body = 1 + sizeOfVarLong(delta) + sizeOfVarInt(this.count) + tailLen;
    const need = sizeOfVarInt(body) + body;
    if (this.len + need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + need));
      this.buf.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    const buf = this.buf;
    let o = writeVarInt(buf, this.len, body);
    buf[o++] = 0; // attributes
    o = writeVarLong(buf, o, delta);
    o = writeVarInt(buf, o, this.count);
    copyBytes(bytes, at, at + tailLen, buf, o);
    this.len = o + tailLen;
    this.count++;
    return need;
  }

  /** Calls onTail(bytes, tailAt, tailLen, timestamp) for each record, in order (timestamp NaN: the batch's). */
  forEachTail(onTail: (bytes: Buffer, tailAt: number, tailLen: number, timestamp: number) => void): void {
    let at = 0;
    while (at < this.len) {
      const [body, bodyAt] = readVarInt(this.buf, at);
      const [delta, deltaEnd] = readVarLong(this.buf, bodyAt + 1);
      const [, tailAt] = readVarInt(this.buf, deltaEnd);
      at = bodyAt + body;
      onTail(this.buf, tailAt, at - tailAt, Number.isNaN(this.base) ? Number.NaN : this.base + delta);
    }
  }
}
