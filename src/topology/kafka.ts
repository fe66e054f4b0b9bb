/**
 * What the Kafka connector's spec holds beyond topics and brokers, as plain data (it
 * crosses to the I/O threads): TLS / SASL in checked form (api/kafka-security.ts makes it,
 * connectors/kafka/security.ts turns it into kafkajs options in the thread), and the
 * record metadata a two-parameter decoder gets (connectors/kafka/message-frame.ts).
 */

export const SASL_MECHANISMS = ["plain", "scram-sha-256", "scram-sha-512", "oauthbearer"] as const;
export type KafkaSaslMechanism = (typeof SASL_MECHANISMS)[number];

/** A secret in the spec: where it is (never the value, except one given by code). */
export type SecretSpec = { readonly file: string } | { readonly env: string } | { readonly value: string };

export interface KafkaSecuritySpec {
  readonly tls: null | {
    readonly ca?: string;
    readonly cert?: string;
    readonly key?: string;
    readonly passphrase?: SecretSpec;
    readonly servername?: string;
    readonly rejectUnauthorized: boolean;
  };
  readonly sasl: null | {
    readonly mechanism: KafkaSaslMechanism;
    readonly username?: SecretSpec;
    readonly password?: SecretSpec;
    readonly token?: SecretSpec;
  };
}

export const NO_SECURITY: KafkaSecuritySpec = { tls: null, sasl: null };

/** What a decoder of two parameters gets as the second. */
export interface KafkaRecordMeta {
  /** null when the record has no key */
  key: Buffer | null;
  /** the record's timestamp, ms since the epoch (its create time, or the broker's log-append time) */
  timestamp: number;
  /** a name repeated in the record gives an array of its values, in order */
  headers: Record<string, Buffer | null | (Buffer | null)[]>;
  topic: string;
  partition: number;
  offset: number;
}
