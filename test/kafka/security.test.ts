/**
 * TLS and SASL against a real broker of its own (scripts/kafka/start.sh with SSL, SASL_PLAINTEXT
 * and SASL_SSL listeners; keytool makes the certificates, SCRAM credentials are written at
 * format time): the count app (test/fixtures/kafka-count.ts) reads and writes over each, with its
 * security from the --kafka_source_* / --kafka_sink_* flags, and its output is exact. Topics are
 * created, fed and read over the broker's PLAINTEXT listener.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  APP,
  appArgs,
  checkOutput,
  collect,
  dropTestKafkaState,
  freshTopics,
  makeInput,
  PrivateBroker,
  produce,
  sleep,
  uniqueName,
  wallarooKafka,
} from "./helpers.js";

process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication } = await import("../../dist/index.js");

const PORT = Number(process.env.WALLAROO_TEST_KAFKA_SECURE_PORT ?? 19392);
const SSL = PORT + 2;
const SASL = PORT + 3;
const SASL_SSL = PORT + 4;
const USER = "wallaroo-test";
const PASSWORD = "s3cret-of-the-test";
const noJdk = spawnSync("keytool", ["-help"], { stdio: "ignore" }).error !== undefined;
/** start.sh needs openssl to write the client key as PEM; without it the SSL listener is plain TLS */
const mutual = spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0;

describe.skipIf(noJdk)("Kafka over TLS and SASL (a broker of its own)", () => {
  const broker = new PrivateBroker(PORT, {
    KAFKA_SSL_PORT: String(SSL),
    KAFKA_SASL_PORT: String(SASL),
    KAFKA_SASL_SSL_PORT: String(SASL_SSL),
    KAFKA_SASL_USERS: `${USER}:${PASSWORD}`,
    KAFKA_SSL_CLIENT_AUTH: mutual ? "required" : "requested",
  });
  const tlsDir = () => dirname(broker.caFile);
  const secrets = mkdtempSync(join(tmpdir(), "wallaroo-kafka-secrets-"));
  const passwordFile = join(secrets, "password");

  beforeAll(async () => {
    await broker.start();
    writeFileSync(passwordFile, `${PASSWORD}\n`); // a trailing newline, as `echo` writes it
  }, 180_000);
  afterAll(() => broker.destroy(), 60_000);

  /** Runs the count app on `port` with `flags`; 3000 records over 2 partitions come out exact. */
  async function countOver(port: number, flags: string[]): Promise<void> {
    const { kafka, admin, inTopic, outTopic } = await freshTopics(broker.address, 2);
    const group = uniqueName("group");
    const input = makeInput(3000, 20);
    const app = await runApplication({
      module: APP,
      workers: 2,
      statsInterval: 0,
      kafkaGroup: group,
      args: appArgs(`127.0.0.1:${port}`, inTopic, outTopic, flags),
    });
    const output = await collect(kafka, outTopic);
    try {
      await produce(kafka, inTopic, input);
      await output.waitFor(input.length, 60_000);
      await app.stop();
      await sleep(300); // a duplicate would show up here
      expect(output.out.length).toBe(input.length);
      checkOutput(input, output.out, false);
    } finally {
      await app.stop();
      await output.stop();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }

  it("counts exactly over TLS (the test CA as --kafka_*_tls_ca; mutual TLS with a client certificate)", async () => {
    const flags = (side: string) => [
      `--kafka_${side}_tls_ca`,
      broker.caFile,
      ...(mutual
        ? [
            `--kafka_${side}_tls_cert`,
            join(tlsDir(), "client-cert.pem"),
            `--kafka_${side}_tls_key`,
            join(tlsDir(), "client-key.pem"),
          ]
        : []),
    ];
    await countOver(SSL, [...flags("source"), ...flags("sink")]);
    if (mutual) {
      // The listener requires a client certificate: without one the same client is refused.
      const noCert = await wallarooKafka([
        "topics",
        "list",
        "--brokers",
        `127.0.0.1:${SSL}`,
        "--tls-ca",
        broker.caFile,
      ]);
      expect(noCert.code).toBe(1);
      const withCert = await wallarooKafka([
        "topics",
        "list",
        "--brokers",
        `127.0.0.1:${SSL}`,
        "--tls-ca",
        broker.caFile,
        "--tls-cert",
        join(tlsDir(), "client-cert.pem"),
        "--tls-key",
        join(tlsDir(), "client-key.pem"),
      ]);
      expect(withCert.code).toBe(0);
    }
  }, 120_000);

  it("counts exactly over SASL/SCRAM-SHA-256 (password from an environment variable and from a file)", async () => {
    process.env.WALLAROO_TEST_KAFKA_PASSWORD = PASSWORD;
    await countOver(SASL, [
      "--kafka_source_sasl_mechanism",
      "scram-sha-256",
      "--kafka_source_sasl_username",
      USER,
      "--kafka_source_sasl_password_env",
      "WALLAROO_TEST_KAFKA_PASSWORD",
      "--kafka_sink_sasl_mechanism",
      "SCRAM-SHA-256",
      "--kafka_sink_sasl_username",
      USER,
      "--kafka_sink_sasl_password_file",
      passwordFile,
    ]);
  }, 120_000);

  it("counts exactly over SASL_SSL with SCRAM-SHA-512", async () => {
    const sasl = (side: string) => [
      `--kafka_${side}_security_protocol`,
      "SASL_SSL",
      `--kafka_${side}_tls_ca`,
      broker.caFile,
      `--kafka_${side}_sasl_mechanism`,
      "scram-sha-512",
      `--kafka_${side}_sasl_username`,
      USER,
      `--kafka_${side}_sasl_password_file`,
      passwordFile,
    ];
    await countOver(SASL_SSL, [...sasl("source"), ...sasl("sink")]);
  }, 120_000);

  it("wallaroo kafka reaches the SASL_SSL listener (password from a file), PLAIN and OAUTHBEARER", async () => {
    const topic = uniqueName("cli-sasl-ssl");
    const flags = [
      "--brokers",
      `127.0.0.1:${SASL_SSL}`,
      "--tls-ca",
      broker.caFile,
      "--sasl-mechanism",
      "scram-sha-512",
      "--sasl-username",
      USER,
      "--sasl-password-file",
      passwordFile,
    ];
    expect(await wallarooKafka(["topics", "create", topic, ...flags])).toMatchObject({ code: 0 });
    expect(await wallarooKafka(["produce", topic, ...flags], "one\ntwo\n")).toMatchObject({ code: 0 });
    expect(await wallarooKafka(["consume", topic, "--count", "2", ...flags])).toMatchObject({
      code: 0,
      out: "one\ntwo\n",
    });
    // PLAIN over SASL_PLAINTEXT, the password from a variable.
    const plain = await wallarooKafka(
      [
        "topics",
        "list",
        "--brokers",
        `127.0.0.1:${SASL}`,
        "--sasl-mechanism",
        "plain",
        "--sasl-username",
        USER,
        "--sasl-password-env",
        "WALLAROO_TEST_KAFKA_PASSWORD",
      ],
      "",
      { WALLAROO_TEST_KAFKA_PASSWORD: PASSWORD },
    );
    expect(plain.code).toBe(0);
    expect(plain.out.split("\n")).toContain(topic);
    // OAUTHBEARER: an unsecured token (alg "none", which this test broker accepts) from a file.
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const tokenFile = join(secrets, "token");
    writeFileSync(tokenFile, `${b64({ alg: "none" })}.${b64({ sub: USER, iat: now, exp: now + 3600 })}.\n`);
    const oauth = await wallarooKafka([
      "topics",
      "list",
      "--brokers",
      `127.0.0.1:${SASL}`,
      "--sasl-mechanism",
      "oauthbearer",
      "--sasl-token-file",
      tokenFile,
    ]);
    expect(oauth.code).toBe(0);
    expect(oauth.out.split("\n")).toContain(topic);
    // The same over the listener without the right password: refused, and said so.
    writeFileSync(join(secrets, "wrong"), "not-the-password");
    const wrong = await wallarooKafka(["topics", "list", ...flags.slice(0, -1), join(secrets, "wrong")]);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/authentication failed/i);
  }, 60_000);
});
