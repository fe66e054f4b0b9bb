/**
 * Kafka sink, run in its own I/O thread. The workers do the per-record work
 * (record-frame.ts): each record arrives as the tail of a Kafka v2 record plus
 * its key's murmur2 hash. This thread places each one in its partition
 * (`hash % partitions`, the Java client's choice, so a key always lands in the
 * same partition; keyless records round robin), completing it into a record of
 * that partition's batch (a few varint bytes and a copy), and hands kafkajs one
 * pseudo-message of ready records per partition (kafkajs-patches.ts writes them
 * into the produce request as they are). Produced with acks = -1 (all in-sync
 * replicas). The partition count comes from the brokers' metadata at connect and
 * every METADATA_REFRESH_MS, and after a failed send.
 *
 * - Linger: with maxProduceBufferMs > 0 a batch is gathered for up to that long
 *   (or until it is full) before it is sent; with 0 it is sent as soon as the
 *   previous one is acknowledged, which batches naturally under load.
 * - Bounded memory: one batch in flight plus one being gathered, each at most
 *   PARTITION_BYTES per partition and TOTAL_BYTES in all, their buffers reused;
 *   while the gathering batch is full the sink stops reading its rings, which
 *   backs the workers up (as a slow TCP receiver does). Before the partition count
 *   is known nothing is read.
 * - Never loses what it accepted: a batch that fails is kept and sent again
 *   (kafkajs retries first, then this loop with a capped backoff) until it is
 *   acknowledged, so a broker restart costs duplicates at most. Order per
 *   partition (so per key) is kept because batches go one at a time.
 * - A record whose key + value is over maxMessageSize is dropped, counted and
 *   logged (rate-limited); one the broker rejects as too large is dropped too
 *   (the batch is split into plain messages to find it).
 * - With resilience (transactionalId): records go into a Kafka transaction that
 *   the coordinator commits at each checkpoint, in two phases: "prepare" (every send
 *   of it acknowledged; its id, producer id and epoch go into the checkpoint), then
 *   "commit" (EndTxn) once the checkpoint is written. A restart first commits the
 *   transaction the restored checkpoint names (transactions.ts). Two producers with
 *   transactional ids BASE.0 and BASE.1 take turns, one transaction each: a stored
 *   identity (id, producer id, epoch) must name one transaction only, and a producer's
 *   next transaction has the same producer id and epoch as its last, so the broker
 *   would commit that one instead (tested against the broker, see transactions.ts).
 *   A send that fails in a transaction stops the engine instead of being retried
 *   (see deliverInTransaction).
 */
import type { MessagePort } from "node:worker_threads";
// Must come before "kafkajs": see kafkajs-patches.ts.
import { encodedRecordsMessage, installKafkajsPatches, transactionIdentity } from "./kafkajs-patches.js";
import { Partitioners, type Admin, type Message, type Producer, type Transaction } from "kafkajs";
import type { KafkaLogLevel } from "../../api/configs.js";
import { ChannelReader } from "../../transport/channel.js";
import { RingReader } from "../../transport/ring.js";
import { Doorbell } from "../../transport/doorbell.js";
import { StatusWord } from "../../transport/wiring.js";
import { createLogger, RateLimitedErrors } from "../../core/log.js";
import {
  backoffMs,
  brokerList,
  createClient,
  describeError,
  errorReason,
  protocolErrorType,
  sleep,
  waitForBrokers,
  type ClientOptions,
} from "./client.js";
import type { KafkaSecuritySpec } from "./security.js";
import type { FromIo, ToIo } from "../../control/protocol.js";
import {
  decodeTail,
  ENTRY_HEADER,
  GATHER_BYTES,
  murmur2,
  NO_KEY,
  PartitionRecords,
  readF64LE,
  tailKeyValueBytes,
  TS_BYTES,
  TS_FLAG,
} from "./record-frame.js";
import { readU32LE } from "../../core/bytes.js";
import type { PendingTransaction } from "../../recovery/store.js";
import { endStoredTransaction } from "./transactions.js";

export interface KafkaSinkInit {
  kind: "kafka-sink";
  sinkId: number;
  label: string;
  topic: string;
  brokers: [string, number][];
  logLevel: KafkaLogLevel;
  /** TLS / SASL (security.ts): where the secrets are, read when connecting */
  security: KafkaSecuritySpec;
  maxProduceBufferMs: number;
  maxMessageSize: number;
  /** one ring per worker */
  rings: SharedArrayBuffer[];
  bell: SharedArrayBuffer;
  status: SharedArrayBuffer;
  statusSlot: number;
  /**
   * Resilience: produce inside Kafka transactions with this id (idempotent, one
   * request in flight), committed at each checkpoint ("commit" control message),
   * so that read_committed consumers see only outputs of checkpointed input.
   */
  transactionalId?: string;
  /** resilience: the transaction(s) the restored checkpoint decided to commit, committed before producing */
  pendingTransactions?: PendingTransaction[];
}

/**
 * Bounds of one batch. The sink writes each partition's records into one record batch, which the
 * broker refuses above message.max.bytes (1 MiB by default): a partition's records stop at
 * PARTITION_BYTES, less one worker frame (GATHER_BYTES) since a frame is taken whole. A produce
 * request carries every partition's batch; TOTAL_BYTES bounds the sink's memory (two batches: one
 * in flight, one being gathered).
 */
const PARTITION_BYTES = 900 * 1024 - GATHER_BYTES;
const TOTAL_BYTES = 4 * 1024 * 1024;
/** protocol errors that condemn the records, not the connection: split the batch, drop the culprit */
const RECORD_ERRORS = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE"]);
/**
 * How often the sink asks for the topic's partition count (keys follow it, as in the Java client):
 * 30 s, or WALLAROO_KAFKA_METADATA_REFRESH_MS (tests use a short one).
 */
const METADATA_REFRESH_MS = Number(process.env.WALLAROO_KAFKA_METADATA_REFRESH_MS) || 30_000;

class Batch {
  parts: PartitionRecords[] = [];
  records = 0;
  bytes = 0;
  /** largest part, in bytes */
  biggest = 0;
  /** when its first record was taken (for the linger) */
  startedAt = 0;

  /** Empties the batch for `partitions` partitions, keeping its buffers. */
  reset(partitions: number): void {
    while (this.parts.length < partitions) this.parts.push(new PartitionRecords());
    this.parts.length = partitions;
    for (const p of this.parts) p.clear();
    this.records = 0;
    this.bytes = 0;
    this.biggest = 0;
  }

  get full(): boolean {
    return this.biggest >= PARTITION_BYTES || this.bytes >= TOTAL_BYTES;
  }
}

export function runKafkaSink(init: KafkaSinkInit, control: MessagePort): void {
  const log = createLogger("wallaroo.sink.kafka", { sink: init.label, topic: init.topic });
  const errors = new RateLimitedErrors(log, 5000);
  const patched = installKafkajsPatches();
  /** records go to kafkajs already encoded (see kafkajs-patches.ts); without the patches, as plain messages */
  const encodedSends = patched.grouping && patched.produce;
  if (!patched.grouping || !patched.produce || !patched.murmur2) {
    log.warn(
      { patched },
      process.env.WALLAROO_KAFKAJS_PATCHES === "0"
        ? "WALLAROO_KAFKAJS_PATCHES=0: kafkajs' producer runs as shipped; producing will be slow"
        : "kafkajs' producer was loaded before wallaroo's fixes to it (src/connectors/kafka/kafkajs-patches.ts); producing will be slow",
    );
  }
  const status = new StatusWord(init.status, init.statusSlot);
  const bell = new Doorbell(init.bell);
  const client: ClientOptions = {
    clientId: `wallaroo-sink-${init.sinkId}`,
    brokers: init.brokers,
    logLevel: init.logLevel,
    log,
    security: init.security,
  };
  const brokers = brokerList(init.brokers).join(",");
  const linger = init.maxProduceBufferMs;
  const transactional = init.transactionalId !== undefined;
  /** the transactional producers' ids: they take turns, one transaction each (see the header) */
  const txnIds = transactional ? [`${init.transactionalId}.0`, `${init.transactionalId}.1`] : [];
  /** transactional: both producers; `producer` is producers[slot], the one the next transaction uses */
  const producers: (Producer | null)[] = [null, null];
  let slot = 0;
  /** the open transaction (transactional only); begun by the first send after a prepare */
  let txn: Transaction | null = null;
  let txnRecords = 0;
  /** the transaction of the checkpoint being written: acknowledged, not yet committed */
  let prepared: { txn: Transaction; records: number } | null = null;
  /** the restored checkpoint's transactions are committed (or known gone): producers may register */
  let recovered = (init.pendingTransactions ?? []).length === 0;
  /** the producer whose transaction the restart committed: not registered again before it is used (see connect) */
  let recoveredSlot = -1;
  let fatal = false;
  const maxSize = init.maxMessageSize;

  let closing = false;
  let producer: Producer | null = null;
  let admin: Admin | null = null;
  /** the topic's partition count, 0 until known: records are taken from the rings only once it is */
  let partitions = 0;
  /** round robin over the partitions for records without a key */
  let spread = 0;
  let gathering = new Batch();
  /** the batch being sent (one at a time: see deliver), and the spare one it becomes once acknowledged */
  let inFlight: Batch | null = null;
  let spare = new Batch();
  let delivered = 0;
  let dropped = 0;
  /**
   * ms spent with the gathering batch full while the previous one was still unacknowledged: what a
   * second request in flight could have saved (logged at close; see bench/ANALYSIS.md, "Kafka")
   */
  let fullWaitMs = 0;
  let sends = 0;
  let wake: (() => void) | null = null;
  const wakeUp = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const nap = (ms: number) =>
    new Promise<void>((r) => {
      wake = r;
      setTimeout(r, ms);
    });

  const tooBig = (bytes: Uint8Array, tailAt: number) => {
    const size = tailKeyValueBytes(bytes, tailAt);
    if (size <= maxSize) return false;
    dropped++;
    errors.report(
      `sink ${init.label}`,
      new Error(`a ${size}-byte record (key + value) is over maxMessageSize ${maxSize}; dropped (${dropped} so far)`),
    );
    return true;
  };

  /**
   * A worker's frame of records (record-frame.ts): each goes to its partition's records in the
   * gathering batch, `hash % partitions` (the Java client's choice for a keyed record), keyless ones
   * round robin. Per record this is a remainder, a few varint bytes and a copy of the tail.
   */
  const onMessage = (_tag: number, bytes: Uint8Array, off: number, len: number) => {
    const batch = gathering;
    const parts = batch.parts;
    const n = partitions;
    const end = off + len;
    if (batch.records === 0) batch.startedAt = performance.now();
    while (off < end) {
      const hash = readU32LE(bytes, off);
      let tailLen = readU32LE(bytes, off + 4);
      let tailAt = off + ENTRY_HEADER;
      let timestamp = Number.NaN;
      if (tailLen >= TS_FLAG) {
        // The encoder set the record's timestamp (record-frame.ts).
        tailLen -= TS_FLAG;
        timestamp = readF64LE(bytes, tailAt);
        tailAt += TS_BYTES;
      }
      off = tailAt + tailLen;
      // A tail holds key and value plus at least 3 bytes (two lengths and the header count).
      if (tailLen - 3 > maxSize && tooBig(bytes, tailAt)) continue;
      let p: number;
      if (hash === NO_KEY) {
        p = spread;
        spread = spread + 1 === n ? 0 : spread + 1;
      } else {
        p = hash % n;
      }
      const part = parts[p];
      batch.bytes += part.append(bytes, tailAt, tailLen, timestamp);
      if (part.len > batch.biggest) batch.biggest = part.len;
      batch.records++;
    }
  };
  const readers = init.rings.map((sab) => new ChannelReader(new RingReader(sab), onMessage));
  const ringsEmpty = () => !readers.some((r) => r.hasData());

  /** The topic's partition count (admin metadata; the admin client never creates topics). */
  const fetchPartitions = async (a: Admin): Promise<number> => {
    const md = await a.fetchTopicMetadata({ topics: [init.topic] });
    return md.topics.find((t) => t.name === init.topic)?.partitions.length ?? 0;
  };
  const setPartitions = (n: number) => {
    if (n <= 0 || n === partitions) return;
    if (partitions !== 0) log.info(`topic ${JSON.stringify(init.topic)} has ${n} partitions now (was ${partitions})`);
    partitions = n;
    spread = spread % n;
    // Records already gathered stay where they were put (a partition that still exists, or
    // re-partitioned by repartition() if it does not); new ones follow the new count.
    if (gathering.records === 0) gathering.reset(n);
    else repartition(gathering, n);
  };
  /** Moves `batch`'s records to the partitions they have with `n` partitions (keyed: murmur2 of the key). */
  const repartition = (batch: Batch, n: number) => {
    const old = batch;
    const fresh = new Batch();
    fresh.reset(n);
    fresh.startedAt = old.startedAt;
    for (const part of old.parts)
      part.forEachTail((bytes, tailAt, tailLen, timestamp) => {
        const { key } = decodeTail(bytes, tailAt);
        let p: number;
        if (key === null) {
          p = spread;
          spread = (spread + 1) % n;
        } else p = (murmur2(key) & 0x7fffffff) % n;
        fresh.bytes += fresh.parts[p].append(bytes, tailAt, tailLen, timestamp);
        fresh.biggest = Math.max(fresh.biggest, fresh.parts[p].len);
        fresh.records++;
      });
    if (batch === gathering) gathering = fresh;
    return fresh;
  };

  /**
   * Restart: commits the transactions the restored checkpoint decided to commit, with the
   * identity it recorded, before any producer registers an id (which would abort them). An
   * answer that is not final throws (connect retries); one saying the transaction is gone
   * is an error in the log: its records are lost for read_committed consumers.
   */
  const recover = async (kafka: ReturnType<typeof createClient>) => {
    for (const t of init.pendingTransactions ?? []) {
      const r = await endStoredTransaction(kafka, t);
      // Its id is registered again only when the turn comes back to it (after a checkpoint that names the
      // other one): registering bumps the epoch, and a second restart before then must still find this
      // transaction by the stored epoch (a commit of a committed transaction answers NONE again).
      recoveredSlot = txnIds.indexOf(t.transactionalId);
      if (typeof r === "string") {
        log.info(
          { transactionalId: t.transactionalId, records: t.records },
          `the transaction of the restored checkpoint (${t.records} records, ${t.transactionalId}) is committed`,
        );
      } else {
        log.error(
          { transactionalId: t.transactionalId, records: t.records, answer: r.gone },
          `${t.records} records of the restored checkpoint are LOST for read_committed consumers: their transaction ` +
            `(${t.transactionalId}, producer ${t.producerId} epoch ${t.producerEpoch}) could not be committed (${r.gone}): ` +
            "it was aborted, because it outlived the broker's transaction timeout before this restart, or because another producer registered the id",
        );
      }
    }
    recovered = true;
  };

  const connect = async (): Promise<void> => {
    if (transactional && !patched.transactions) {
      // Without the producer id and epoch a checkpoint cannot name its transaction (kafkajs-patches.ts, 5.).
      fatalError("kafkajs was loaded before wallaroo's patches: the producer ids of its transactions are unknown");
      return;
    }
    for (let attempt = 0; !closing; attempt++) {
      if (!(await waitForBrokers(client, () => closing, init.topic))) return;
      const kafka = createClient(client);
      const options = {
        createPartitioner: Partitioners.DefaultPartitioner,
        // A missing topic is an error the sink reports and retries (see deliver), never created by a send.
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
      };
      const ps = transactional
        ? txnIds.map((transactionalId) =>
            kafka.producer({ ...options, transactionalId, idempotent: true, maxInFlightRequests: 1 }),
          )
        : [kafka.producer(options)];
      const a = kafka.admin();
      try {
        if (!recovered) await recover(kafka);
        await a.connect();
        const n = await fetchPartitions(a);
        if (n === 0) throw new Error(`no partitions of ${JSON.stringify(init.topic)} in the brokers' metadata`);
        for (let i = 0; i < ps.length; i++) {
          await ps[i].connect();
          // Registers the transactional id now (not at the first send): this fences a killed predecessor
          // and aborts its open transaction, which would otherwise hold back read_committed consumers
          // until the broker's transaction timeout. Not the one just committed by recover() (see there):
          // it has no open transaction.
          if (transactional && i !== recoveredSlot) await (await ps[i].transaction()).abort();
        }
        setPartitions(n);
        if (transactional) {
          producers[0] = ps[0];
          producers[1] = ps[1];
          slot = recoveredSlot === 0 ? 1 : 0;
        }
        producer = transactional ? producers[slot] : ps[0];
        admin = a;
        log.info(`producing to Kafka topic ${JSON.stringify(init.topic)} (${n} partitions)`);
        wakeUp();
        return;
      } catch (err) {
        for (const p of ps) await p.disconnect().catch(() => {});
        await a.disconnect().catch(() => {});
        const wait = backoffMs(attempt);
        const why = describeError(err, init.topic, brokers);
        log.warn({ err: errorReason(err) }, `cannot start the Kafka producer: ${why}; retrying in ${wait} ms`);
        await sleep(wait);
      }
    }
  };
  /** The partition count may grow while the engine runs: keyed records follow it, as the Java client's do. */
  const refreshTimer = setInterval(() => {
    if (admin === null || closing) return;
    fetchPartitions(admin).then(setPartitions, (err) =>
      log.debug({ err: errorReason(err) }, `could not refresh the partition count: ${errorReason(err)}`),
    );
  }, METADATA_REFRESH_MS);
  refreshTimer.unref();

  /** kafkajs messages of a batch: one pseudo-message of encoded records per partition, or plain ones. */
  const messagesOf = (batch: Batch): Message[] => {
    const out: Message[] = [];
    for (let p = 0; p < batch.parts.length; p++) {
      const part = batch.parts[p];
      if (part.count === 0) continue;
      if (encodedSends) {
        out.push(
          encodedRecordsMessage({
            partition: p,
            records: part.buf.subarray(0, part.len),
            count: part.count,
            // NaN while no record has a timestamp of its own: the batch takes the time it is sent
            firstTimestamp: part.base,
            maxTimestamp: part.max,
          }) as Message,
        );
      } else {
        part.forEachTail((bytes, tailAt, _len, timestamp) => {
          const { key, value, headers } = decodeTail(bytes, tailAt);
          const ts = Number.isNaN(timestamp) ? {} : { timestamp: String(timestamp) };
          out.push({ partition: p, key, value, ...(headers ? { headers } : {}), ...ts } as Message);
        });
      }
    }
    return out;
  };
  /** The batch as plain messages (copies), to split it when the broker rejects records of it. */
  const plainMessagesOf = (batch: Batch): Message[] => {
    const out: Message[] = [];
    batch.parts.forEach((part, p) =>
      part.forEachTail((bytes, tailAt, _len, timestamp) => {
        const { key, value, headers } = decodeTail(bytes, tailAt);
        const copy = (v: Buffer | null) => v && Buffer.from(v);
        const copied =
          headers &&
          Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.map(copy) : copy(v)]));
        out.push({
          partition: p,
          key: key && Buffer.from(key),
          value: Buffer.from(value),
          ...(copied ? { headers: copied } : {}),
          ...(Number.isNaN(timestamp) ? {} : { timestamp: String(timestamp) }),
        } as Message);
      }),
    );
    return out;
  };

  /**
   * Sends the batch until the broker acknowledges it (or rejects records as such, which are dropped).
   * One batch at a time, each carrying every partition's records: a failed batch is sent again before
   * anything after it, so records keep their order within each partition (and the transactional,
   * idempotent producer's sequence numbers stay gapless).
   */
  const deliver = async (batch: Batch): Promise<void> => {
    if (transactional) return deliverInTransaction(batch);
    for (let attempt = 0; ; attempt++) {
      // After a failure the topic may have fewer partitions (deleted and re-created): place records again.
      if (attempt > 0 && partitions > 0 && partitions < batch.parts.length) batch = repartition(batch, partitions);
      try {
        await producer!.send({ topic: init.topic, acks: -1, timeout: 30_000, messages: messagesOf(batch) });
        delivered += batch.records;
        if (attempt > 0) log.info(`delivered ${batch.records} records after ${attempt} failed attempt(s)`);
        return;
      } catch (err) {
        const type = protocolErrorType(err);
        if (type !== null && RECORD_ERRORS.has(type)) {
          await deliverPlain(plainMessagesOf(batch));
          return;
        }
        if (closing && attempt > 0) throw err;
        const wait = backoffMs(attempt + 2);
        log.warn(
          { err: errorReason(err), records: batch.records, attempt },
          `cannot deliver ${batch.records} records to ${JSON.stringify(init.topic)}: ${describeError(err, init.topic, brokers)}; retrying in ${wait} ms`,
        );
        if (admin !== null) await fetchPartitions(admin).then(setPartitions, () => {});
        await sleep(wait);
      }
    }
  };

  /** Plain messages (explicit partitions) until acknowledged; finds records the broker rejects by halves and drops them. */
  const deliverPlain = async (messages: Message[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await producer!.send({ topic: init.topic, acks: -1, timeout: 30_000, messages });
        delivered += messages.length;
        return;
      } catch (err) {
        const type = protocolErrorType(err);
        if (type !== null && RECORD_ERRORS.has(type)) {
          if (messages.length === 1) {
            dropped++;
            errors.report(
              `sink ${init.label}`,
              new Error(`the broker rejected a record (${type}); dropped (${dropped} so far)`),
            );
            return;
          }
          // Find the culprit(s) by halves; the others go through.
          const half = messages.length >>> 1;
          await deliverPlain(messages.slice(0, half));
          await deliverPlain(messages.slice(half));
          return;
        }
        if (closing && attempt > 0) throw err;
        const wait = backoffMs(attempt + 2);
        log.warn(
          { err: errorReason(err), records: messages.length, attempt },
          `cannot deliver ${messages.length} records to ${JSON.stringify(init.topic)}: ${describeError(err, init.topic, brokers)}; retrying in ${wait} ms`,
        );
        await sleep(wait);
      }
    }
  };

  /**
   * Transactional: kafkajs retries what can be retried; a send that still fails leaves the
   * transaction unusable, and re-sending its earlier records would need them all in memory,
   * so the engine stops: a restart resumes from the last checkpoint (the open transaction is
   * aborted when the next producer with this id starts).
   */
  const deliverInTransaction = async (batch: Batch): Promise<void> => {
    try {
      if (txn === null) txn = await producer!.transaction();
      await txn.send({ topic: init.topic, acks: -1, timeout: 30_000, messages: messagesOf(batch) });
      delivered += batch.records;
      txnRecords += batch.records;
    } catch (err) {
      fatalError(
        `Kafka transaction failed while sending ${batch.records} records (${describeError(err, init.topic, brokers)})`,
      );
      throw err;
    }
  };

  const fatalError = (message: string) => {
    if (fatal) return;
    fatal = true;
    control.postMessage({
      type: "fatal",
      where: `Kafka sink ${init.label}`,
      message: `${message}; stopping so that a restart resumes from the last checkpoint`,
    } satisfies FromIo);
  };

  /**
   * A checkpoint's cut, first phase: everything before it is in the open transaction; once every
   * send of it is acknowledged, answer its identity (which the checkpoint records) and turn to the
   * other producer, so that nothing after the cut joins it.
   */
  const prepareTransaction = async (id: number) => {
    try {
      while (inFlight !== null || gathering.records > 0) await sleep(2);
      if (fatal) throw new Error("a send of the transaction failed");
      let pending: PendingTransaction | null = null;
      if (txn !== null) {
        const transactionalId = txnIds[slot];
        const who = transactionIdentity(transactionalId);
        if (who === null) throw new Error(`the producer id of ${transactionalId} is unknown`);
        pending = { sink: init.sinkId, transactionalId, ...who, records: txnRecords };
        prepared = { txn, records: txnRecords };
        txn = null;
        txnRecords = 0;
        slot = 1 - slot;
        producer = producers[slot];
      }
      control.postMessage({ type: "prepared", id, pending } satisfies FromIo);
    } catch (err) {
      control.postMessage({
        type: "prepared",
        id,
        error: `Kafka sink ${init.label}: the transaction could not be flushed (${errorReason(err)})`,
      } satisfies FromIo);
    }
  };

  /** Second phase: the checkpoint naming the prepared transaction is written; commit it. */
  const commitTransaction = async (id: number) => {
    const p = prepared;
    prepared = null;
    try {
      if (p !== null) await p.txn.commit();
      control.postMessage({ type: "committed", id, records: p?.records ?? 0 } satisfies FromIo);
    } catch (err) {
      control.postMessage({
        type: "committed",
        id,
        error: `Kafka sink ${init.label}: committing the transaction failed (${errorReason(err)}); a restart commits it`,
      } satisfies FromIo);
    }
  };

  const startSend = () => {
    const batch = gathering;
    gathering = spare;
    gathering.reset(partitions);
    inFlight = batch;
    sends++;
    deliver(batch).then(
      () => {
        inFlight = null;
        spare = batch;
        wakeUp();
      },
      (err) => {
        inFlight = null;
        spare = new Batch();
        log.error(
          { err: errorReason(err), records: batch.records },
          `closing: ${batch.records} records not delivered (${errorReason(err)})`,
        );
        wakeUp();
      },
    );
  };

  void connect();
  const loop = async () => {
    for (;;) {
      if (closing) return;
      let n = 0;
      // Records are taken only once the partition count is known (they are placed as they are
      // read); until then they wait in the rings, which backs the workers up.
      if (partitions > 0)
        for (let i = 0; i < readers.length; i++) {
          // One frame at a time: a frame may hold up to GATHER_BYTES of records.
          while (!gathering.full && readers[i].read(1) > 0) n++;
        }
      const pending = gathering.records;
      if (producer !== null && inFlight === null && pending > 0) {
        const age = performance.now() - gathering.startedAt;
        if (linger === 0 || gathering.full || age >= linger) startSend();
        else if (n === 0) {
          // Lingering and nothing new: wait for more records or the end of the linger.
          status.setIdle(false);
          await bell.sleep(ringsEmpty, Math.max(1, Math.ceil(linger - age)));
          continue;
        }
      }
      if (n > 0 && !gathering.full) {
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      if (inFlight !== null || pending > 0 || (partitions === 0 && !ringsEmpty())) {
        // Waiting for an acknowledgement, the producer or room: not idle, records are still on their way.
        status.setIdle(false);
        const t0 = performance.now();
        const fullWait = gathering.full && inFlight !== null;
        await nap(gathering.full || producer === null ? 200 : 5);
        if (fullWait) fullWaitMs += performance.now() - t0;
        continue;
      }
      await status.sleepIdle(bell, ringsEmpty);
    }
  };
  void loop();

  control.on("message", (msg: ToIo) => {
    if (msg.type === "prepare") {
      void prepareTransaction(msg.id);
      return;
    }
    if (msg.type === "commit") {
      void commitTransaction(msg.id);
      return;
    }
    if (msg.type !== "close" || closing) return;
    // The coordinator closes the sink once everything was acknowledged (idle); a batch still out is
    // given a few seconds, what is left is reported.
    void (async () => {
      const deadline = Date.now() + 4000;
      while (inFlight !== null && Date.now() < deadline) await sleep(20);
      closing = true;
      clearInterval(refreshTimer);
      wakeUp();
      const undelivered = (inFlight?.records ?? 0) + gathering.records;
      if (txn !== null) {
        // Outputs after the last checkpoint: a restart produces them again.
        log.warn(
          { records: txnRecords },
          `aborting the open transaction (${txnRecords} records after the last checkpoint)`,
        );
        await txn.abort().catch(() => {});
      }
      if (prepared !== null) {
        // Prepared but never committed: the checkpoint that would have named it was not written.
        log.warn({ records: prepared.records }, `aborting the transaction of a checkpoint that was not written`);
        await prepared.txn.abort().catch(() => {});
      }
      if (transactional) for (const p of producers) await p?.disconnect().catch(() => {});
      else await producer?.disconnect().catch(() => {});
      await admin?.disconnect().catch(() => {});
      log.info(
        { delivered, dropped, undelivered, sends, fullWaitMs: Math.round(fullWaitMs) },
        `closed after delivering ${delivered} records${dropped ? `, ${dropped} dropped` : ""}${undelivered ? `, ${undelivered} NOT delivered` : ""}`,
      );
      control.postMessage({ type: "closed", delivered, dropped, undelivered } satisfies FromIo);
    })();
  });
}
