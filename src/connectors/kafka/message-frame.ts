/**
 * The Kafka source's message frame when the decoder takes the record's metadata (a decoder
 * declared with two parameters, `(value, meta) => ...`). One module holds both sides: the
 * source thread writes it, the worker (and the test driver) read it, so the format cannot
 * drift apart. A decoder of one parameter gets the value bytes alone, as before: that path
 * is untouched, and costs nothing more.
 *
 *     [f64 LE timestamp][f64 LE offset][i32 LE partition]
 *     [i32 LE key length, -1: no key][key]
 *     [u16 LE header count] per header: [u16 LE name length][name, utf8][i32 LE value length, -1: null][value]
 *     [value: the rest of the frame]
 *
 * Offsets and timestamps are carried as doubles: exact for integers below 2^53 (a partition
 * would need 9e15 records to get past that).
 */
import type { Decoder } from "../../topology/spec.js";
import type { KafkaRecordMeta } from "../../topology/kafka.js";

export type { KafkaRecordMeta };

/** True when the decoder takes the metadata: its function declares a second parameter. */
export const wantsMeta = (d: Decoder): boolean => d.fn.length >= 2;

type HeaderValue = Buffer | string | null | undefined;
/** kafkajs' form of a record's headers (a repeated name: an array) */
export type Headers = Record<string, HeaderValue | HeaderValue[]>;

const FIXED = 8 + 8 + 4 + 4 + 2;

const asBuffer = (v: Buffer | string): Buffer => (typeof v === "string" ? Buffer.from(v) : v);

/** Header entries as [name, value] pairs, arrays spread, in order. */
function headerPairs(headers: Headers | undefined): [string, Buffer | null][] {
  const out: [string, Buffer | null][] = [];
  if (!headers) return out;
  for (const [name, v] of Object.entries(headers)) {
    for (const one of Array.isArray(v) ? v : [v]) out.push([name, one == null ? null : asBuffer(one)]);
  }
  return out;
}

/**
 * A frame of one record, in `scratch` when it fits (it is reused: the caller copies the frame
 * before the next call) or a fresh Buffer. Returns [buffer, length].
 */
export function writeMessageFrame(
  scratch: Buffer,
  m: { key: Buffer | null; value: Buffer; timestamp: number; offset: number; partition: number; headers?: Headers },
): [Buffer, number] {
  const pairs = headerPairs(m.headers);
  if (pairs.length > 0xffff) throw new RangeError(`a Kafka record with ${pairs.length} headers (at most 65535)`);
  let n = FIXED + (m.key ? m.key.length : 0) + m.value.length;
  for (const [name, v] of pairs) n += 2 + Buffer.byteLength(name) + 4 + (v ? v.length : 0);
  const buf = n <= scratch.length ? scratch : Buffer.allocUnsafe(n);
  let at = buf.writeDoubleLE(m.timestamp, 0);
  at = buf.writeDoubleLE(m.offset, at);
  at = buf.writeInt32LE(m.partition, at);
  at = buf.writeInt32LE(m.key ? m.key.length : -1, at);
  if (m.key) at += m.key.copy(buf, at);
  at = buf.writeUInt16LE(pairs.length, at);
  for (const [name, v] of pairs) {
    const len = buf.write(name, at + 2, "utf8");
    at = buf.writeUInt16LE(len, at) + len;
    at = buf.writeInt32LE(v ? v.length : -1, at);
    if (v) at += v.copy(buf, at);
  }
  at += m.value.copy(buf, at);
  return [buf, at];
}

/** The value and metadata of a frame (views into `frame`: a decoder may keep them, as it may its payload). */
export function readMessageFrame(frame: Buffer, topic: string): [Buffer, KafkaRecordMeta] {
  const b = Buffer.isBuffer(frame)
    ? frame
    : Buffer.from((frame as Uint8Array).buffer, (frame as Uint8Array).byteOffset, (frame as Uint8Array).byteLength);
  const timestamp = b.readDoubleLE(0);
  const offset = b.readDoubleLE(8);
  const partition = b.readInt32LE(16);
  const keyLen = b.readInt32LE(20);
  let at = 24;
  const key = keyLen < 0 ? null : b.subarray(at, at + keyLen);
  at += Math.max(keyLen, 0);
  const count = b.readUInt16LE(at);
  at += 2;
  const headers: KafkaRecordMeta["headers"] = {};
  for (let i = 0; i < count; i++) {
    const nameLen = b.readUInt16LE(at);
    const name = b.toString("utf8", at + 2, at + 2 + nameLen);
    at += 2 + nameLen;
    const vLen = b.readInt32LE(at);
    at += 4;
    const v = vLen < 0 ? null : b.subarray(at, at + vLen);
    at += Math.max(vLen, 0);
    const had = headers[name];
    if (had === undefined) headers[name] = v;
    else if (Array.isArray(had)) had.push(v);
    else headers[name] = [had, v];
  }
  return [b.subarray(at), { key, timestamp, headers, topic, partition, offset }];
}

/** The decoder call for a source whose frames carry metadata: `fn(value, meta)`. */
export function metaDecoder(d: Decoder, topic: string): (payload: Buffer) => unknown {
  const fn = d.fn as unknown as (value: Buffer, meta: KafkaRecordMeta) => unknown;
  return (payload) => {
    const [value, meta] = readMessageFrame(payload, topic);
    return fn(value, meta);
  };
}
