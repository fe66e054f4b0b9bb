/**
 * TLS and SASL in the Kafka connector's I/O thread: the kafkajs `ssl` / `sasl` options made
 * from the checked spec (topology/kafka.ts; api/kafka-security.ts checks what a config gives),
 * reading each secret from its file or variable when a connection is made (a rotated token
 * file is picked up by the next connection).
 */
import { readFileSync } from "node:fs";
import type { KafkaSecuritySpec, SecretSpec } from "../../topology/kafka.js";

export type { KafkaSecuritySpec };

/** The value of a secret, read now. Throws (with where it looked) when it cannot. */
export function readSecret(s: SecretSpec): string {
  if ("value" in s) return s.value;
  if ("env" in s) {
    const v = process.env[s.env];
    if (v === undefined) throw new Error(`the environment variable ${s.env} is not set (a Kafka secret)`);
    return v;
  }
  return readFileSync(s.file, "utf8").replace(/\r?\n$/, "");
}

/** kafkajs' `ssl` and `sasl` options from a security spec (reading the files and secrets now). */
export function kafkajsSecurity(spec: KafkaSecuritySpec | undefined): { ssl?: any; sasl?: any } {
  const out: { ssl?: any; sasl?: any } = {};
  const t = spec?.tls;
  if (t) {
    out.ssl = {
      rejectUnauthorized: t.rejectUnauthorized,
      ...(t.ca ? { ca: [readFileSync(t.ca, "utf8")] } : {}),
      ...(t.cert ? { cert: readFileSync(t.cert, "utf8") } : {}),
      ...(t.key ? { key: readFileSync(t.key, "utf8") } : {}),
      ...(t.passphrase ? { passphrase: readSecret(t.passphrase) } : {}),
      ...(t.servername ? { servername: t.servername } : {}),
    };
  }
  const a = spec?.sasl;
  if (a) {
    if (a.mechanism === "oauthbearer") {
      const token = a.token!;
      out.sasl = { mechanism: "oauthbearer", oauthBearerProvider: async () => ({ value: readSecret(token) }) };
    } else {
      out.sasl = { mechanism: a.mechanism, username: readSecret(a.username!), password: readSecret(a.password!) };
    }
  }
  return out;
}

/** What a log line may say about the security of a connection ("TLS, SASL scram-sha-256"). */
export function describeSecurity(spec: KafkaSecuritySpec | undefined): string {
  const parts = [spec?.tls ? "TLS" : "plaintext"];
  if (spec?.sasl) parts.push(`SASL ${spec.sasl.mechanism}`);
  return parts.join(", ");
}
