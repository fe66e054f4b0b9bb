/**
 * The Kafka configs' TLS / SASL options and their flags: what is accepted, how it is
 * normalized into the spec (where the secrets are, not the secrets), and the errors that
 * name the fix. The connections themselves: test/kafka/security.test.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { kafkaParseSinkSecurity, kafkaParseSourceSecurity } from "../../src/api/args.js";
import { KafkaSinkConfig, KafkaSourceConfig } from "../../src/api/configs.js";
import { decoder, encoder } from "../../src/api/wrappers.js";
import { kafkajsSecurity } from "../../src/connectors/kafka/security.js";

const dir = mkdtempSync(join(tmpdir(), "wallaroo-kafka-sec-"));
const ca = join(dir, "ca.pem");
writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n");
const pw = join(dir, "pw");
writeFileSync(pw, "from-a-file\n");
const dec = decoder((b: Buffer) => b.toString());
const enc = encoder((s: string) => [s, null]);
const source = (security: unknown) =>
  new KafkaSourceConfig("t", [["h", 9092]], "Warn", dec, { security: security as never }).toSpec();

describe("Kafka security options", () => {
  it("are plaintext when none is given", () => {
    expect(new KafkaSourceConfig("t", [["h", 9092]], "Warn", dec).toSpec().security).toEqual({ tls: null, sasl: null });
    expect(kafkaParseSourceSecurity(["--kafka_source_topic", "t"])).toEqual({});
  });

  it("read flags into options, secrets only from files or variables", () => {
    const args = [
      "--kafka_sink_security_protocol",
      "SASL_SSL",
      "--kafka_sink_tls_ca",
      ca,
      "--kafka_sink_sasl_mechanism",
      "scram-sha-512",
      "--kafka_sink_sasl_username",
      "u",
      "--kafka_sink_sasl_password_file",
      pw,
    ];
    const security = kafkaParseSinkSecurity(args);
    expect(security).toEqual({
      tls: { ca },
      sasl: { mechanism: "scram-sha-512", username: "u", password: { file: pw } },
    });
    expect(kafkaParseSourceSecurity(args)).toEqual({}); // the sink's flags are not the source's
    const spec = new KafkaSinkConfig("t", [["h", 9092]], "Warn", 0, 100, enc, { security }).toSpec().security;
    expect(spec.sasl?.password).toEqual({ file: pw }); // where the secret is, not the secret
    // Read in the I/O thread: the file's trailing newline is not part of the password.
    expect(kafkajsSecurity(spec).sasl).toEqual({ mechanism: "scram-sha-512", username: "u", password: "from-a-file" });
    expect(kafkajsSecurity(spec).ssl.ca[0]).toContain("BEGIN CERTIFICATE");
    expect(kafkaParseSourceSecurity(["--kafka_source_security_protocol", "ssl"])).toEqual({ tls: true });
  });

  it("reject what cannot work, naming the fix", () => {
    expect(() => source({ tls: { ca: join(dir, "missing.pem") } })).toThrow(/cannot read .*missing\.pem/);
    expect(() => source({ sasl: { mechanism: "scram-sha-1", username: "u", password: "p" } })).toThrow(
      /mechanism must be one of plain, scram-sha-256, scram-sha-512, oauthbearer/,
    );
    expect(() =>
      source({ sasl: { mechanism: "plain", username: "u", password: { env: "WALLAROO_NO_SUCH_VAR" } } }),
    ).toThrow(/WALLAROO_NO_SUCH_VAR is not set/);
    expect(() => source({ sasl: { mechanism: "plain", username: "u" } })).toThrow(/needs a username and a password/);
    expect(() => source({ tls: { cert: ca } })).toThrow(/give both cert and key/);
    expect(() => source({ tsl: true })).toThrow(/unknown option "tsl"/);
    expect(() =>
      kafkaParseSourceSecurity(["--kafka_source_sasl_password_file", pw, "--kafka_source_sasl_password_env", "X"]),
    ).not.toThrow(); // no mechanism: SASL flags are not read
    expect(() =>
      kafkaParseSourceSecurity([
        "--kafka_source_sasl_mechanism",
        "plain",
        "--kafka_source_sasl_password_file",
        pw,
        "--kafka_source_sasl_password_env",
        "X",
      ]),
    ).toThrow(/one of --kafka_source_sasl_password_file and --kafka_source_sasl_password_env/);
    expect(() => kafkaParseSourceSecurity(["--kafka_source_security_protocol", "SASL_SSL"])).toThrow(
      /needs --kafka_source_sasl_mechanism/,
    );
  });

  it("a decoder that takes metadata is refused by a TCP source, which has none to give", async () => {
    const { TCPSourceConfig } = await import("../../src/api/configs.js");
    const meta = decoder((b: Buffer, m) => [b, m]);
    expect(() => new TCPSourceConfig("127.0.0.1", 0, meta).toSpec()).toThrow(/a TCP source gives it the payload alone/);
    expect(new KafkaSourceConfig("t", [["h", 1]], "Warn", meta).toSpec().decoder).toBe(meta);
  });

  it("give an oauthbearer provider that reads the token again each time", async () => {
    const tok = join(dir, "token");
    writeFileSync(tok, "t1");
    const spec = source({ sasl: { mechanism: "OAUTHBEARER", token: { file: tok } } }).security;
    const provider = kafkajsSecurity(spec).sasl.oauthBearerProvider;
    expect(await provider()).toEqual({ value: "t1" });
    writeFileSync(tok, "t2");
    expect(await provider()).toEqual({ value: "t2" });
  });
});
