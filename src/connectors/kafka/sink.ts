/**
 * Kafka sink, run in its own I/O thread: reads the records the workers encoded
 * (frames `[u32 LE key length, 0xFFFFFFFF = no key][key][value]`, see the
 * executor's writeKafkaRecord), gathers them across all rings into batches and
 * produces them with acks = -1 (all in-sync replicas). kafkajs' DefaultPartitioner
 * picks the partition from the key with murmur2, as the Java client does, so a
 * key always lands in the same partition; records without a key are spread.
 *
 * - Linger: with maxProduceBufferMs > 0 a batch is gathered for up to that long
 *   (or until it is full) before it is sent; with 0 it is sent as soon as the
 *   previous one is acknowledged, which batches naturally under load.
 * - Bounded memory: one batch in flight plus one being gathered, each at most
 *   BATCH_BYTES / BATCH_MESSAGES; while the gathering batch is full the sink stops
 *   reading its rings, which backs the workers up (as a slow TCP receiver does).
 * - Never loses what it accepted: a batch that fails is kept and sent again
 *   (kafkajs retries first, then this loop with a capped backoff) until it is
 *   acknowledged, so a broker restart costs duplicates at most. Order per key is
 *   kept because batches go one at a time.
 * - A record whose key + value is over maxMessageSize is dropped, counted and
 *   logged (rate-limited); one the broker rejects as too large is dropped too.
 * - With resilience (transactionalId): records go into a Kafka transaction that
 *   the coordinator commits at each checkpoint ("commit"); a send that fails in a
 *   transaction stops the engine instead of being retried (see deliverInTransaction).
 */
import type { MessagePort } from "node:worker_threads";
// Must come before "kafkajs": see kafkajs-patches.ts.
import { installKafkajsPatches } from "./kafkajs-patches.js";
import { Partitioners, type Message, type Producer, type Transaction } from "kafkajs";
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
import type { FromIo, ToIo } from "../../control/protocol.js";

export interface KafkaSinkInit {
  kind: "kafka-sink";
  sinkId: number;
  label: string;
  topic: string;
  brokers: [string, number][];
  logLevel: KafkaLogLevel;
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
}

/**
 * Size bound of one batch. kafkajs puts all records of a partition in one record
 * batch, which the broker refuses above message.max.bytes (1 MiB by default), so
 * a batch stays under that whatever the key distribution.
 */
const BATCH_BYTES = 900 * 1024;
const BATCH_MESSAGES = 50_000;
/** per-record overhead counted against BATCH_BYTES (record header, varints) */
const RECORD_OVERHEAD = 24;
const READ_FRAMES = 4096;
const NO_KEY = 0xffffffff;
/** protocol errors that condemn the records, not the connection: split the batch, drop the culprit */
const RECORD_ERRORS = new Set(["MESSAGE_TOO_LARGE", "RECORD_LIST_TOO_LARGE", "INVALID_RECORD", "CORRUPT_MESSAGE"]);

interface Batch {
  messages: Message[];
  bytes: number;
  /** when its first record was taken (for the linger) */
  startedAt: number;
}

const newBatch = (): Batch => ({ messages: [], bytes: 0, startedAt: 0 });

export function runKafkaSink(init: KafkaSinkInit, control: MessagePort): void {
  const log = createLogger("wallaroo.sink.kafka", { sink: init.label, topic: init.topic });
  const errors = new RateLimitedErrors(log, 5000);
  const patched = installKafkajsPatches();
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
  };
  const brokers = brokerList(init.brokers).join(",");
  const linger = init.maxProduceBufferMs;
  const transactional = init.transactionalId !== undefined;
  /** the open transaction (transactional only); begun by the first send after a commit */
  let txn: Transaction | null = null;
  let txnRecords = 0;
  let fatal = false;
  const maxSize = init.maxMessageSize;

  let closing = false;
  let producer: Producer | null = null;
  let gathering = newBatch();
  let inFlight: Batch | null = null;
  let delivered = 0;
  let dropped = 0;
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

  const onMessage = (_tag: number, bytes: Uint8Array, off: number, len: number) => {
    const b = Buffer.from(bytes.buffer, bytes.byteOffset + off, len);
    const keyLen = b.readUInt32LE(0);
    const hasKey = keyLen !== NO_KEY;
    const valueStart = 4 + (hasKey ? keyLen : 0);
    const size = len - 4;
    if (size > maxSize) {
      dropped++;
      errors.report(
        `sink ${init.label}`,
        new Error(`a ${size}-byte record (key + value) is over maxMessageSize ${maxSize}; dropped (${dropped} so far)`),
      );
      return;
    }
    // Copies: the ring's bytes are reused as soon as this returns.
    const key = hasKey ? Buffer.from(b.subarray(4, valueStart)) : null;
    const value = Buffer.from(b.subarray(valueStart));
    if (gathering.messages.length === 0) gathering.startedAt = performance.now();
    gathering.messages.push({ key, value });
    gathering.bytes += size + RECORD_OVERHEAD;
  };
  const readers = init.rings.map((sab) => new ChannelReader(new RingReader(sab), onMessage));
  const ringsEmpty = () => !readers.some((r) => r.hasData());
  const full = () => gathering.bytes >= BATCH_BYTES || gathering.messages.length >= BATCH_MESSAGES;

  const connect = async (): Promise<void> => {
    for (let attempt = 0; !closing; attempt++) {
      if (!(await waitForBrokers(client, () => closing, init.topic))) return;
      const p = createClient(client).producer({
        createPartitioner: Partitioners.DefaultPartitioner,
        // A missing topic is an error the sink reports and retries (see deliver), never created by a send.
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
        ...(transactional ? { transactionalId: init.transactionalId, idempotent: true, maxInFlightRequests: 1 } : {}),
      });
      try {
        await p.connect();
        if (transactional) {
          // Registers the transactional id now (not at the first send): this fences a killed predecessor
          // and aborts its open transaction, which would otherwise hold back read_committed consumers
          // until the broker's transaction timeout.
          await (await p.transaction()).abort();
        }
        producer = p;
        log.info(`producing to Kafka topic ${JSON.stringify(init.topic)}`);
        wakeUp();
        return;
      } catch (err) {
        await p.disconnect().catch(() => {});
        const wait = backoffMs(attempt);
        const why = describeError(err, init.topic, brokers);
        log.warn({ err: errorReason(err) }, `cannot start the Kafka producer: ${why}; retrying in ${wait} ms`);
        await sleep(wait);
      }
    }
  };

  /** Sends `messages` until the broker acknowledges them (or rejects records as such, which are dropped). */
  const deliver = async (messages: Message[]): Promise<void> => {
    if (transactional) return deliverInTransaction(messages);
    for (let attempt = 0; ; attempt++) {
      try {
        await producer!.send({ topic: init.topic, acks: -1, timeout: 30_000, messages });
        delivered += messages.length;
        if (attempt > 0) log.info(`delivered ${messages.length} records after ${attempt} failed attempt(s)`);
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
          await deliver(messages.slice(0, half));
          await deliver(messages.slice(half));
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
  const deliverInTransaction = async (messages: Message[]): Promise<void> => {
    try {
      if (txn === null) txn = await producer!.transaction();
      await txn.send({ topic: init.topic, acks: -1, timeout: 30_000, messages });
      delivered += messages.length;
      txnRecords += messages.length;
    } catch (err) {
      fatalError(
        `Kafka transaction failed while sending ${messages.length} records (${describeError(err, init.topic, brokers)})`,
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

  /** A checkpoint's cut: everything before it was sent in the open transaction; commit it. */
  const commitTransaction = async (id: number) => {
    try {
      while (inFlight !== null || gathering.messages.length > 0) await sleep(2);
      const records = txnRecords;
      if (txn !== null) {
        await txn.commit();
        txn = null;
        txnRecords = 0;
      }
      control.postMessage({ type: "committed", id, records } satisfies FromIo);
    } catch (err) {
      txn = null;
      control.postMessage({
        type: "committed",
        id,
        error: `Kafka sink ${init.label}: committing the transaction failed (${errorReason(err)})`,
      } satisfies FromIo);
    }
  };

  const startSend = () => {
    const batch = gathering;
    gathering = newBatch();
    inFlight = batch;
    deliver(batch.messages).then(
      () => {
        inFlight = null;
        wakeUp();
      },
      (err) => {
        inFlight = null;
        log.error(
          { err: errorReason(err), records: batch.messages.length },
          `closing: ${batch.messages.length} records not delivered (${errorReason(err)})`,
        );
        wakeUp();
      },
    );
  };

  // Records are gathered while the producer connects (up to the batch bound); an idle sink
  // that never reached its brokers still lets the coordinator see that nothing is in flight.
  void connect();
  const loop = async () => {
    for (;;) {
      if (closing) return;
      let n = 0;
      if (!full()) for (let i = 0; i < readers.length && !full(); i++) n += readers[i].read(READ_FRAMES);
      const pending = gathering.messages.length;
      if (producer !== null && inFlight === null && pending > 0) {
        const age = performance.now() - gathering.startedAt;
        if (linger === 0 || full() || age >= linger) startSend();
        else if (n === 0) {
          // Lingering and nothing new: wait for more records or the end of the linger.
          status.setIdle(false);
          await bell.sleep(ringsEmpty, Math.max(1, Math.ceil(linger - age)));
          continue;
        }
      }
      if (n > 0 && !full()) {
        await new Promise<void>((r) => setImmediate(r));
        continue;
      }
      if (inFlight !== null || pending > 0) {
        // Waiting for an acknowledgement, the producer or room: not idle, records are still on their way.
        status.setIdle(false);
        await nap(full() || producer === null ? 200 : 5);
        continue;
      }
      await status.sleepIdle(bell, ringsEmpty);
    }
  };
  void loop();

  control.on("message", (msg: ToIo) => {
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
      wakeUp();
      const undelivered = (inFlight?.messages.length ?? 0) + gathering.messages.length;
      if (txn !== null) {
        // Outputs after the last checkpoint: a restart produces them again.
        log.warn(
          { records: txnRecords },
          `aborting the open transaction (${txnRecords} records after the last checkpoint)`,
        );
        await txn.abort().catch(() => {});
      }
      await producer?.disconnect().catch(() => {});
      log.info(
        { delivered, dropped, undelivered },
        `closed after delivering ${delivered} records${dropped ? `, ${dropped} dropped` : ""}${undelivered ? `, ${undelivered} NOT delivered` : ""}`,
      );
      control.postMessage({ type: "closed", delivered, dropped, undelivered } satisfies FromIo);
    })();
  });
}
