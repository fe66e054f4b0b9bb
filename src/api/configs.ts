/**
 * Source and sink configurations, the classes of Wallaroo's Python API. Constructors
 * only record their arguments (the builder never throws before build()); `toSpec()`
 * validates and normalizes them into the SourceSpec/SinkSpec of the application spec
 * and throws a WallarooParameterError that the builder prefixes with the pipeline.
 *
 * Each instance carries a KIND brand (Symbol.for, so it survives two copies of this
 * module being loaded) that build() checks instead of `instanceof`.
 */
import { resolve } from "node:path";
import { WallarooParameterError } from "./errors.js";
import {
  KIND,
  type Decoder,
  type Encoder,
  type FileSinkSpec,
  type FileSourceSpec,
  type KafkaSinkSpec,
  type KafkaSourceSpec,
  type StreamFraming,
  type TCPSinkSpec,
  type TCPSourceSpec,
} from "../topology/spec.js";
import { checkSecurity, type KafkaSecurity } from "./kafka-security.js";

export type KafkaLogLevel = "Fine" | "Info" | "Warn" | "Error";
export const KAFKA_LOG_LEVELS: readonly KafkaLogLevel[] = ["Fine", "Info", "Warn", "Error"];

/**
 * A port given as a number or a string of digits, as a number. `min` is 0 for a
 * listening source (0 = any free port) and 1 where the engine connects.
 * Throws a WallarooParameterError that starts with `what`.
 */
export function parsePort(port: unknown, what: string, min = 1): number {
  const n = typeof port === "string" && /^\s*\d+\s*$/.test(port) ? Number(port) : port;
  if (typeof n !== "number" || !Number.isInteger(n) || n < min || n > 65535) {
    throw new WallarooParameterError(
      `${what}: port ${typeof port === "string" ? JSON.stringify(port) : String(port)} is not a port number; ` +
        `give an integer from ${min} to 65535 (a number or a string of digits)`,
    );
  }
  return n;
}

function checkHost(host: unknown, what: string, allowEmpty: boolean): string {
  if (typeof host !== "string" || (!allowEmpty && host.trim() === "")) {
    throw new WallarooParameterError(
      `${what}: host must be a ${allowEmpty ? "" : "non-empty "}string, got ${String(host)}`,
    );
  }
  return host;
}

function checkDecoder(d: unknown, what: string): Decoder {
  if (d === null || typeof d !== "object" || (d as Decoder)[KIND] !== "decoder") {
    throw new WallarooParameterError(
      `${what}: the decoder must be made by wallaroo.decoder(options, fn), got ${kindOf(d)}`,
    );
  }
  return d as Decoder;
}

function checkEncoder(e: unknown, what: string): Encoder {
  if (e === null || typeof e !== "object" || (e as Encoder)[KIND] !== "encoder") {
    throw new WallarooParameterError(`${what}: the encoder must be made by wallaroo.encoder(fn), got ${kindOf(e)}`);
  }
  return e as Encoder;
}

/** Names a value for an error message, recognizing the wrappers' outputs. */
export function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "undefined";
  if (typeof v === "function") return "a plain function";
  if (typeof v === "object") {
    const k = (v as { [KIND]?: unknown })[KIND];
    return typeof k === "string" ? `a ${k}` : Array.isArray(v) ? "an array" : "an object";
  }
  return `a ${typeof v}`;
}

function checkTopic(topic: unknown, what: string): string {
  if (typeof topic !== "string" || topic.trim() === "") {
    throw new WallarooParameterError(`${what}: topic must be a non-empty string, got ${String(topic)}`);
  }
  return topic;
}

function checkBrokers(brokers: unknown, what: string): [string, number][] {
  const ok = Array.isArray(brokers) && brokers.length > 0 && brokers.every((b) => Array.isArray(b) && b.length === 2);
  if (!ok) {
    throw new WallarooParameterError(
      `${what}: brokers must be a non-empty array of [host, port] pairs such as [["localhost", 9092]]`,
    );
  }
  return (brokers as [unknown, unknown][]).map(([h, p]) => [
    checkHost(h, `${what} broker`, false),
    parsePort(p, `${what} broker ${String(h)}`),
  ]);
}

function checkLogLevel(level: unknown, what: string): KafkaLogLevel {
  if (level === undefined) return "Warn";
  if (!KAFKA_LOG_LEVELS.includes(level as KafkaLogLevel)) {
    throw new WallarooParameterError(
      `${what}: logLevel must be one of ${KAFKA_LOG_LEVELS.join(", ")}, got ${String(level)}`,
    );
  }
  return level as KafkaLogLevel;
}

function checkInt(v: unknown, name: string, min: number, what: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new WallarooParameterError(`${what}: ${name} must be an integer >= ${min}, got ${String(v)}`);
  }
  return v;
}

/** Options of a source config. */
export interface SourceOptions<T> {
  /**
   * The event time of a decoded message, in ms (for windows, see toWindows). Without it,
   * a message's event time is when the worker decoded it (ingest time).
   */
  eventTime?: (decoded: T) => number;
  /** spelling of the Python API, accepted for porting */
  event_time?: (decoded: T) => number;
}

/** Options of a Kafka source config: a source's, and TLS / SASL. */
export interface KafkaSourceOptions<T> extends SourceOptions<T> {
  security?: KafkaSecurity;
}

/** Options of a Kafka sink config. */
export interface KafkaSinkOptions {
  security?: KafkaSecurity;
}

/** The eventTime option of a checked options bag (either spelling), or null. */
function checkEventTime(o: Record<string, unknown>, what: string): ((decoded: any) => number) | null {
  const { eventTime, event_time } = o;
  if (eventTime !== undefined && event_time !== undefined && eventTime !== event_time) {
    throw new WallarooParameterError(`${what}: give eventTime once (it was given in two spellings)`);
  }
  const fn = eventTime ?? event_time;
  if (fn === undefined) return null;
  if (typeof fn !== "function") {
    throw new WallarooParameterError(
      `${what}: eventTime must be a function from a decoded message to its event time in ms, got ${kindOf(fn)}`,
    );
  }
  return fn as (decoded: any) => number;
}
/** the option keys every source takes */
const EVENT_TIME_OPTIONS = ["eventTime", "event_time"] as const;
const KAFKA_SOURCE_OPTIONS = [...EVENT_TIME_OPTIONS, "security"] as const;

/**
 * A config's options bag, checked in one place: `undefined` is no options, anything
 * but an object literal is refused, and so is a key no option has (a typo would
 * otherwise be ignored). Returns the bag; each option is then checked by its reader.
 * New options are a key in `known` and a line in their config's options type.
 */
function checkOptions(options: unknown, known: readonly string[], what: string): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new WallarooParameterError(
      `${what}: options must be an object such as { ${known[0]}: ... }, got ${kindOf(options)}`,
    );
  }
  for (const k of Object.keys(options)) {
    if (!known.includes(k)) {
      throw new WallarooParameterError(
        `${what}: unknown option ${JSON.stringify(k)}; the options are ${known.join(", ")}`,
      );
    }
  }
  return options as Record<string, unknown>;
}

function checkFraming(v: unknown, what: string): StreamFraming {
  if (v === undefined) return "length";
  if (v !== "length" && v !== "lines") {
    throw new WallarooParameterError(
      `${what}: framing must be "length" (each message behind the decoder's length header) or "lines" (one message per line), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function checkPath(p: unknown, what: string): string {
  if (typeof p !== "string" || p.trim() === "") {
    throw new WallarooParameterError(`${what}: path must be a non-empty string, got ${String(p)}`);
  }
  return resolve(p);
}

export interface TCPSourceOptions<T = any> extends SourceOptions<T> {
  /**
   * "length" (default): each message behind the decoder's length header;
   * "lines": each line is a message (up to `\n`, a `\r` before it stripped; the
   * decoder gets the line without them, and its length options are not used). A line
   * longer than --max-frame-bytes is logged and skipped alone.
   */
  readonly framing?: StreamFraming;
}
const TCP_SOURCE_OPTIONS = ["framing", ...EVENT_TIME_OPTIONS] as const;

/** The engine LISTENS on host:port; any number of senders may connect. */
export class TCPSourceConfig<T = any> {
  readonly [KIND] = "tcpSourceConfig" as const;
  constructor(
    readonly host: string,
    readonly port: string | number,
    readonly decoder: Decoder<T>,
    readonly options?: TCPSourceOptions<T>,
  ) {}

  toSpec(): TCPSourceSpec {
    const what = "TCPSourceConfig";
    const host = checkHost(this.host, what, true);
    const decoder = checkDecoder(this.decoder, what);
    if (decoder.fn.length >= 2) {
      // A second parameter is a Kafka record's metadata (see wrappers.ts decoder); a TCP message has none.
      throw new WallarooParameterError(
        `${what}: the decoder's function takes ${decoder.fn.length} parameters; a TCP source gives it the payload alone ` +
          "(the second parameter, a record's metadata, comes from a KafkaSourceConfig)",
      );
    }
    const port = parsePort(this.port, what, 0);
    const o = checkOptions(this.options, TCP_SOURCE_OPTIONS, what);
    const framing = checkFraming(o.framing, what);
    return {
      kind: "tcp-source",
      endpoint: `tcp ${host}:${port}${framing === "lines" ? " (lines)" : ""}`,
      host,
      port,
      framing,
      decoder,
      eventTime: checkEventTime(o, what),
    };
  }
}

export interface FileSourceOptions<T = any> extends SourceOptions<T> {
  /** "lines" (default): each line is a message; "length": each message behind the decoder's length header */
  readonly framing?: StreamFraming;
  /** at the end of the input, wait for more (the file grows, or a directory gets new files) instead of finishing */
  readonly follow?: boolean;
}
const FILE_SOURCE_OPTIONS = ["framing", "follow", ...EVENT_TIME_OPTIONS] as const;

/**
 * The engine READS a file, or the files of a directory in name order (with
 * --resilience-dir, from where the last checkpoint left it).
 */
export class FileSourceConfig<T = any> {
  readonly [KIND] = "fileSourceConfig" as const;
  constructor(
    readonly path: string,
    readonly decoder: Decoder<T>,
    readonly options?: FileSourceOptions<T>,
  ) {}

  toSpec(): FileSourceSpec {
    const what = "FileSourceConfig";
    const path = checkPath(this.path, what);
    const o = checkOptions(this.options, FILE_SOURCE_OPTIONS, what);
    const framing = o.framing === undefined ? "lines" : checkFraming(o.framing, what);
    if (o.follow !== undefined && typeof o.follow !== "boolean")
      throw new WallarooParameterError(`${what}: follow must be true or false, got ${String(o.follow)}`);
    return {
      kind: "file-source",
      endpoint: `file ${path}`,
      path,
      framing,
      follow: o.follow === true,
      decoder: checkDecoder(this.decoder, what),
      eventTime: checkEventTime(o, what),
    };
  }
}

export interface FileSinkOptions {
  /**
   * Rotate once the file holds at least this many bytes: it is renamed PATH.1, PATH.2, ...
   * (oldest first) and a new PATH is started. 0 or absent: never.
   */
  readonly maxBytes?: number;
}
const FILE_SINK_OPTIONS = ["maxBytes"] as const;

/** The engine APPENDS the encoder's bytes to a file (with --resilience-dir, each output once). */
export class FileSinkConfig<O = any> {
  readonly [KIND] = "fileSinkConfig" as const;
  constructor(
    readonly path: string,
    readonly encoder: Encoder<O>,
    readonly options?: FileSinkOptions,
  ) {}

  toSpec(): FileSinkSpec {
    const what = "FileSinkConfig";
    const path = checkPath(this.path, what);
    const o = checkOptions(this.options, FILE_SINK_OPTIONS, what);
    return {
      kind: "file-sink",
      endpoint: `file ${path}`,
      path,
      maxBytes: o.maxBytes === undefined ? 0 : checkInt(o.maxBytes, "maxBytes", 0, what),
      encoder: checkEncoder(this.encoder, what),
    };
  }
}

/** The engine CONNECTS to host:port, retrying until it is up. */
export class TCPSinkConfig<O = any> {
  readonly [KIND] = "tcpSinkConfig" as const;
  constructor(
    readonly host: string,
    readonly port: string | number,
    readonly encoder: Encoder<O>,
  ) {}

  toSpec(): TCPSinkSpec {
    const what = "TCPSinkConfig";
    const host = checkHost(this.host, what, false);
    const port = parsePort(this.port, what);
    return { kind: "tcp-sink", endpoint: `tcp ${host}:${port}`, host, port, encoder: checkEncoder(this.encoder, what) };
  }
}

export class KafkaSourceConfig<T = any> {
  readonly [KIND] = "kafkaSourceConfig" as const;
  constructor(
    readonly topic: string,
    readonly brokers: readonly (readonly [string, string | number])[],
    readonly logLevel: KafkaLogLevel,
    readonly decoder: Decoder<T>,
    readonly options?: KafkaSourceOptions<T>,
  ) {}

  toSpec(): KafkaSourceSpec {
    const what = "KafkaSourceConfig";
    const topic = checkTopic(this.topic, what);
    return {
      kind: "kafka-source",
      endpoint: `kafka topic ${topic}`,
      topic,
      brokers: checkBrokers(this.brokers, what),
      logLevel: checkLogLevel(this.logLevel, what),
      decoder: checkDecoder(this.decoder, what),
      eventTime: checkEventTime(checkOptions(this.options, KAFKA_SOURCE_OPTIONS, what), what),
      security: checkSecurity(this.options?.security, what),
    };
  }
}

export class KafkaSinkConfig<O = any> {
  readonly [KIND] = "kafkaSinkConfig" as const;
  readonly maxProduceBufferMs: number;
  readonly maxMessageSize: number;
  constructor(
    readonly topic: string,
    readonly brokers: readonly (readonly [string, string | number])[],
    readonly logLevel: KafkaLogLevel,
    maxProduceBufferMs: number | undefined,
    maxMessageSize: number | undefined,
    readonly encoder: Encoder<O>,
    readonly options?: KafkaSinkOptions,
  ) {
    // The defaults of Wallaroo's --kafka_sink_* options.
    this.maxProduceBufferMs = maxProduceBufferMs ?? 0;
    this.maxMessageSize = maxMessageSize ?? 100000;
  }

  toSpec(): KafkaSinkSpec {
    const what = "KafkaSinkConfig";
    const topic = checkTopic(this.topic, what);
    return {
      kind: "kafka-sink",
      endpoint: `kafka topic ${topic}`,
      topic,
      brokers: checkBrokers(this.brokers, what),
      logLevel: checkLogLevel(this.logLevel, what),
      maxProduceBufferMs: checkInt(this.maxProduceBufferMs, "maxProduceBufferMs", 0, what),
      maxMessageSize: checkInt(this.maxMessageSize, "maxMessageSize", 1, what),
      encoder: checkEncoder(this.encoder, what),
      security: checkSinkOptions(this.options, what),
    };
  }
}

function checkSinkOptions(o: unknown, what: string) {
  if (o === undefined) return checkSecurity(undefined, what);
  if (o === null || typeof o !== "object" || Array.isArray(o)) {
    throw new WallarooParameterError(
      `${what}: the options must be an object such as { security: {...} }, got ${kindOf(o)}`,
    );
  }
  for (const k of Object.keys(o)) {
    if (k !== "security")
      throw new WallarooParameterError(`${what}: unknown option "${k}"; the only sink option is security`);
  }
  return checkSecurity((o as KafkaSinkOptions).security, what);
}

/** `T`: what the source's decoder produces (what the pipeline's first step receives). */
export type SourceConfig<T = any> = TCPSourceConfig<T> | KafkaSourceConfig<T> | FileSourceConfig<T>;
/** `O`: what the sink's encoder takes (what the pipeline's last step sends). */
export type SinkConfig<O = any> = TCPSinkConfig<O> | KafkaSinkConfig<O> | FileSinkConfig<O>;

/** The brand build() accepts as a source config, or undefined. */
export function asSourceConfig(v: unknown): SourceConfig | undefined {
  const k = v !== null && typeof v === "object" ? (v as { [KIND]?: unknown })[KIND] : undefined;
  return k === "tcpSourceConfig" || k === "kafkaSourceConfig" || k === "fileSourceConfig"
    ? (v as SourceConfig)
    : undefined;
}

/** The brand build() accepts as a sink config, or undefined. */
export function asSinkConfig(v: unknown): SinkConfig | undefined {
  const k = v !== null && typeof v === "object" ? (v as { [KIND]?: unknown })[KIND] : undefined;
  return k === "tcpSinkConfig" || k === "kafkaSinkConfig" || k === "fileSinkConfig" ? (v as SinkConfig) : undefined;
}
