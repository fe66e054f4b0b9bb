/**
 * What the Kafka source and sink share: one kafkajs client configuration (log
 * routing into pino, retry policy), a readable reason for a connection error,
 * and the wait for reachable brokers that both run before starting their
 * consumer or producer, so an unreachable cluster gives one clear, repeated
 * log line and a capped backoff instead of kafkajs' own crash/restart noise.
 */
// Must come before "kafkajs": see kafkajs-patches.ts.
import "./kafkajs-patches.js";
import { Kafka, logLevel as KafkaJsLevel, type LogEntry, type logCreator } from "kafkajs";
import type { KafkaLogLevel } from "../../api/configs.js";
import type { Logger } from "../../core/log.js";
import { kafkajsSecurity, type KafkaSecuritySpec } from "./security.js";

/** Wallaroo's Kafka log levels onto kafkajs' (and the pino level the kafkajs lines are logged at). */
const LEVELS: Record<KafkaLogLevel, { kafkajs: KafkaJsLevel; pino: "debug" | "info" | "warn" | "error" }> = {
  Fine: { kafkajs: KafkaJsLevel.DEBUG, pino: "debug" },
  Info: { kafkajs: KafkaJsLevel.INFO, pino: "info" },
  Warn: { kafkajs: KafkaJsLevel.WARN, pino: "warn" },
  Error: { kafkajs: KafkaJsLevel.ERROR, pino: "error" },
};

/** Same kafkajs line (namespace + message) at most once per this many ms: a broker outage must not flood the log. */
const KAFKAJS_LOG_INTERVAL_MS = 5000;

/** Routes kafkajs' log entries into `log` (a child named kafkajs), rate-limited per distinct message. */
export function pinoLogCreator(log: Logger, level: KafkaLogLevel): logCreator {
  const child = log.child({ lib: "kafkajs" });
  // "Fine" asks for kafkajs' debug lines even when the engine logs at info.
  if (LEVELS[level].pino === "debug" && !child.isLevelEnabled("debug")) child.level = "debug";
  const last = new Map<string, { at: number; suppressed: number }>();
  return () => (entry: LogEntry) => {
    const { namespace, level: lvl, log: fields } = entry;
    const { message, timestamp: _ts, logger: _lg, ...extra } = fields as LogEntry["log"] & { logger?: unknown };
    const key = `${namespace}|${message}`;
    const now = Date.now();
    const seen = last.get(key);
    if (seen && now - seen.at < KAFKAJS_LOG_INTERVAL_MS) {
      seen.suppressed++;
      return;
    }
    last.set(key, { at: now, suppressed: 0 });
    if (last.size > 1000) last.clear(); // messages embedding offsets etc. must not grow the map forever
    const obj = { namespace, ...extra, ...(seen?.suppressed ? { suppressedSinceLast: seen.suppressed } : {}) };
    const text = `kafkajs ${namespace}: ${message}`;
    // kafkajs logs at ERROR what it then retries, and mostly recovers from (a broker that
    // restarts, a connection reset): a warning here. What the engine cannot recover from
    // (a send failed inside a transaction, a topic that does not exist) it logs itself, at error.
    if (lvl === KafkaJsLevel.ERROR || lvl === KafkaJsLevel.WARN) child.warn(obj, text);
    else if (lvl === KafkaJsLevel.INFO) child.info(obj, text);
    else child.debug(obj, text);
  };
}

export interface ClientOptions {
  clientId: string;
  brokers: readonly (readonly [string, number])[];
  logLevel: KafkaLogLevel;
  log: Logger;
  /** TLS / SASL (security.ts); absent: plaintext */
  security?: KafkaSecuritySpec;
}

export const brokerList = (brokers: readonly (readonly [string, number])[]): string[] =>
  brokers.map(([h, p]) => `${h}:${p}`);

/**
 * The kafkajs client of a connector. Retries back off exponentially up to 5 s;
 * after the last retry kafkajs reports the failure to the connector, which
 * keeps trying on its own (see waitForBrokers and the sink's send loop).
 */
export function createClient(o: ClientOptions): Kafka {
  return new Kafka({
    clientId: o.clientId,
    brokers: brokerList(o.brokers),
    logLevel: LEVELS[o.logLevel].kafkajs,
    logCreator: pinoLogCreator(o.log, o.logLevel),
    connectionTimeout: 3000,
    retry: { initialRetryTime: 200, maxRetryTime: 5000, retries: 8 },
    ...kafkajsSecurity(o.security),
  });
}

/** The innermost cause of a kafkajs error, as "ECONNREFUSED" or a message. */
export function errorReason(err: unknown): string {
  let e: any = err;
  for (let depth = 0; e && depth < 10; depth++) {
    if (typeof e.code === "string" && /^E[A-Z]+$/.test(e.code)) return e.code;
    const next = e.originalError ?? e.cause;
    if (!next || next === e) break;
    e = next;
  }
  const m = /\b(E[A-Z]{4,})\b/.exec(String(e?.message ?? err));
  return m ? m[1] : String(e?.message ?? err);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * How long a stop waits for kafkajs to disconnect a consumer before it
 * answers without it: with reachable brokers that takes milliseconds; with unreachable ones it
 * can take a request timeout (30 s, a broker that accepts connections and answers nothing) or a
 * whole retry sequence, and the engine's stop would wait that long for the connector's answer.
 */
export const DISCONNECT_WAIT_MS = 2000;

/**
 * True once `work` has settled, false when `ms` passed first (the work goes on in the background;
 * the thread ends with the engine). A rejection counts as settled: the caller logs its own errors.
 */
export async function settlesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = work.then(
    () => true,
    () => true,
  );
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Capped exponential backoff: 250 ms, 500 ms, ... up to 10 s. */
export const backoffMs = (attempt: number): number => Math.min(10_000, 250 * 2 ** Math.min(attempt, 6));

/**
 * The Kafka protocol error type ("UNKNOWN_TOPIC_OR_PARTITION") inside a kafkajs
 * error, if any.
 */
export function protocolErrorType(err: unknown): string | null {
  let e: any = err;
  for (let depth = 0; e && depth < 10; depth++) {
    if (e.name === "KafkaJSProtocolError" && typeof e.type === "string") return e.type;
    const next = e.cause ?? e.originalError;
    if (!next || next === e) break;
    e = next;
  }
  return null;
}

/** The line logged while `topic` does not exist: the engine never creates topics (see docs/operations.md, Kafka). */
export const missingTopicMessage = (topic: string, brokers: string): string =>
  `Kafka topic ${JSON.stringify(topic)} does not exist on brokers ${brokers}; wallaroo does not create topics ` +
  `(create it first, e.g. kafka-topics.sh --bootstrap-server ${brokers.split(",")[0]} --create --topic ${topic} --partitions N)`;

/**
 * A connection or protocol error as a reason to log: "ECONNREFUSED", a message,
 * or, when the broker does not know the topic, the missing-topic line.
 */
export function describeError(err: unknown, topic: string, brokers: string): string {
  return protocolErrorType(err) === "UNKNOWN_TOPIC_OR_PARTITION"
    ? missingTopicMessage(topic, brokers)
    : errorReason(err);
}

/**
 * Resolves once one of the brokers answers a metadata request and (when `topic`
 * is given) knows that topic, or with false when `cancelled()` turns true. Logs
 * why not on every attempt (backoff capped at 10 s, so at most a few lines a
 * minute): an unreachable cluster and a missing topic are both retried, since a
 * broker may come up and a topic may be created while the engine waits.
 */
export async function waitForBrokers(o: ClientOptions, cancelled: () => boolean, topic?: string): Promise<boolean> {
  // A client of its own without retries: each attempt is one quick try, the backoff is ours.
  const probe = new Kafka({
    clientId: `${o.clientId}-probe`,
    brokers: brokerList(o.brokers),
    logLevel: KafkaJsLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 0 },
    ...kafkajsSecurity(o.security),
  });
  const list = brokerList(o.brokers).join(",");
  let unreachable = false;
  let missing = false;
  for (let attempt = 0; !cancelled(); attempt++) {
    const admin = probe.admin();
    let problem: string;
    try {
      await admin.connect();
      if (unreachable) o.log.info(`Kafka brokers ${list} reachable`);
      unreachable = false;
      // The admin client never creates topics, whatever the broker's auto.create.topics.enable.
      const found = topic === undefined || (await admin.listTopics()).includes(topic);
      await admin.disconnect();
      if (found) {
        if (missing) o.log.info(`Kafka topic ${JSON.stringify(topic)} now exists on ${list}`);
        return true;
      }
      missing = true;
      problem = missingTopicMessage(topic!, list);
    } catch (err) {
      await admin.disconnect().catch(() => {});
      unreachable = true;
      problem = `cannot reach Kafka brokers ${list}: ${errorReason(err)}`;
    }
    const wait = backoffMs(attempt);
    o.log.warn({ brokers: list, topic, attempt, retryInMs: wait }, `${problem}; retrying in ${wait} ms`);
    // Sleep in short steps so a stop is not held up by the backoff.
    for (let slept = 0; slept < wait && !cancelled(); slept += 100) await sleep(100);
  }
  return false;
}
