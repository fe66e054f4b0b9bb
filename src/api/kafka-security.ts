/**
 * TLS and SASL options of the Kafka configs as an application gives them (KafkaSecurity),
 * checked into their spec form (topology/kafka.ts KafkaSecuritySpec: where each secret is,
 * never the secret itself, except one given by code).
 *
 * Secrets (passwords, key passphrases, OAuth tokens) come from a file or an environment
 * variable, so that they never have to be on a command line, where `ps` shows them; the I/O
 * thread reads them when it connects (connectors/kafka/security.ts). A plain string is
 * accepted from code, for applications that fetch secrets themselves.
 */
import { accessSync, constants } from "node:fs";
import { WallarooParameterError } from "./errors.js";
export type { KafkaSaslMechanism } from "../topology/kafka.js";
import {
  NO_SECURITY,
  SASL_MECHANISMS,
  type KafkaSaslMechanism,
  type KafkaSecuritySpec,
  type SecretSpec,
} from "../topology/kafka.js";

/** A secret: the value itself (from code), `{ file }` (its contents, trailing newline dropped) or `{ env }`. */
export type KafkaSecret = string | { readonly file: string } | { readonly env: string };

export interface KafkaTlsOptions {
  /** PEM file of the CA(s) that signed the brokers' certificates; left out: the system's trusted CAs */
  ca?: string;
  /** PEM file of the client certificate (mutual TLS), with `key` */
  cert?: string;
  /** PEM file of the client certificate's private key */
  key?: string;
  /** the key's passphrase, if it is encrypted */
  passphrase?: KafkaSecret;
  /** name checked against the broker's certificate, when it differs from the broker's host */
  servername?: string;
  /** false: accept any broker certificate (tests only: it gives up the authentication of the brokers) */
  rejectUnauthorized?: boolean;
}

export interface KafkaSaslOptions {
  mechanism: KafkaSaslMechanism;
  /** plain, scram-*: the user name */
  username?: KafkaSecret;
  /** plain, scram-*: the password */
  password?: KafkaSecret;
  /** oauthbearer: the bearer token (a file is read again at each authentication) */
  token?: KafkaSecret;
}

/** `tls: true`: TLS with the system's trusted CAs. */
export interface KafkaSecurity {
  tls?: boolean | KafkaTlsOptions;
  sasl?: KafkaSaslOptions;
}

const plainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

function onlyKeys(o: Record<string, unknown>, keys: readonly string[], what: string): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k)) {
      throw new WallarooParameterError(`${what}: unknown option "${k}"; the options are ${keys.join(", ")}`);
    }
  }
}

function readableFile(path: unknown, what: string): string {
  if (typeof path !== "string" || path === "") {
    throw new WallarooParameterError(`${what} must be the path of a file, got ${String(path)}`);
  }
  try {
    accessSync(path, constants.R_OK);
  } catch {
    throw new WallarooParameterError(`${what}: cannot read ${JSON.stringify(path)}; give the path of a readable file`);
  }
  return path;
}

function secret(v: unknown, what: string): SecretSpec {
  if (typeof v === "string") return { value: v };
  if (plainObject(v) && Object.keys(v).length === 1 && "file" in v) return { file: readableFile(v.file, what) };
  if (plainObject(v) && Object.keys(v).length === 1 && "env" in v) {
    const name = v.env;
    if (typeof name !== "string" || process.env[name] === undefined) {
      throw new WallarooParameterError(
        `${what}: the environment variable ${String(name)} is not set; set it, or give { file: PATH }`,
      );
    }
    return { env: name };
  }
  throw new WallarooParameterError(
    `${what} must be a string, { file: PATH } or { env: NAME }, got ${plainObject(v) ? JSON.stringify(Object.keys(v)) : String(v)}`,
  );
}

/** Checks a config's security options (files readable, variables set) into their spec; throws a WallarooParameterError. */
export function checkSecurity(s: unknown, what: string): KafkaSecuritySpec {
  if (s === undefined) return NO_SECURITY;
  if (!plainObject(s)) {
    throw new WallarooParameterError(`${what}: security must be an object such as { tls: true, sasl: {...} }`);
  }
  onlyKeys(s, ["tls", "sasl"], `${what} security`);
  let tls: KafkaSecuritySpec["tls"] = null;
  if (s.tls === true) tls = { rejectUnauthorized: true };
  else if (plainObject(s.tls)) {
    const t = s.tls;
    const w = `${what} security.tls`;
    onlyKeys(t, ["ca", "cert", "key", "passphrase", "servername", "rejectUnauthorized"], w);
    if ((t.cert === undefined) !== (t.key === undefined)) {
      throw new WallarooParameterError(`${w}: give both cert and key (the client certificate and its private key)`);
    }
    if (t.rejectUnauthorized !== undefined && typeof t.rejectUnauthorized !== "boolean") {
      throw new WallarooParameterError(`${w}.rejectUnauthorized must be true or false`);
    }
    tls = {
      rejectUnauthorized: t.rejectUnauthorized !== false,
      ...(t.ca !== undefined ? { ca: readableFile(t.ca, `${w}.ca`) } : {}),
      ...(t.cert !== undefined ? { cert: readableFile(t.cert, `${w}.cert`) } : {}),
      ...(t.key !== undefined ? { key: readableFile(t.key, `${w}.key`) } : {}),
      ...(t.passphrase !== undefined ? { passphrase: secret(t.passphrase, `${w}.passphrase`) } : {}),
      ...(typeof t.servername === "string" ? { servername: t.servername } : {}),
    };
  } else if (s.tls !== undefined && s.tls !== false) {
    throw new WallarooParameterError(`${what} security.tls must be true or { ca, cert, key, ... }`);
  }
  let sasl: KafkaSecuritySpec["sasl"] = null;
  if (s.sasl !== undefined) {
    const w = `${what} security.sasl`;
    if (!plainObject(s.sasl)) throw new WallarooParameterError(`${w} must be an object { mechanism, ... }`);
    const a = s.sasl;
    onlyKeys(a, ["mechanism", "username", "password", "token"], w);
    const mechanism = typeof a.mechanism === "string" ? a.mechanism.toLowerCase() : a.mechanism;
    if (!SASL_MECHANISMS.includes(mechanism as KafkaSaslMechanism)) {
      throw new WallarooParameterError(
        `${w}.mechanism must be one of ${SASL_MECHANISMS.join(", ")}, got ${String(a.mechanism)}`,
      );
    }
    const m = mechanism as KafkaSaslMechanism;
    if (m === "oauthbearer") {
      if (a.token === undefined) throw new WallarooParameterError(`${w}: oauthbearer needs a token`);
      sasl = { mechanism: m, token: secret(a.token, `${w}.token`) };
    } else {
      if (a.username === undefined || a.password === undefined) {
        throw new WallarooParameterError(`${w}: ${m} needs a username and a password`);
      }
      sasl = {
        mechanism: m,
        username: secret(a.username, `${w}.username`),
        password: secret(a.password, `${w}.password`),
      };
    }
  }
  return { tls, sasl };
}
