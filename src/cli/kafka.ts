/**
 * `wallaroo kafka`: topic tooling and a line producer / consumer for the Kafka connector's
 * users (the broker of `npm run kafka:start` ships no kafka-topics or console scripts, and a
 * managed Kafka needs TLS / SASL, which this takes as the engine does: security.ts).
 *
 *   wallaroo kafka topics create TOPIC [--partitions N] [--replication-factor N]
 *   wallaroo kafka topics list
 *   wallaroo kafka topics delete TOPIC...
 *   wallaroo kafka produce TOPIC [--file F] [--key-words] [--float]
 *   wallaroo kafka consume TOPIC [--count N] [--timeout S] [--float] [--keys]
 */
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import { UsageError, intFlag, numberFlag } from "./flags.js";
import { checkSecurity, type KafkaSecurity } from "../api/kafka-security.js";
import { kafkajsSecurity } from "../connectors/kafka/security.js";
import { WallarooParameterError } from "../api/errors.js";

const HELP = `Usage: wallaroo kafka <command> [flags]

Commands:
  topics create TOPIC [--partitions N] [--replication-factor N]
                              create a topic (the engine never creates topics)
  topics list                 list the topics (internal ones, starting with "__", left out)
  topics delete TOPIC...      delete topics
  produce TOPIC               one record per line of --file F (or stdin); empty lines skipped
      --file F                read the lines from F
      --key-words             key each record by its line's first word
      --float                 send each line as a 4-byte big-endian float (Python struct ">f")
  consume TOPIC               print the topic's records from its beginning, one per line,
                              until --count N records or --timeout S seconds (default 5)
                              without one
      --keys                  print "key<TAB>value"
      --float                 print a 4-byte value as a big-endian float

Connection flags (every command):
  --brokers HOST:PORT[,...]   bootstrap brokers (default $KAFKA_BROKERS, else 127.0.0.1:9092)
  --security-protocol P       PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default PLAINTEXT;
                              SSL with any --tls-* flag, SASL with --sasl-mechanism)
  --tls-ca FILE               PEM CA certificate(s) of the brokers (default: the system's)
  --tls-cert FILE --tls-key FILE
                              client certificate and key (mutual TLS)
  --sasl-mechanism M          plain, scram-sha-256, scram-sha-512 or oauthbearer
  --sasl-username USER
  --sasl-password-file FILE | --sasl-password-env VARIABLE
  --sasl-token-file FILE | --sasl-token-env VARIABLE   (oauthbearer)
                              secrets come from files or environment variables, never the
                              command line, where other users' \`ps\` would show them
`;

const CONNECTION = {
  brokers: { type: "string" },
  "security-protocol": { type: "string" },
  "tls-ca": { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "sasl-mechanism": { type: "string" },
  "sasl-username": { type: "string" },
  "sasl-password-file": { type: "string" },
  "sasl-password-env": { type: "string" },
  "sasl-token-file": { type: "string" },
  "sasl-token-env": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const COMMAND_FLAGS = {
  partitions: { type: "string" },
  "replication-factor": { type: "string" },
  file: { type: "string" },
  "key-words": { type: "boolean" },
  float: { type: "boolean" },
  count: { type: "string" },
  timeout: { type: "string" },
  keys: { type: "boolean" },
} as const;

type Values = Record<string, string | boolean | undefined>;

function secretOf(v: Values, name: string): { file: string } | { env: string } | undefined {
  const file = v[`${name}-file`] as string | undefined;
  const env = v[`${name}-env`] as string | undefined;
  if (file !== undefined && env !== undefined) throw new UsageError(`give one of --${name}-file and --${name}-env`);
  return file !== undefined ? { file } : env !== undefined ? { env } : undefined;
}

/** The connection's security from the flags, checked (files readable, variables set). */
function securityOf(v: Values) {
  const protocol = (v["security-protocol"] as string | undefined)?.toUpperCase();
  if (protocol !== undefined && !["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"].includes(protocol)) {
    throw new UsageError(`--security-protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got ${protocol}`);
  }
  const tlsFlags = v["tls-ca"] !== undefined || v["tls-cert"] !== undefined || v["tls-key"] !== undefined;
  const mechanism = v["sasl-mechanism"] as string | undefined;
  if (protocol?.startsWith("SASL") && mechanism === undefined) {
    throw new UsageError(`--security-protocol ${protocol} needs --sasl-mechanism`);
  }
  const s: KafkaSecurity = {};
  if (tlsFlags) {
    s.tls = {
      ...(v["tls-ca"] !== undefined ? { ca: v["tls-ca"] as string } : {}),
      ...(v["tls-cert"] !== undefined ? { cert: v["tls-cert"] as string } : {}),
      ...(v["tls-key"] !== undefined ? { key: v["tls-key"] as string } : {}),
    };
  } else if (protocol === "SSL" || protocol === "SASL_SSL") s.tls = true;
  if (mechanism !== undefined) {
    const password = secretOf(v, "sasl-password");
    const token = secretOf(v, "sasl-token");
    s.sasl = {
      mechanism: mechanism as never,
      ...(v["sasl-username"] !== undefined ? { username: v["sasl-username"] as string } : {}),
      ...(password ? { password } : {}),
      ...(token ? { token } : {}),
    };
  }
  try {
    return checkSecurity(s, "wallaroo kafka");
  } catch (e) {
    if (e instanceof WallarooParameterError) throw new UsageError(e.message);
    throw e;
  }
}

export async function kafkaMain(argv: string[]): Promise<number> {
  const stderr = process.stderr;
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: { ...CONNECTION, ...COMMAND_FLAGS },
      strict: true,
      allowPositionals: true,
    }));
  } catch (e) {
    stderr.write(`wallaroo kafka: ${(e as Error).message.split("\n")[0]}; run \`wallaroo kafka --help\`\n`);
    return 2;
  }
  if (values.help || positionals.length === 0) {
    process.stdout.write(HELP);
    return values.help ? 0 : 2;
  }
  const [command, ...rest] = positionals;
  try {
    const security = securityOf(values);
    const brokers = String(values.brokers ?? process.env.KAFKA_BROKERS ?? "127.0.0.1:9092")
      .split(",")
      .map((b) => b.trim())
      .filter((b) => b !== "");
    if (brokers.length === 0) throw new UsageError("--brokers is empty");
    // Loaded only here: `wallaroo run` and the other commands never load kafkajs for this.
    await import("../connectors/kafka/kafkajs-patches.js");
    const { Kafka, Partitioners, logLevel } = await import("kafkajs");
    const kafka = new Kafka({
      clientId: "wallaroo-cli",
      brokers,
      logLevel: logLevel.ERROR,
      connectionTimeout: 5000,
      retry: { retries: 3 },
      ...kafkajsSecurity(security),
    });
    const one = (what: string): string => {
      if (rest.length !== 1) throw new UsageError(`${what} takes one TOPIC, got ${rest.length}`);
      return rest[0];
    };
    if (command === "topics") {
      const [sub, ...topics] = rest;
      const admin = kafka.admin();
      await admin.connect();
      try {
        if (sub === "list" && topics.length === 0) {
          for (const t of (await admin.listTopics()).filter((t) => !t.startsWith("__")).sort())
            process.stdout.write(`${t}\n`);
        } else if (sub === "create" && topics.length === 1) {
          const partitions = intFlag("partitions", values.partitions as string | undefined, 1) ?? 1;
          const rf = intFlag("replication-factor", values["replication-factor"] as string | undefined, 1) ?? 1;
          const created = await admin.createTopics({
            topics: [{ topic: topics[0], numPartitions: partitions, replicationFactor: rf }],
            waitForLeaders: true,
          });
          if (!created) {
            stderr.write(`wallaroo kafka: topic ${topics[0]} already exists\n`);
            return 1;
          }
          stderr.write(`created topic ${topics[0]} (${partitions} partitions)\n`);
        } else if (sub === "delete" && topics.length > 0) {
          await admin.deleteTopics({ topics });
          stderr.write(`deleted ${topics.join(", ")}\n`);
        } else {
          throw new UsageError("use `topics create TOPIC`, `topics list` or `topics delete TOPIC...`");
        }
      } finally {
        await admin.disconnect();
      }
      return 0;
    }
    if (command === "produce") {
      const topic = one("produce");
      const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
      await producer.connect();
      let n = 0;
      try {
        const file = values.file as string | undefined;
        const lines = createInterface({ input: file ? createReadStream(file) : process.stdin, crlfDelay: Infinity });
        let batch: { key: string | null; value: string | Buffer }[] = [];
        const send = async () => {
          if (batch.length === 0) return;
          await producer.send({ topic, acks: -1, messages: batch });
          n += batch.length;
          batch = [];
        };
        for await (const line of lines) {
          if (line.length === 0) continue;
          let value: string | Buffer = line;
          if (values.float) {
            const x = Number(line);
            if (!Number.isFinite(x)) throw new UsageError(`--float: line ${JSON.stringify(line)} is not a number`);
            value = Buffer.alloc(4);
            value.writeFloatBE(x);
          }
          batch.push({ key: values["key-words"] ? line.split(" ")[0] : null, value });
          if (batch.length >= 1000) await send();
        }
        await send();
      } finally {
        await producer.disconnect();
      }
      stderr.write(`produced ${n} records to ${topic}\n`);
      return 0;
    }
    if (command === "consume") {
      const topic = one("consume");
      const count = intFlag("count", values.count as string | undefined, 1) ?? Number.POSITIVE_INFINITY;
      const idleMs = (numberFlag("timeout", values.timeout as string | undefined) ?? 5) * 1000;
      const admin = kafka.admin();
      await admin.connect();
      const exists = (await admin.listTopics()).includes(topic);
      if (!exists) {
        await admin.disconnect();
        stderr.write(`wallaroo kafka: topic ${topic} does not exist\n`);
        return 1;
      }
      const groupId = `wallaroo-cli-${randomUUID()}`;
      const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100, allowAutoTopicCreation: false });
      let n = 0;
      let last = Date.now();
      try {
        await consumer.connect();
        await consumer.subscribe({ topic, fromBeginning: true });
        await consumer.run({
          eachMessage: async ({ message }) => {
            if (n >= count) return;
            n++;
            last = Date.now();
            const value =
              values.float && message.value?.length === 4
                ? String(message.value.readFloatBE(0))
                : (message.value?.toString() ?? "");
            process.stdout.write(values.keys ? `${message.key?.toString() ?? ""}\t${value}\n` : `${value}\n`);
          },
        });
        while (n < count && Date.now() - last < idleMs) await new Promise((r) => setTimeout(r, 50));
      } finally {
        await consumer.disconnect();
        await admin.deleteGroups([groupId]).catch(() => {});
        await admin.disconnect();
      }
      stderr.write(`consumed ${n} records from ${topic}\n`);
      return 0;
    }
    throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  } catch (e) {
    if (e instanceof UsageError) {
      stderr.write(`wallaroo kafka: ${e.message}; run \`wallaroo kafka --help\`\n`);
      return 2;
    }
    stderr.write(`wallaroo kafka: ${(e as Error).message}\n`);
    return 1;
  }
}
