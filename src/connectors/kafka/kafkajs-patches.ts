/**
 * Fixes to kafkajs 2.2.4's producer and consumer, the Kafka path's bottlenecks
 * (see bench/ANALYSIS.md, "Kafka"). kafkajs is unmaintained since 2023 and pinned
 * at 2.2.4 in package.json; each fix is applied by setting a module's entry
 * in Node's CommonJS cache before kafkajs requires it, and each keeps the
 * module's contract (same bytes written, same messages decoded: tested).
 *
 * 1. producer/groupMessagesPerPartition.js groups a send's messages by partition
 *    with `Object.assign(result, { [partition]: [...current, message] })`, copying
 *    the partition's array for every message: a send of n records into p
 *    partitions costs O(n^2 / p) copies. Replaced by a linear grouping (partition
 *    -> its messages in the order given, which is what keeps per-partition order).
 *
 * 2. protocol/requests/produce/v3/request.js (which v4..v7 wrap) encodes each record
 *    through a spread copy of the message, an Encoder of its own and a byte array
 *    per varint, then copies them all into the batch: most of the sink thread's
 *    time went to that and the garbage it makes. For uncompressed batches whose
 *    messages are plain (Buffer or null key and value, no timestamp, no headers,
 *    which is what the sink sends) the request's encode writes each partition's
 *    record batch straight into one buffer; anything else goes through kafkajs'
 *    own encoder. The output is byte for byte kafkajs' (tested).
 *
 *    It also takes the Kafka sink's own records: one pseudo-message per partition
 *    carrying that partition's records already encoded (encodedRecordsMessage; the
 *    grouping turns it into a list whose length is the record count, which is what
 *    kafkajs advances the idempotent producer's sequence number by), written into
 *    the record batch as they are. The request is written into one buffer of its
 *    exact size.
 *
 * 3. producer/partitioners/default/murmur2.js hashes keys with 64-bit Long objects
 *    (several allocations per key byte group). Replaced by the same 32-bit murmur2
 *    (Kafka's Utils.murmur2, as the Java client) with Math.imul: same hash, so a key
 *    lands in the same partition as before (tested against kafkajs' function).
 *
 * 4. protocol/recordBatch/v0/decoder.js decodes each fetched record through a Decoder,
 *    a buffer slice and four Long objects: replaced, for uncompressed batches, by a
 *    direct reader making the same messages (see makeRecordBatchDecoder).
 *
 * 5. producer/eosManager/index.js keeps a transactional producer's id and epoch in a closure that
 *    kafkajs does not expose: wrapped so that each transactional manager is remembered by its
 *    transactionalId (transactionIdentity), which the sink records with a checkpoint (sink.ts,
 *    "two-phase commit"). The manager itself is kafkajs' own, unchanged.
 *
 * 6. network/requestQueue/index.js re-arms a timer for its pending-request check after every
 *    response, also when nothing is pending and nothing is throttled: `setTimeout(fn,
 *    throttledUntil - Date.now())` with throttledUntil -1, a negative delay that Node runs
 *    as 1 ms, and the check re-arms it. So every broker connection of a Kafka thread woke
 *    its event loop every millisecond for as long as it lived, and Node 23+ printed a
 *    TimeoutNegativeWarning on stderr. Replaced (on the class's prototype) by the same
 *    method that arms the timer only while requests are pending: a request that cannot be
 *    sent at once is queued with a call to it, and responses and timeouts check the queue
 *    themselves, so an empty queue needs no timer.
 *
 * 7. consumer/filterAbortedMessages.js, which drops the records of aborted transactions from a fetched
 *    partition (read_committed, kafkajs' default and the source's), assumed the fetch response's list of
 *    aborted transactions sorted by first offset and looked only at its head, one entry per record. The
 *    broker lists them in the order they ended, though: when a later transaction aborts before an earlier
 *    one (the engine's own failed stop does that: the open transaction is aborted, then the prepared one),
 *    the head is the later one, and every record of the earlier one up to there was delivered (seen: 1,000
 *    records of an aborted transaction read by the engine, none by a Java read_committed consumer).
 *    Replaced by the Java consumer's filter (CompletedFetch): the aborted transactions in first-offset
 *    order; before each record batch, every one starting at or before the batch's last offset marks its
 *    producer aborted; a transactional data batch of an aborted producer is dropped, and that producer's
 *    ABORT marker (a control batch) ends it. Control records are kept, as kafkajs' filter keeps them
 *    (batch.js drops them after it).
 *
 * Invariant: this module must be evaluated before kafkajs in every thread that
 * produces or consumes: client.ts and sink.ts import it before "kafkajs". If
 * kafkajs' producer was loaded first the fixes cannot take effect, and
 * installKafkajsPatches() says so (the sink logs it, and then sends plain messages).
 */
import { createRequire } from "node:module";
import { crc32c } from "./crc32c.js";
import { murmur2 as murmur2Bytes, sizeOfVarInt, writeVarInt } from "./record-frame.js";

const require = createRequire(import.meta.url);

type Partitioner = (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;

/** kafkajs' KafkaJSMetadataNotLoaded (set by installKafkajsPatches; Error until then) */
let MetadataNotLoaded: new (message: string) => Error = Error;

/** Same result as kafkajs' grouping (an object keyed by partition, messages in input order), in O(n). */
export function groupMessagesPerPartition({
  topic,
  partitionMetadata,
  messages,
  partitioner,
}: {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner: Partitioner;
}): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const encoded = (message as Record<symbol, EncodedRecords | undefined>)[ENCODED];
    if (encoded !== undefined) {
      // Partitioned by the sink already (the key's hash modulo the partition count it knew).
      if (result[encoded.partition] !== undefined)
        throw new Error(`kafkajs-patches: two lists of encoded records for partition ${encoded.partition} of ${topic}`);
      if (encoded.partition >= partitionMetadata.length)
        // The sink saw partitions added before this producer's metadata did: kafkajs' send refreshes its
        // metadata on this error and tries again (a plain Error would fail the send).
        throw new MetadataNotLoaded(
          `encoded records for partition ${encoded.partition} of ${topic}, which has ${partitionMetadata.length} partitions in this producer's metadata`,
        );
      result[encoded.partition] = encodedList(encoded);
      continue;
    }
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), on 32-bit ints (kafkajs' signature). */
export function murmur2(key: Buffer | string): number {
  const data = Buffer.isBuffer(key) ? key : Buffer.from(String(key));
  return murmur2Bytes(data, 0, data.length);
}

/**
 * Records the Kafka sink encoded itself (record-frame.ts entries completed into Kafka v2 records,
 * offset deltas 0..count-1): handed to kafkajs' send as one pseudo-message per partition
 * (encodedRecordsMessage), which the patched grouping turns into that partition's message list and
 * the patched produce request writes into the record batch as they are.
 */
export interface EncodedRecords {
  partition: number;
  records: Buffer;
  count: number;
  /** the batch's first and max timestamps (ms); NaN or absent: the time it is encoded (every delta is 0) */
  firstTimestamp?: number;
  maxTimestamp?: number;
}
export const ENCODED = Symbol.for("wallaroo.kafka.encodedRecords");

/** The pseudo-message carrying one partition's encoded records through kafkajs' send. */
export const encodedRecordsMessage = (e: EncodedRecords) => ({ partition: e.partition, value: null, [ENCODED]: e });

/**
 * The message list of an encoded partition: an array whose length is the record count,
 * since kafkajs' sendMessages advances the idempotent producer's sequence number of the
 * partition by `messages.length` (the broker expects the next batch to start at the last
 * one's sequence + its record count). Its elements are never read: the patched encoder
 * takes the records from list[ENCODED]; kafkajs reads nothing else of it.
 */
function encodedList(e: EncodedRecords): unknown[] {
  const list: unknown[] = [];
  list.length = e.count;
  (list as unknown as Record<symbol, EncodedRecords>)[ENCODED] = e;
  return list;
}

interface PlainMessage {
  key?: Buffer | null;
  value: Buffer | null;
  timestamp?: unknown;
  headers?: object;
}
interface PartitionData {
  partition: number;
  messages: PlainMessage[];
  firstSequence?: number;
}
interface TopicData {
  topic: string;
  partitions: PartitionData[];
}
interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: TopicData[];
}

const isPlain = (m: PlainMessage): boolean =>
  m.timestamp == null &&
  (m.key == null || Buffer.isBuffer(m.key)) &&
  (m.value === null || Buffer.isBuffer(m.value)) &&
  (m.headers == null || Object.keys(m.headers).length === 0);

const sizeOfBytes = (b: Buffer | null | undefined): number => (b == null ? 1 : sizeOfVarInt(b.length) + b.length);
const writeBytes = (buf: Buffer, at: number, b: Buffer | null | undefined): number => {
  if (b == null) return writeVarInt(buf, at, -1);
  at = writeVarInt(buf, at, b.length);
  return at + b.copy(buf, at);
};

/** The patched v3 produce request: kafkajs' own, whose encode takes the direct path when every message is plain. */
function makeProduceRequest(original: (a: ProduceArgs) => any, kafkajsRoot: string) {
  const req = createRequire(`${kafkajsRoot}/`);
  const EncoderClass = req("./src/protocol/encoder.js");
  const Long = req("./src/utils/long.js");
  const { Types } = req("./src/protocol/message/compression/index.js");

  const encodePartition = (
    d: PartitionData,
    transactionalId: string | null,
    producerId: unknown,
    producerEpoch: number,
  ): Buffer => {
    const { messages } = d;
    const now = Date.now();
    const encoded = (messages as unknown as Record<symbol, EncodedRecords | undefined>)[ENCODED];
    // Records with timestamps of their own (PartitionRecords.append): deltas from the batch's first timestamp.
    const timed = encoded?.firstTimestamp !== undefined && !Number.isNaN(encoded.firstTimestamp);
    // Record: varint length, attributes (0), timestampDelta (varlong 0: all records carry the batch's time), offsetDelta, key, value, 0 headers.
    let recordsBytes = encoded?.records.length ?? 0;
    for (let i = 0; encoded === undefined && i < messages.length; i++) {
      const m = messages[i];
      const body = 1 + 1 + sizeOfVarInt(i) + sizeOfBytes(m.key) + sizeOfBytes(m.value) + 1;
      recordsBytes += sizeOfVarInt(body) + body;
    }
    const header = new EncoderClass()
      .writeInt16(transactionalId ? 16 : 0) // attributes: no compression, create time, transactional bit
      .writeInt32(messages.length - 1) // lastOffsetDelta
      .writeInt64(timed ? encoded.firstTimestamp! : now) // firstTimestamp
      .writeInt64(timed ? encoded.maxTimestamp! : now) // maxTimestamp
      .writeInt64(producerId)
      .writeInt16(producerEpoch)
      .writeInt32(d.firstSequence ?? 0)
      .writeInt32(messages.length).buffer as Buffer;
    // partition, record batch size, then the batch: firstOffset, length, leader epoch, magic, crc, body
    const bodyBytes = header.length + recordsBytes;
    const batchBytes = 4 + 1 + 4 + bodyBytes;
    const out = Buffer.allocUnsafe(4 + 4 + 8 + 4 + batchBytes);
    let at = out.writeInt32BE(d.partition, 0);
    at = out.writeInt32BE(8 + 4 + batchBytes, at);
    at = out.writeInt32BE(0, at); // firstOffset (int64 0)
    at = out.writeInt32BE(0, at);
    at = out.writeInt32BE(batchBytes, at);
    at = out.writeInt32BE(0, at); // partitionLeaderEpoch
    at = out.writeInt8(2, at); // magic
    const crcAt = at;
    at += 4;
    const bodyAt = at;
    at += header.copy(out, at);
    if (encoded !== undefined) at += encoded.records.copy(out, at);
    for (let i = 0; encoded === undefined && i < messages.length; i++) {
      const m = messages[i];
      at = writeVarInt(out, at, 1 + 1 + sizeOfVarInt(i) + sizeOfBytes(m.key) + sizeOfBytes(m.value) + 1);
      out[at++] = 0; // attributes
      out[at++] = 0; // timestampDelta
      at = writeVarInt(out, at, i);
      at = writeBytes(out, at, m.key);
      at = writeBytes(out, at, m.value);
      out[at++] = 0; // headers
    }
    if (at !== out.length)
      throw new Error(`kafkajs-patches: record batch encoded to ${at} bytes, expected ${out.length}`);
    out.writeUInt32BE(crc32c(out, bodyAt, out.length), crcAt);
    return out;
  };

  return (args: ProduceArgs) => {
    const request = original(args);
    const { acks, timeout, transactionalId = null, topicData } = args;
    const compression = args.compression ?? Types.None;
    const producerId = args.producerId ?? Long.fromInt(-1);
    const producerEpoch = args.producerEpoch ?? 0;
    const direct =
      compression === Types.None &&
      topicData.every((t) =>
        t.partitions.every(
          (p) =>
            p.messages.length > 0 &&
            ((p.messages as unknown as Record<symbol, unknown>)[ENCODED] !== undefined || p.messages.every(isPlain)),
        ),
      );
    // Encoded records can only be written here: kafkajs' own encoder cannot (a compressed send of them is a bug).
    if (!direct && topicData.some((t) => t.partitions.some((p) => (p.messages as any)[ENCODED] !== undefined)))
      throw new Error("kafkajs-patches: records encoded by the sink can only be sent uncompressed");
    if (!direct) return request;
    return {
      ...request,
      // One buffer of the request's exact size (kafkajs' encoders nest, each growing by doubling
      // and copying: several copies of every record per send).
      encode: async () => {
        const topics = topicData.map((t) => ({
          topic: t.topic,
          parts: t.partitions.map((p) => encodePartition(p, transactionalId, producerId, producerEpoch)),
        }));
        let total = 2 + (transactionalId == null ? 0 : Buffer.byteLength(transactionalId)) + 2 + 4 + 4;
        for (const t of topics) {
          total += 2 + Buffer.byteLength(t.topic) + 4;
          for (const b of t.parts) total += b.length;
        }
        const e = new EncoderClass(total).writeString(transactionalId).writeInt16(acks).writeInt32(timeout);
        e.writeInt32(topics.length);
        for (const t of topics) {
          e.writeString(t.topic).writeInt32(t.parts.length);
          for (const b of t.parts) e.writeBuffer(b);
        }
        return e;
      },
    };
  };
}

/**
 * The patched record batch decoder (protocol/recordBatch/v0/decoder.js, which the fetch response
 * decoder calls for every record batch it receives): kafkajs' own for compressed batches; for
 * uncompressed ones the records are read straight from the batch's buffer, where kafkajs makes a
 * Decoder, a buffer slice and four 64-bit Long objects per record (parsing the batch's first offset
 * and timestamp from their strings each time), which made the Kafka source thread spend a third of
 * its time collecting garbage. The messages are the same (same fields, same order, same strings;
 * tested), and a record with headers, or offsets beyond 2^53, goes through kafkajs' record decoder.
 */
function makeRecordBatchDecoder(kafkajsRoot: string) {
  const req = createRequire(`${kafkajsRoot}/`);
  const Decoder = req("./src/protocol/decoder.js");
  const RecordDecoder = req("./src/protocol/recordBatch/record/v0/decoder.js");
  const { KafkaJSPartialMessageError } = req("./src/errors.js");
  const { lookupCodecByAttributes } = req("./src/protocol/message/compression/index.js");
  const TimestampTypes = req("./src/protocol/timestampTypes.js");
  const TIMESTAMP_TYPE_FLAG_MASK = 0x8;
  const TRANSACTIONAL_FLAG_MASK = 0x10;
  const CONTROL_FLAG_MASK = 0x20;

  /** zigzag varint (up to 2^53 for varlongs) at at: [value, offset after it] */
  const varNumber = (buf: Buffer, at: number): [number, number] => {
    let z = 0;
    let mul = 1;
    for (;;) {
      const b = buf[at++];
      z += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 128;
    }
    // zigzag: even -> z/2, odd -> -(z+1)/2
    return [z % 2 === 0 ? z / 2 : -(z + 1) / 2, at];
  };

  const decodeRecord = (decoder: any, recordContext: unknown) =>
    RecordDecoder(new Decoder(decoder.readVarIntBytes()), recordContext);

  const compressedRecords = async (codec: any, recordsDecoder: any, recordContext: unknown) => {
    const length = recordsDecoder.readInt32();
    if (length <= 0) return [];
    const decompressed = new Decoder(await codec.decompress(recordsDecoder.readAll()));
    const records = new Array(length);
    for (let i = 0; i < length; i++) records[i] = decodeRecord(decompressed, recordContext);
    return records;
  };

  const plainRecords = (decoder: any, ctx: any) => {
    const buf: Buffer = decoder.buffer;
    let at: number = decoder.offset;
    const count = buf.readInt32BE(at);
    at += 4;
    if (count === -1) return [];
    const firstOffset = Number(ctx.firstOffset);
    const firstTimestamp = Number(ctx.firstTimestamp);
    const appendTime = ctx.timestampType === TimestampTypes.LOG_APPEND_TIME && ctx.maxTimestamp;
    const records = new Array(count);
    for (let i = 0; i < count; i++) {
      const [len, start] = varNumber(buf, at);
      const end = start + len;
      let o = start;
      const attributes = buf.readInt8(o++);
      const [timestampDelta, o1] = varNumber(buf, o);
      const [offsetDelta, o2] = varNumber(buf, o1);
      const [keyLen, o3] = varNumber(buf, o2);
      const key = keyLen < 0 ? null : buf.slice(o3, o3 + keyLen);
      o = o3 + Math.max(keyLen, 0);
      const [valueLen, o4] = varNumber(buf, o);
      const value = valueLen < 0 ? null : buf.slice(o4, o4 + valueLen);
      o = o4 + Math.max(valueLen, 0);
      const offset = firstOffset + offsetDelta;
      const timestamp = firstTimestamp + timestampDelta;
      if (buf[o] !== 0 || !Number.isSafeInteger(offset) || !Number.isSafeInteger(timestamp)) {
        // headers, or numbers a double cannot hold exactly: kafkajs' own decoder
        records[i] = RecordDecoder(new Decoder(buf.slice(start, end)), ctx);
      } else {
        records[i] = {
          magicByte: ctx.magicByte,
          attributes,
          timestamp: appendTime ? ctx.maxTimestamp : String(timestamp),
          offset: String(offset),
          key,
          value,
          headers: {},
          isControlRecord: ctx.isControlBatch,
          batchContext: ctx,
        };
      }
      at = end;
    }
    decoder.offset = at;
    return records;
  };

  return async (fetchDecoder: any) => {
    const firstOffset = fetchDecoder.readInt64().toString();
    const length = fetchDecoder.readInt32();
    const decoder = fetchDecoder.slice(length);
    fetchDecoder.forward(length);
    const remainingBytes = Buffer.byteLength(decoder.buffer);
    if (remainingBytes < length) {
      throw new KafkaJSPartialMessageError(
        `Tried to decode a partial record batch: remainingBytes(${remainingBytes}) < recordBatchLength(${length})`,
      );
    }
    const partitionLeaderEpoch = decoder.readInt32();
    const magicByte = decoder.readInt8();
    decoder.readInt32(); // crc: kafkajs does not check it either
    const attributes = decoder.readInt16();
    const lastOffsetDelta = decoder.readInt32();
    const firstTimestamp = decoder.readInt64().toString();
    const maxTimestamp = decoder.readInt64().toString();
    const producerId = decoder.readInt64().toString();
    const producerEpoch = decoder.readInt16();
    const firstSequence = decoder.readInt32();
    const recordContext = {
      firstOffset,
      firstTimestamp,
      partitionLeaderEpoch,
      inTransaction: (attributes & TRANSACTIONAL_FLAG_MASK) > 0,
      isControlBatch: (attributes & CONTROL_FLAG_MASK) > 0,
      lastOffsetDelta,
      producerId,
      producerEpoch,
      firstSequence,
      maxTimestamp,
      timestampType:
        (attributes & TIMESTAMP_TYPE_FLAG_MASK) > 0 ? TimestampTypes.LOG_APPEND_TIME : TimestampTypes.CREATE_TIME,
    };
    const codec = lookupCodecByAttributes(attributes);
    const ctx = { ...recordContext, magicByte };
    const records = codec ? await compressedRecords(codec, decoder, ctx) : plainRecords(decoder, ctx);
    return { ...recordContext, records };
  };
}

/** A fetched message as kafkajs' consumer/batch.js hands it to filterAbortedMessages (7.). */
interface FetchedMessage {
  offset: string;
  key: Buffer | null;
  isControlRecord?: boolean;
  batchContext: {
    firstOffset: string;
    lastOffsetDelta: number;
    producerId: string;
    inTransaction: boolean;
    isControlBatch: boolean;
  };
}

/**
 * kafkajs' filterAbortedMessages with the Java consumer's algorithm (7.): the messages of one fetched
 * partition, in offset order, less those of the aborted transactions the fetch response listed (in any
 * order). Control records stay (kafkajs' batch.js drops them next).
 */
export function filterAbortedMessages({
  messages,
  abortedTransactions,
}: {
  messages: FetchedMessage[];
  abortedTransactions?: { producerId: string; firstOffset: string }[] | null;
}): FetchedMessage[] {
  if (!abortedTransactions || abortedTransactions.length === 0) return messages;
  // Ascending first offset; ties keep the broker's order (a producer has one open transaction at a time).
  const pending = abortedTransactions
    .map((t) => ({ producerId: String(t.producerId), firstOffset: BigInt(t.firstOffset) }))
    .sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : a.firstOffset > b.firstOffset ? 1 : 0));
  let next = 0;
  const aborted = new Set<string>();
  let batch: FetchedMessage["batchContext"] | null = null;
  let dropBatch = false;
  return messages.filter((m) => {
    const ctx = m.batchContext;
    if (ctx !== batch) {
      // A new record batch: the transactions begun at or before its last offset are entered first.
      batch = ctx;
      const lastOffset = BigInt(ctx.firstOffset) + BigInt(ctx.lastOffsetDelta);
      while (next < pending.length && pending[next].firstOffset <= lastOffset) aborted.add(pending[next++].producerId);
      const producerId = String(ctx.producerId);
      if (ctx.isControlBatch) {
        if (isAbortMarker(m)) aborted.delete(producerId);
        dropBatch = false;
      } else {
        dropBatch = ctx.inTransaction && aborted.has(producerId);
      }
    }
    return !dropBatch;
  });
}

/** A control record whose key says ABORT (key: int16 version, int16 type; type 0 is ABORT, 1 COMMIT). */
const isAbortMarker = (m: FetchedMessage): boolean => {
  const key = m.key == null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key);
  return key !== null && key.length >= 4 && key.readInt16BE(2) === 0;
};

/** kafkajs' transactional EOS managers (one per producer with a transactionalId), by transactionalId: see 5. */
const transactionManagers = new Map<string, { getProducerId(): string; getProducerEpoch(): number }>();

/**
 * The producer id and epoch of the transactional producer with this id (what its EndTxn carries): the
 * sink stores them with a checkpoint so that a restart can commit the transaction (5.). Null before
 * that producer's first transaction initialized it.
 */
export function transactionIdentity(transactionalId: string): { producerId: string; producerEpoch: number } | null {
  const m = transactionManagers.get(transactionalId);
  const producerId = m?.getProducerId();
  if (m === undefined || producerId === undefined || String(producerId) === "-1") return null;
  return { producerId: String(producerId), producerEpoch: m.getProducerEpoch() };
}

export interface PatchState {
  grouping: boolean;
  produce: boolean;
  murmur2: boolean;
  fetch: boolean;
  /** transactionIdentity() works (5.) */
  transactions: boolean;
  /** an idle request queue arms no timer (6.) */
  requestTimer: boolean;
  /** read_committed drops every aborted transaction, in whatever order the broker lists them (7.) */
  abortedFilter: boolean;
}
let state: PatchState | null = null;

/** The original kafkajs v3 produce request (for tests comparing bytes); set by installKafkajsPatches. */
export let originalProduceRequest: ((a: ProduceArgs) => any) | null = null;
/** kafkajs' murmur2 (for tests comparing hashes); set by installKafkajsPatches. */
export let originalMurmur2: ((key: Buffer | string) => number) | null = null;
/** kafkajs' record batch decoder and the patched one (for tests comparing decoded messages); set by installKafkajsPatches. */
export let originalRecordBatchDecoder: ((d: unknown) => Promise<unknown>) | null = null;
export let patchedRecordBatchDecoder: ((d: unknown) => Promise<unknown>) | null = null;
/** kafkajs' aborted-transaction filter (for tests comparing it with 7.); set by installKafkajsPatches. */
export let originalFilterAbortedMessages: ((a: unknown) => unknown[]) | null = null;
/** The patched one. */
export let patchedProduceRequest: ((a: ProduceArgs) => any) | null = null;

/**
 * Puts both fixes in place (idempotent). Says which of them kafkajs' producer
 * uses: not those whose user module (sendMessages.js, produce/index.js) was
 * already loaded with the original.
 */
export function installKafkajsPatches(): PatchState {
  if (state !== null) return state;
  let root: string;
  try {
    root = require.resolve("kafkajs/package.json").replace(/\/package\.json$/, "");
  } catch {
    return (state = {
      grouping: false,
      produce: false,
      murmur2: false,
      fetch: false,
      transactions: false,
      requestTimer: false,
      abortedFilter: false,
    });
  }
  const patch = (target: string, user: string, replace: (original: any) => any): boolean => {
    const targetPath = `${root}/${target}`;
    const userPath = `${root}/${user}`;
    try {
      require.resolve(targetPath);
    } catch {
      return false; // another kafkajs layout: nothing to patch
    }
    if (require.cache[userPath] !== undefined) return false; // too late: its user holds the original
    const original = require(targetPath);
    require.cache[targetPath]!.exports = replace(original);
    return true;
  };
  // 5. Not a speed fix and kept with WALLAROO_KAFKAJS_PATCHES=0: it changes nothing kafkajs does.
  const transactions = patch("src/producer/eosManager/index.js", "src/producer/index.js", (original) => {
    return (args: { transactional?: boolean; transactionalId?: string }) => {
      const manager = original(args);
      if (args.transactional && typeof args.transactionalId === "string")
        transactionManagers.set(args.transactionalId, manager);
      return manager;
    };
  });
  // 7. A correctness fix, kept with WALLAROO_KAFKAJS_PATCHES=0 (kafkajs' filter delivers aborted records). kafkajs'
  // consumer index loads consumerGroup.js, and so batch.js, on import: patched only when this runs first.
  const abortedFilter = patch("src/consumer/filterAbortedMessages.js", "src/consumer/batch.js", (original) => {
    originalFilterAbortedMessages = original;
    return filterAbortedMessages;
  });
  // WALLAROO_KAFKAJS_PATCHES=0 runs kafkajs as shipped (slow), to tell a kafkajs problem from one of these fixes.
  if (process.env.WALLAROO_KAFKAJS_PATCHES === "0")
    return (state = {
      grouping: false,
      produce: false,
      murmur2: false,
      fetch: false,
      transactions,
      requestTimer: false,
      abortedFilter,
    });
  MetadataNotLoaded = require(`${root}/src/errors.js`).KafkaJSMetadataNotLoaded ?? Error;
  const grouping = patch(
    "src/producer/groupMessagesPerPartition.js",
    "src/producer/sendMessages.js",
    () => groupMessagesPerPartition,
  );
  const produce = patch(
    "src/protocol/requests/produce/v3/request.js",
    "src/protocol/requests/produce/v4/request.js",
    (original) => {
      originalProduceRequest = original;
      patchedProduceRequest = makeProduceRequest(original, root);
      return patchedProduceRequest;
    },
  );
  // kafkajs' index loads the partitioners (and so murmur2.js) on import: patched only when this runs first.
  const hash = patch(
    "src/producer/partitioners/default/murmur2.js",
    "src/producer/partitioners/default/index.js",
    (original) => {
      originalMurmur2 = original;
      return murmur2;
    },
  );
  const fetch = patch(
    "src/protocol/recordBatch/v0/decoder.js",
    "src/protocol/requests/fetch/v4/decodeMessages.js",
    (original) => {
      originalRecordBatchDecoder = original;
      return (patchedRecordBatchDecoder = makeRecordBatchDecoder(root));
    },
  );
  const requestTimer = idleRequestQueueWithoutTimer(root);
  return (state = { grouping, produce, murmur2: hash, fetch, transactions, requestTimer, abortedFilter });
}

/** kafkajs' request queue arms its check timer only while requests are pending (6.). */
function idleRequestQueueWithoutTimer(root: string): boolean {
  let RequestQueue: any;
  try {
    RequestQueue = require(`${root}/src/network/requestQueue/index.js`);
  } catch {
    return false; // another kafkajs layout: nothing to patch
  }
  const proto = RequestQueue?.prototype;
  if (typeof proto?.scheduleCheckPendingRequests !== "function") return false;
  // kafkajs' CHECK_PENDING_REQUESTS_INTERVAL (not exported): the check's period while requests wait
  const CHECK_INTERVAL_MS = 10;
  proto.scheduleCheckPendingRequests = function (this: any): void {
    if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
    const throttled = this.throttledUntil - Date.now();
    this.throttleCheckTimeoutId = setTimeout(
      () => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      },
      throttled > 0 ? throttled : CHECK_INTERVAL_MS,
    );
  };
  return true;
}

/**
 * For bench/kafka-clients.bench.mjs, which compares kafkajs as shipped and patched in one
 * process: after the caller removed kafkajs' modules from the CommonJS cache, patches the
 * next kafkajs load again.
 */
export function reinstallKafkajsPatches(): PatchState {
  state = null;
  return installKafkajsPatches();
}

installKafkajsPatches();
