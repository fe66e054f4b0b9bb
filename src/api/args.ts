/**
 * Helpers that read an application's connection options from the engine's argv, as
 * Wallaroo's Python API did with argparse's parse_known_args: flags other than the
 * ones asked for are ignored, `--flag value` and `--flag=value` both work, and the
 * last occurrence of a flag wins.
 *
 * Where Wallaroo silently returned nonsense for a missing flag (a crash on `--in`,
 * an empty topic and broker for Kafka), these throw a WallarooParameterError that
 * says which flag to pass.
 */
import { KAFKA_LOG_LEVELS, parsePort, type KafkaLogLevel } from "./configs.js";
import { WallarooParameterError } from "./errors.js";
import { integerProblem } from "./numbers.js";
import { SASL_MECHANISMS, type KafkaSaslMechanism } from "../topology/kafka.js";
import type { KafkaSecret, KafkaSecurity } from "./kafka-security.js";

const KAFKA_DEFAULT_PORT = 9092;

/**
 * The value of the last occurrence of any of `names` (e.g. ["--in", "-i"]), or
 * undefined when none occurs. A flag with no value after it is an error.
 */
function flagValue(args: readonly string[], names: readonly string[]): string | undefined {
  if (!Array.isArray(args)) {
    throw new WallarooParameterError(`expected the argument list (an array of strings), got ${String(args)}`);
  }
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (typeof a !== "string") continue;
    for (const name of names) {
      if (a === name) {
        const next = args[i + 1];
        // As argparse: a following flag is not a value.
        if (typeof next !== "string" || (next.startsWith("-") && next.length > 1)) {
          throw new WallarooParameterError(`${name} needs a value: pass ${name} ${usage(names[0])}`);
        }
        value = next;
        i++;
      } else if (a.startsWith(`${name}=`)) {
        value = a.slice(name.length + 1);
      }
    }
  }
  return value;
}

function usage(flag: string): string {
  if (flag === "--in" || flag === "--out") return "host:port[,host:port...]";
  if (flag.endsWith("_brokers")) return "host[:port][,host[:port]...]";
  if (flag.endsWith("_topic")) return "TOPIC";
  if (flag.endsWith("_log_level")) return KAFKA_LOG_LEVELS.join("|");
  if (flag.endsWith("_security_protocol")) return SECURITY_PROTOCOLS.join("|");
  if (flag.endsWith("_sasl_mechanism")) return SASL_MECHANISMS.join("|");
  if (flag.endsWith("_env")) return "VARIABLE";
  if (/_(file|ca|cert|key)$/.test(flag)) return "FILE";
  if (flag.endsWith("_username")) return "USER";
  return "N";
}

/** Splits "a:1,b:2" into its non-empty items. */
function items(value: string): string[] {
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/** "host:port" (IPv6 as "[::1]:port") into [host, port]; `defaultPort` when the port is left out. */
function parseAddr(item: string, flag: string, defaultPort?: number, minPort = 1): [string, number] {
  const m = /^\[([^\]]*)\](?::(.*))?$/.exec(item) ?? /^([^:]*)(?::(.*))?$/.exec(item);
  const host = m?.[1] ?? "";
  const port = m?.[2];
  if (m === null || host === "") {
    throw new WallarooParameterError(`${flag}: ${JSON.stringify(item)} is not an address; use ${usage(flag)}`);
  }
  if (port === undefined) {
    if (defaultPort === undefined) {
      throw new WallarooParameterError(`${flag}: ${JSON.stringify(item)} has no port; use ${usage(flag)}`);
    }
    return [host, defaultPort];
  }
  return [host, parsePort(port, `${flag} ${item}`, minPort)];
}

function addrs(args: readonly string[], names: readonly [string, string]): [string, number][] {
  const flag = names[0];
  const value = flagValue(args, names);
  const list = value === undefined ? [] : items(value);
  if (list.length === 0) {
    throw new WallarooParameterError(`no ${flag === "--in" ? "input" : "output"} address: pass ${flag} ${usage(flag)}`);
  }
  // Port 0 is "any free port" where the engine listens (--in), never where it connects.
  return list.map((item) => parseAddr(item, flag, undefined, flag === "--in" ? 0 : 1));
}

function single(args: readonly string[], names: readonly [string, string], plural: string): [string, number] {
  const list = addrs(args, names);
  const [first] = list;
  if (first === undefined || list.length > 1) {
    throw new WallarooParameterError(
      `${names[0]} gives ${list.length} addresses where the application takes one; pass one host:port, or read them all with ${plural}(args)`,
    );
  }
  return first;
}

/** `[host, port][]` from `--in`/`-i h1:p1,h2:p2` (port 0: any free port; the engine logs the bound one). */
export function tcpParseInputAddrs(args: readonly string[]): [string, number][] {
  return addrs(args, ["--in", "-i"]);
}

/** `[host, port][]` from `--out`/`-o h1:p1,h2:p2`. */
export function tcpParseOutputAddrs(args: readonly string[]): [string, number][] {
  return addrs(args, ["--out", "-o"]);
}

/** The one `[host, port]` of `--in`/`-i host:port`; throws when there is none or more than one. */
export function tcpParseInputAddr(args: readonly string[]): [string, number] {
  return single(args, ["--in", "-i"], "tcpParseInputAddrs");
}

/** The one `[host, port]` of `--out`/`-o host:port`; throws when there is none or more than one. */
export function tcpParseOutputAddr(args: readonly string[]): [string, number] {
  return single(args, ["--out", "-o"], "tcpParseOutputAddrs");
}

function required(args: readonly string[], flag: string): string {
  const v = flagValue(args, [flag]);
  if (v === undefined || v.trim() === "") {
    throw new WallarooParameterError(`missing ${flag}: pass ${flag} ${usage(flag)}`);
  }
  return v.trim();
}

function brokers(args: readonly string[], flag: string): [string, number][] {
  const list = items(required(args, flag));
  if (list.length === 0) throw new WallarooParameterError(`missing ${flag}: pass ${flag} ${usage(flag)}`);
  return list.map((item) => parseAddr(item, flag, KAFKA_DEFAULT_PORT));
}

function logLevel(args: readonly string[], flag: string): KafkaLogLevel {
  const v = flagValue(args, [flag]);
  if (v === undefined) return "Warn";
  if (!KAFKA_LOG_LEVELS.includes(v as KafkaLogLevel)) {
    throw new WallarooParameterError(`${flag}: ${JSON.stringify(v)} is not a log level; pass ${flag} ${usage(flag)}`);
  }
  return v as KafkaLogLevel;
}

function int(args: readonly string[], flag: string, dflt: number, min: number): number {
  const v = flagValue(args, [flag]);
  if (v === undefined) return dflt;
  const problem = integerProblem(v, min);
  if (problem !== undefined) throw new WallarooParameterError(`${flag} ${problem}; pass ${flag} N`);
  return Number(v);
}

/** `[topic, brokers, logLevel]` from `--kafka_source_topic`, `--kafka_source_brokers`, `--kafka_source_log_level`. */
export function kafkaParseSourceOptions(args: readonly string[]): [string, [string, number][], KafkaLogLevel] {
  return [
    required(args, "--kafka_source_topic"),
    brokers(args, "--kafka_source_brokers"),
    logLevel(args, "--kafka_source_log_level"),
  ];
}

/**
 * `[topic, brokers, logLevel, maxProduceBufferMs, maxMessageSize]` from `--kafka_sink_topic`,
 * `--kafka_sink_brokers`, `--kafka_sink_log_level`, `--kafka_sink_max_produce_buffer_ms` (default 0)
 * and `--kafka_sink_max_message_size` (default 100000).
 */
export function kafkaParseSinkOptions(
  args: readonly string[],
): [string, [string, number][], KafkaLogLevel, number, number] {
  return [
    required(args, "--kafka_sink_topic"),
    brokers(args, "--kafka_sink_brokers"),
    logLevel(args, "--kafka_sink_log_level"),
    int(args, "--kafka_sink_max_produce_buffer_ms", 0, 0),
    int(args, "--kafka_sink_max_message_size", 100000, 1),
  ];
}

/** Kafka's security.protocol values (what a Java client's properties call them). */
const SECURITY_PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] as const;

/** A secret from `${flag}_file FILE` or `${flag}_env VARIABLE` (never its value on the command line). */
function secretFlag(args: readonly string[], flag: string): KafkaSecret | undefined {
  const file = flagValue(args, [`${flag}_file`]);
  const env = flagValue(args, [`${flag}_env`]);
  if (file !== undefined && env !== undefined) {
    throw new WallarooParameterError(`give one of ${flag}_file and ${flag}_env, not both`);
  }
  return file !== undefined ? { file } : env !== undefined ? { env } : undefined;
}

/**
 * TLS and SASL options from `--kafka_<side>_...` flags (see README, Kafka security). TLS is on
 * with `_security_protocol SSL|SASL_SSL` or any `_tls_*` flag; SASL with `_sasl_mechanism`.
 * Secrets come from files or environment variables only.
 */
function security(args: readonly string[], side: "source" | "sink"): KafkaSecurity {
  const p = `--kafka_${side}`;
  const protocol = flagValue(args, [`${p}_security_protocol`])?.toUpperCase();
  if (protocol !== undefined && !(SECURITY_PROTOCOLS as readonly string[]).includes(protocol)) {
    throw new WallarooParameterError(
      `${p}_security_protocol: ${JSON.stringify(protocol)} is not a protocol; pass ${p}_security_protocol ${usage("_security_protocol")}`,
    );
  }
  const ca = flagValue(args, [`${p}_tls_ca`]);
  const cert = flagValue(args, [`${p}_tls_cert`]);
  const key = flagValue(args, [`${p}_tls_key`]);
  const passphrase = secretFlag(args, `${p}_tls_key_passphrase`);
  const tlsFlags = ca !== undefined || cert !== undefined || key !== undefined || passphrase !== undefined;
  const mechanism = flagValue(args, [`${p}_sasl_mechanism`]);
  if (protocol !== undefined && (protocol === "SSL" || protocol === "PLAINTEXT") && mechanism !== undefined) {
    throw new WallarooParameterError(
      `${p}_sasl_mechanism is given but ${p}_security_protocol is ${protocol}; use SASL_${protocol === "SSL" ? "SSL" : "PLAINTEXT"}`,
    );
  }
  if (protocol !== undefined && protocol.endsWith("PLAINTEXT") && tlsFlags) {
    throw new WallarooParameterError(`${p}_tls_* flags are given but ${p}_security_protocol is ${protocol}`);
  }
  if (protocol?.startsWith("SASL") && mechanism === undefined) {
    throw new WallarooParameterError(
      `${p}_security_protocol ${protocol} needs ${p}_sasl_mechanism ${usage("_sasl_mechanism")}`,
    );
  }
  const out: KafkaSecurity = {};
  if (tlsFlags) {
    out.tls = {
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key } : {}),
      ...(passphrase !== undefined ? { passphrase } : {}),
    };
  } else if (protocol === "SSL" || protocol === "SASL_SSL") {
    out.tls = true;
  }
  if (mechanism !== undefined) {
    const username = flagValue(args, [`${p}_sasl_username`]);
    const password = secretFlag(args, `${p}_sasl_password`);
    const token = secretFlag(args, `${p}_sasl_token`);
    out.sasl = {
      // checked (and lower-cased) by the config's checkSecurity, whose error names the mechanisms
      mechanism: mechanism as KafkaSaslMechanism,
      ...(username !== undefined ? { username } : {}),
      ...(password !== undefined ? { password } : {}),
      ...(token !== undefined ? { token } : {}),
    };
  }
  return out;
}

/**
 * The source's TLS / SASL options (for `new KafkaSourceConfig(..., { security })`) from
 * `--kafka_source_security_protocol`, `--kafka_source_tls_ca|cert|key`,
 * `--kafka_source_tls_key_passphrase_file|env`, `--kafka_source_sasl_mechanism`,
 * `--kafka_source_sasl_username`, `--kafka_source_sasl_password_file|env` and
 * `--kafka_source_sasl_token_file|env` (oauthbearer). `{}` when none is given: plaintext.
 */
export function kafkaParseSourceSecurity(args: readonly string[]): KafkaSecurity {
  return security(args, "source");
}

/** The sink's TLS / SASL options: as kafkaParseSourceSecurity, from the `--kafka_sink_*` flags. */
export function kafkaParseSinkSecurity(args: readonly string[]): KafkaSecurity {
  return security(args, "sink");
}

// Spellings of the Python API, for porting.
export const tcp_parse_input_addrs = tcpParseInputAddrs;
export const tcp_parse_input_addr = tcpParseInputAddr;
export const tcp_parse_output_addr = tcpParseOutputAddr;
export const tcp_parse_output_addrs = tcpParseOutputAddrs;
export const kafka_parse_source_options = kafkaParseSourceOptions;
export const kafka_parse_sink_options = kafkaParseSinkOptions;
export const kafka_parse_source_security = kafkaParseSourceSecurity;
export const kafka_parse_sink_security = kafkaParseSinkSecurity;
