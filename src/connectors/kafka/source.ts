/**
 * Kafka source, run in its own I/O thread: a kafkajs consumer in a consumer
 * group (named after the application unless --kafka-group says otherwise),
 * subscribed to every partition of one topic. Each message value goes, undecoded,
 * to a worker ring; Kafka partition p always feeds worker p % workers, which is
 * what keeps the messages of a partition in order, as one TCP connection's are.
 *
 * Backpressure: when a worker's ring is full the batch loop awaits room before
 * taking the next message, so fetching slows down and memory stays bounded.
 * Delivery is at-least-once: an offset is resolved (and later committed) only
 * once its message is in a ring; after a crash or a rebalance a message may be
 * read twice, never skipped.
 *
 * With resilience (init.resilience) nothing is committed to the group: the
 * positions are part of each checkpoint. The source seeks every partition to
 * the checkpoint's offset at start, skips anything below what it already handed
 * on, stops at a message boundary when a checkpoint pauses it and reports the
 * next offset of each partition; each run joins a group of its own.
 *
 * Where a new group starts: at the beginning of the topic (fromBeginning), so
 * nothing produced before the group first joined is missed. A group that has
 * committed offsets resumes from them.
 *
 * Start-up: "listening" is posted once the consumer has joined the group and has
 * been assigned partitions. If the brokers cannot be reached, or the topic does
 * not exist (the source never creates it), the source keeps
 * retrying with a capped backoff (logging why), and after START_WAIT_MS posts
 * "listening" anyway with connected: false, so runApplication resolves with a
 * warning instead of hanging; consumption starts whenever the brokers come up.
 */
import type { MessagePort } from "node:worker_threads";
import { randomUUID } from "node:crypto";
import type { Consumer, EachBatchPayload } from "kafkajs";
import type { KafkaLogLevel } from "../../api/configs.js";
import { ChannelWriter, copyBytes } from "../../transport/channel.js";
import { RingWriter } from "../../transport/ring.js";
import { Doorbell } from "../../transport/doorbell.js";
import { SOURCE, SOURCE_INPUT, SOURCE_STAMPED, sourceTag } from "../../transport/tags.js";
import { createLogger } from "../../core/log.js";
import {
  backoffMs,
  brokerList,
  createClient,
  describeError,
  DISCONNECT_WAIT_MS,
  errorReason,
  settlesWithin,
  sleep,
  waitForBrokers,
  type ClientOptions,
} from "./client.js";
import type { KafkaSecuritySpec } from "./security.js";
import { type Headers, writeMessageFrame } from "./message-frame.js";
import type { FromIo, ToIo } from "../../control/protocol.js";

/**
 * The most a fetch asks the broker for, per partition and in all (kafkajs' defaults: 1 MiB and
 * 10 MiB). kafkajs fetches the next batch only once this thread has handed on the last one, so one
 * fetch is what this thread holds: decoded, a fetch is a JS object, a Buffer view and two strings
 * per record, about 35 times the bytes on the wire for 4-byte records (celsius), and all of it is
 * promoted out of the 4 MB nursery before it dies. With kafkajs' defaults the Kafka source thread's
 * heap peaked at 337 MB (a million records waiting in 4 partitions; 2 engine runs): the fetch
 * alive, and the promoted records of earlier ones waiting for V8's first full collection. A broker
 * still returns a record larger than these limits (alone), so nothing is too large to be read.
 */
export const FETCH_PARTITION_BYTES = 256 * 1024;
export const FETCH_BYTES = 1024 * 1024;

export interface KafkaSourceInit {
  kind: "kafka-source";
  sourceId: number;
  pipeline: string;
  topic: string;
  brokers: [string, number][];
  logLevel: KafkaLogLevel;
  /** TLS / SASL (security.ts): where the secrets are, read when connecting */
  security: KafkaSecuritySpec;
  /** the decoder takes the record's metadata: each message goes as a message frame (message-frame.ts) */
  metadata: boolean;
  groupId: string;
  /**
   * Resilience on: no group commits; the source starts each partition at the
   * checkpoint's offset (startOffsets) and reports the next offset of every
   * partition when a checkpoint pauses it.
   */
  resilience?: boolean;
  startOffsets?: Record<string, string>;
  /** one ring per worker */
  rings: SharedArrayBuffer[];
  workerBells: SharedArrayBuffer[];
  /** metrics on: ms spent waiting for room in each worker's ring */
  blockedMs?: SharedArrayBuffer;
  /** metrics on: consumer lag per partition after each batch (-1 = not seen; metrics/layout.ts) */
  lag?: SharedArrayBuffer;
  /** each record's timestamp goes with it (SOURCE_STAMPED) as its event time (SourceContext.stampEventTime) */
  stampEventTime?: boolean;
}

/** how long the start waits for the group join before reporting "listening" unconnected */
export const START_WAIT_MS = 10_000;
/** messages written to a ring between two commits (publishing early lets the worker start sooner) */
const COMMIT_EVERY = 256;
const EMPTY = new Uint8Array(0);

export function runKafkaSource(init: KafkaSourceInit, control: MessagePort): void {
  // With resilience the group only assigns partitions (positions live in checkpoints), so each run joins
  // a group of its own: a restart after kill -9 must not wait out the dead member's session timeout.
  const groupId = init.resilience ? `${init.groupId}.run-${randomUUID().slice(0, 8)}` : init.groupId;
  const log = createLogger("wallaroo.source.kafka", { pipeline: init.pipeline, topic: init.topic, group: groupId });
  const stamp = init.stampEventTime === true;
  const kind = stamp ? SOURCE_STAMPED : SOURCE;
  const channels = init.rings.map(
    (sab, w) => new ChannelWriter(new RingWriter(sab, new Doorbell(init.workerBells[w]))),
  );
  const blockedMs = init.blockedMs ? new Float64Array(init.blockedMs) : null;
  const lag = init.lag ? new Float64Array(init.lag) : null;
  const client: ClientOptions = {
    clientId: `wallaroo-source-${init.sourceId}`,
    brokers: init.brokers,
    logLevel: init.logLevel,
    log,
    security: init.security,
  };
  const brokers = brokerList(init.brokers).join(",");

  let stopping = false;
  let listening = false;
  let consumer: Consumer | null = null;
  let messages = 0;
  let nullValues = 0;
  const resilient = init.resilience === true;
  /** resilience: the next offset of every partition handed to a ring (starts at the checkpoint's) */
  const next = new Map<number, bigint>(Object.entries(init.startOffsets ?? {}).map(([p, o]) => [Number(p), BigInt(o)]));
  /** resilience: a checkpoint's pause; the batch loop waits at a message boundary while set */
  let paused: Promise<void> | null = null;
  let unpause = () => {};
  let pauseId: number | null = null;
  const positions = () => ({
    topic: init.topic,
    offsets: Object.fromEntries([...next].map(([p, o]) => [String(p), o.toString()])),
  });

  const postListening = (connected: boolean) => {
    if (listening) return;
    listening = true;
    control.postMessage({ type: "listening", port: 0, connected } satisfies FromIo);
  };
  const startTimer = setTimeout(() => {
    if (listening) return;
    log.warn(
      `not connected to Kafka brokers ${brokers} after ${START_WAIT_MS} ms; starting anyway, ` +
        `the source keeps retrying and consumes topic ${JSON.stringify(init.topic)} once they are reachable`,
    );
    postListening(false);
  }, START_WAIT_MS);

  /** A record with its timestamp in front of it: [f64 LE timestamp ms][value] (transport/tags.ts SOURCE_STAMPED). */
  const sendStamped = (ch: ChannelWriter, t: number, timestamp: number, value: Buffer) => {
    const len = 8 + value.length;
    const off = ch.reserve(t, len);
    if (off >= 0) {
      ch.buffer.writeDoubleLE(timestamp, off);
      copyBytes(value, 0, value.length, ch.buffer, off + 8);
    } else {
      const whole = Buffer.allocUnsafe(len);
      whole.writeDoubleLE(timestamp, 0);
      value.copy(whole, 8);
      ch.send(t, whole, 0, len);
    }
  };

  /** Waits until the worker's queue is in the ring; heartbeats meanwhile so the group keeps us. */
  const drain = async (ch: ChannelWriter, heartbeat: () => Promise<void>) => {
    let last = Date.now();
    while (!ch.flush()) {
      ch.commit();
      await ch.waitForSpace(50);
      if (Date.now() - last > 1000) {
        last = Date.now();
        await heartbeat().catch(() => {}); // a rebalance is seen by the next batch; the message is delivered anyway
      }
    }
    ch.commit();
  };

  /**
   * One fetched batch of one partition into its worker's ring. Per message this is a copy into the
   * ring and nothing else: kafkajs' resolveOffset (a Long parse and format) and isStale (a JSON key)
   * cost more than the copy, so offsets are resolved, and the checkpoint position advanced, once per
   * run of messages, always before an await: whenever this function is suspended (which is the only
   * time a pause, a stop or a seek can be seen) every message handed on is resolved and counted in
   * `next`, and what it sent is flushed to the ring by whoever acts on that (pause, stop).
   */
  const withMeta = init.metadata === true;
  const scratch = Buffer.allocUnsafe(withMeta ? 64 * 1024 : 0);
  const eachBatch = async (p: EachBatchPayload) => {
    const { batch, resolveOffset, heartbeat, isRunning, isStale, commitOffsetsIfNecessary, uncommittedOffsets } = p;
    const partition = batch.partition;
    const ch = channels[partition % channels.length];
    // Each partition is an input of its own for window watermarks (a lagging partition holds them back).
    const t = sourceTag(kind, init.sourceId, partition);
    const msgs = batch.messages;
    let i = 0;
    /** offset of the last message handed on and not yet resolved */
    let unresolved: string | null = null;
    let lastOffset: string | null = null;
    const settle = () => {
      if (unresolved === null) return;
      // Only now is the message in the ring (or the channel's queue, flushed before anything is reported).
      resolveOffset(unresolved);
      if (resilient) next.set(partition, BigInt(unresolved) + 1n);
      lastOffset = unresolved;
      unresolved = null;
    };
    /** after an await: wait out a checkpoint's pause; false when the batch must be left (stop, rebalance, seek) */
    const mayGoOn = async (): Promise<boolean> => {
      if (resilient) while (paused) await paused;
      return !(stopping || !isRunning() || isStale());
    };
    if (await mayGoOn()) {
      if (resilient) {
        // Already handed on (before a restart of the consumer, or before the checkpoint): skip it.
        const have = next.get(partition);
        if (have !== undefined) while (i < msgs.length && BigInt(msgs[i].offset) < have) i++;
      }
      let sinceCommit = 0;
      for (; i < msgs.length; i++) {
        const m = msgs[i];
        unresolved = m.offset;
        if (m.value === null) {
          nullValues++;
          log.debug({ partition, offset: m.offset }, "skipping a message with a null value");
          continue;
        }
        if (withMeta) {
          // The channel copies the frame, so one scratch buffer serves every message.
          const [frame, len] = writeMessageFrame(scratch, {
            key: m.key,
            value: m.value,
            timestamp: Number(m.timestamp),
            offset: Number(m.offset),
            partition,
            headers: m.headers as Headers | undefined,
          });
          // With a window step and no eventTime, the record's timestamp goes first (the worker
          // strips it, then decodes the metadata frame as usual).
          if (stamp) sendStamped(ch, t, Number(m.timestamp), frame.subarray(0, len));
          else ch.send(t, frame, 0, len);
        } else if (stamp) sendStamped(ch, t, Number(m.timestamp), m.value);
        else ch.send(t, m.value, 0, m.value.length);
        messages++;
        if (ch.blocked) {
          settle();
          const t0 = performance.now();
          await drain(ch, heartbeat);
          if (blockedMs) blockedMs[partition % channels.length] += performance.now() - t0;
          if (!(await mayGoOn())) break;
        } else if (++sinceCommit >= COMMIT_EVERY) {
          ch.commit();
          sinceCommit = 0;
        }
      }
    }
    settle();
    ch.commit();
    // Lag once this batch is in the rings: the partition's high watermark less the next offset.
    if (lag && lastOffset !== null && partition < lag.length) {
      lag[partition] = Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(lastOffset) - 1n));
    }
    if (resilient) {
      // Offsets are kept in checkpoints, never committed to the group.
      if (!stopping && isRunning()) await heartbeat();
    } else if (stopping || !isRunning()) {
      // kafkajs does not commit after a batch once stopping: commit what was handed on ourselves.
      await commitOffsetsIfNecessary(uncommittedOffsets()).catch((err) =>
        log.warn({ err: errorReason(err) }, `could not commit offsets while stopping: ${errorReason(err)}`),
      );
    } else {
      await heartbeat();
    }
  };

  /** Connects (waiting for reachable brokers first), subscribes and runs; restarts itself after a fatal crash. */
  const start = async (attempt: number): Promise<void> => {
    if (!(await waitForBrokers(client, () => stopping, init.topic))) return;
    const kafka = createClient(client);
    const c = kafka.consumer({
      groupId,
      // Never create the topic (kafkajs' default would, with the broker's default partition count, when the
      // topic is missing or was deleted under a running engine): a missing topic is reported and retried.
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: FETCH_PARTITION_BYTES,
      maxBytes: FETCH_BYTES,
      sessionTimeout: 30_000,
      heartbeatInterval: 3000,
      // kafkajs restarts the consumer after retriable failures (a broker restart) by itself.
      retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8, restartOnFailure: async () => !stopping },
    });
    consumer = c;
    c.on(c.events.GROUP_JOIN, (e) => {
      const assigned = e.payload.memberAssignment[init.topic] ?? [];
      log.info(
        { partitions: assigned, workers: channels.length },
        `joined group ${JSON.stringify(groupId)}; consuming partitions [${assigned.join(",")}] of ${JSON.stringify(init.topic)}`,
      );
      // Each assigned partition is an input of window watermarks before its first record (a partition
      // fetched later than the others must not find the watermark already past its records).
      for (const p of assigned) {
        const ch = channels[p % channels.length];
        ch.send(sourceTag(SOURCE_INPUT, init.sourceId, p), EMPTY, 0, 0);
        ch.commit();
      }
      clearTimeout(startTimer);
      if (!listening)
        log.info(
          `pipeline ${JSON.stringify(init.pipeline)} consuming Kafka topic ${JSON.stringify(init.topic)} at ${brokers}`,
        );
      postListening(true);
    });
    c.on(c.events.CRASH, (e) => {
      if (stopping) return;
      const why = describeError(e.payload.error, init.topic, brokers);
      if (e.payload.restart) {
        // kafkajs restarts the consumer itself after its retries; still say why (a deleted topic shows up here).
        log.warn({ err: errorReason(e.payload.error) }, `Kafka consumer failed (${why}); restarting it`);
        return;
      }
      // kafkajs gives up on errors it deems fatal; the source must not: start over with a fresh consumer.
      log.error({ err: errorReason(e.payload.error) }, `Kafka consumer failed (${why}); restarting it`);
      if (consumer === c) consumer = null;
      void c
        .disconnect()
        .catch(() => {})
        .then(() => sleep(backoffMs(attempt)))
        .then(() => start(attempt + 1));
    });
    try {
      await c.connect();
      await c.subscribe({ topic: init.topic, fromBeginning: true });
      await c.run({ eachBatch, eachBatchAutoResolve: false, autoCommit: !resilient, autoCommitInterval: 500 });
      if (resilient) {
        // Start (or restart) each partition where the checkpoint, or what was already handed on, ends.
        for (const [partition, offset] of next) c.seek({ topic: init.topic, partition, offset: offset.toString() });
        if (next.size > 0)
          log.info(
            { offsets: positions().offsets },
            `resuming ${JSON.stringify(init.topic)} from checkpointed offsets`,
          );
      }
    } catch (err) {
      await c.disconnect().catch(() => {});
      if (consumer === c) consumer = null;
      if (stopping) return;
      const wait = backoffMs(attempt);
      log.warn(
        { err: errorReason(err) },
        `cannot start the Kafka consumer: ${describeError(err, init.topic, brokers)}; retrying in ${wait} ms`,
      );
      await sleep(wait);
      return start(attempt + 1);
    }
  };
  void start(0);

  control.on("message", (msg: ToIo) => {
    if (msg.type === "pause") {
      if (!paused)
        paused = new Promise((r) => {
          unpause = r;
        });
      const id = msg.id;
      pauseId = id;
      void (async () => {
        // The batch loop is at an await: what it sent may still be queued; put it in the rings.
        for (const ch of channels) {
          while (!ch.flush()) {
            ch.commit();
            await ch.waitForSpace(50);
          }
          ch.commit();
        }
        if (pauseId === id) control.postMessage({ type: "paused", id, positions: positions() } satisfies FromIo);
      })();
      return;
    }
    if (msg.type === "resume") {
      paused = null;
      pauseId = null;
      unpause();
      return;
    }
    if (msg.type !== "stop" || stopping) return;
    stopping = true;
    paused = null;
    pauseId = null;
    unpause();
    clearTimeout(startTimer);
    // Stop fetching; the batch in progress ends at its next message and commits; what is queued goes to the rings.
    void (async () => {
      const c = consumer;
      if (c) {
        // kafkajs' disconnect() waits for the consumer's fetch and its leaving the group, each up to a
        // request timeout or a retry sequence while the brokers do not answer (a stop then waited out
        // the whole --drain-timeout for this source's answer). What the stop needs does not depend on
        // it: once `stopping` is set the batch loop hands nothing more on, and everything it handed on
        // is resolved and counted in `next` (see eachBatch). So the disconnect gets DISCONNECT_WAIT_MS.
        const inTime = await settlesWithin(
          c.disconnect().catch((err) => log.warn({ err: errorReason(err) }, `disconnecting: ${errorReason(err)}`)),
          DISCONNECT_WAIT_MS,
        );
        if (!inTime)
          log.warn(
            { waitedMs: DISCONNECT_WAIT_MS },
            `the Kafka consumer did not disconnect within ${DISCONNECT_WAIT_MS} ms (brokers ${brokers} not answering); ` +
              `stopping without it: what was read is handed on${resilient ? "" : ", offsets not committed since the last commit are read again after a restart"}`,
          );
      }
      for (const ch of channels) {
        while (!ch.flush()) {
          ch.commit();
          await ch.waitForSpace(50);
        }
        ch.commit();
      }
      log.info(
        { messages, nullValues },
        `stopped after ${messages} messages${nullValues ? ` (${nullValues} null values skipped)` : ""}`,
      );
      control.postMessage({
        type: "stopped",
        positions: resilient ? positions() : undefined,
        messages,
      } satisfies FromIo);
    })();
  });
}
