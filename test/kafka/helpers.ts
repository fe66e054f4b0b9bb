/**
 * Helpers for the engine's Kafka tests: topics, producing the "KEY:SEQ" input of
 * test/fixtures/kafka-count.ts, collecting its output, running the CLI in a child
 * process (to read its logs and CPU time), and restarting a broker in place.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
// The engine's kafkajs fixes for the tests' own clients too (before kafkajs loads): without patch 6
// kafkajs' idle request queue arms a negative timer, a TimeoutNegativeWarning among the test output.
import "../../dist/connectors/kafka/kafkajs-patches.js";
import { Kafka, Partitioners, logLevel, type Admin, type Consumer } from "kafkajs";
import { startEngine, type Engine } from "../helpers/engine.js";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const APP = join(REPO, "test/fixtures/kafka-count.ts");

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function client(brokers: string): Kafka {
  return new Kafka({
    clientId: `wallaroo-test-${process.pid}`,
    brokers: brokers.split(","),
    logLevel: logLevel.NOTHING,
    retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: 15 },
  });
}

export const uniqueName = (what: string) => `wallaroo-${what}-${randomUUID().slice(0, 8)}`;

/** A client, a connected admin and a fresh input and output topic with `partitions` partitions each. */
export async function freshTopics(
  brokers: string,
  partitions: number,
): Promise<{ kafka: Kafka; admin: Admin; inTopic: string; outTopic: string }> {
  const kafka = client(brokers);
  const admin = kafka.admin();
  await admin.connect();
  const inTopic = uniqueName("in");
  const outTopic = uniqueName("out");
  await createTopics(admin, [inTopic, outTopic], partitions);
  return { kafka, admin, inTopic, outTopic };
}

/** A test's cleanup: its consumer group and topics deleted (best effort), the admin client closed. */
export async function dropTestKafkaState(admin: Admin, group: string, topics: string[]): Promise<void> {
  await admin.deleteGroups([group]).catch(() => {});
  await admin.deleteTopics({ topics }).catch(() => {});
  await admin.disconnect();
}

export async function createTopics(admin: Admin, topics: string[], partitions: number): Promise<void> {
  try {
    await admin.createTopics({
      topics: topics.map((topic) => ({ topic, numPartitions: partitions, replicationFactor: 1 })),
      waitForLeaders: true,
    });
  } catch (err) {
    // Created, but the broker's metadata did not list the topics yet when kafkajs looked for their leaders
    // (seen under load, with other tests creating and deleting topics): kafkajs retries that answer only for
    // a missing leader. Wait until every partition has one.
    const e = err as { type?: string; cause?: { type?: string } };
    if (e.type !== "UNKNOWN_TOPIC_OR_PARTITION" && e.cause?.type !== "UNKNOWN_TOPIC_OR_PARTITION") throw err;
    for (let attempt = 0; ; attempt++) {
      const md = await admin.fetchTopicMetadata({ topics }).catch(() => null);
      const ready =
        md !== null &&
        md.topics.length === topics.length &&
        md.topics.every((t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0));
      if (ready) return;
      if (attempt >= 300) throw err;
      await sleep(100);
    }
  }
}

/** Engine args of the fixture for one input and one output topic. */
export function appArgs(brokers: string, inTopic: string, outTopic: string, extra: string[] = []): string[] {
  const b = brokers.split(",")[0];
  return [
    "--kafka_source_topic",
    inTopic,
    "--kafka_source_brokers",
    b,
    "--kafka_source_log_level",
    "Warn",
    "--kafka_sink_topic",
    outTopic,
    "--kafka_sink_brokers",
    b,
    "--kafka_sink_log_level",
    "Warn",
    ...extra,
  ];
}

export interface Input {
  key: string;
  seq: number;
  big?: boolean;
}

/** `count` records over `keys` keys, seq 0..count-1, keyed so that a key stays in one partition. */
export function makeInput(count: number, keys: number): Input[] {
  return Array.from({ length: count }, (_, seq) => ({ key: `k${seq % keys}`, seq }));
}

export async function produce(kafka: Kafka, topic: string, input: Input[], batch = 2000): Promise<void> {
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    for (let i = 0; i < input.length; i += batch) {
      await producer.send({
        topic,
        acks: -1,
        messages: input
          .slice(i, i + batch)
          .map((r) => ({ key: r.key, value: `${r.key}:${r.seq}${r.big ? ":big" : ""}` })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

export interface Output {
  key: string;
  seq: number;
  count: number;
  partition: number;
  bytes: number;
}

/** Reads the output topic from the beginning, in the background, until stopped. */
export async function collect(
  kafka: Kafka,
  topic: string,
): Promise<{
  out: Output[];
  /** records the collector's consumer was handed again (same partition and offset), not counted in `out` */
  redelivered(): number;
  waitFor(n: number, ms: number): Promise<void>;
  stop(): Promise<void>;
}> {
  const out: Output[] = [];
  const groupId = uniqueName("collector");
  const consumer: Consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 100 });
  // A rebalance of the collector's own group (a session that timed out under load) makes kafkajs hand it
  // records again from the group's last committed offset: the same records (same offsets), not outputs the
  // engine wrote twice, which would have offsets of their own. Counted apart, never in `out`.
  const seen = new Map<number, Set<string>>();
  let again = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      let offsets = seen.get(partition);
      if (offsets === undefined) seen.set(partition, (offsets = new Set()));
      if (offsets.has(message.offset)) {
        again++;
        return;
      }
      offsets.add(message.offset);
      const text = message.value!.toString();
      const [key, seq, count] = text.replace(/#+$/, "").split(":");
      expectKey(message.key?.toString(), key);
      out.push({ key, seq: Number(seq), count: Number(count), partition, bytes: message.value!.length });
    },
  });
  return {
    out,
    redelivered: () => again,
    async waitFor(n, ms) {
      const deadline = Date.now() + ms;
      while (out.length < n) {
        if (Date.now() > deadline) throw new Error(`only ${out.length}/${n} output records within ${ms} ms`);
        await sleep(100);
      }
    },
    async stop() {
      await consumer.disconnect().catch(() => {});
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteGroups([groupId]).catch(() => {});
      await admin.disconnect();
    },
  };
}

function expectKey(got: string | undefined, want: string): void {
  if (got !== want) throw new Error(`output record with key ${got} carries key ${want} in its value`);
}

/**
 * Per key: the outputs in the order they were read must be the key's inputs in
 * order, each counted once (the n-th input of a key has count n; a dropped big
 * record was counted too). With `duplicatesAllowed`, a key's sequence may
 * contain repeats (at-least-once), but every input must be there.
 */
export function checkOutput(input: Input[], out: Output[], duplicatesAllowed: boolean): void {
  const want = new Map<string, number[]>();
  const wantCounts = new Map<string, number[]>();
  const seen = new Map<string, number>();
  for (const r of input) {
    const n = (seen.get(r.key) ?? 0) + 1;
    seen.set(r.key, n);
    if (r.big) continue;
    if (!want.has(r.key)) {
      want.set(r.key, []);
      wantCounts.set(r.key, []);
    }
    want.get(r.key)!.push(r.seq);
    wantCounts.get(r.key)!.push(n);
  }
  const got = new Map<string, Output[]>();
  const partitionOf = new Map<string, number>();
  for (const o of out) {
    if (!got.has(o.key)) got.set(o.key, []);
    got.get(o.key)!.push(o);
    if ((partitionOf.get(o.key) ?? o.partition) !== o.partition)
      throw new Error(`key ${o.key} went to two output partitions`);
    partitionOf.set(o.key, o.partition);
  }
  const keys = [...new Set([...want.keys(), ...got.keys()])];
  for (const key of keys) {
    const w = want.get(key) ?? [];
    const g = got.get(key) ?? [];
    if (!duplicatesAllowed) {
      const seqs = g.map((o) => o.seq);
      const counts = g.map((o) => o.count);
      if (JSON.stringify(seqs) !== JSON.stringify(w))
        throw new Error(`key ${key}: outputs ${brief(seqs)}, expected ${brief(w)}`);
      if (JSON.stringify(counts) !== JSON.stringify(wantCounts.get(key) ?? []))
        throw new Error(`key ${key}: counts ${brief(counts)}`);
    } else {
      const seen = new Set(g.map((o) => o.seq));
      const missing = w.filter((s) => !seen.has(s));
      if (missing.length > 0) throw new Error(`key ${key}: ${missing.length} inputs lost, e.g. ${brief(missing)}`);
      const extra = g.filter((o) => !w.includes(o.seq));
      if (extra.length > 0) throw new Error(`key ${key}: unexpected outputs ${brief(extra.map((o) => o.seq))}`);
    }
  }
}

const brief = (a: number[]) =>
  a.length > 12 ? `[${a.slice(0, 12).join(",")}, ... (${a.length})]` : `[${a.join(",")}]`;

/** `wallaroo run` of the Kafka test app as a child process (test/helpers/engine.ts), not waiting for it to run. */
export const runCli = (args: string[], env: Record<string, string> = {}): Promise<Engine> =>
  startEngine(APP, args, { waitRunning: false, env: { WALLAROO_LOG_LEVEL: "info", ...env } });

/**
 * A broker of its own for the restart test (scripts/kafka/start.sh on `port`),
 * so that stopping it does not disturb tests running against the shared one.
 * restart() stops the JVM (SIGTERM, as stop.sh does) and launches the same
 * command line again on the same data: start.sh would format fresh storage and
 * lose the topics, which is not what a broker restart is.
 */
export class PrivateBroker {
  private readonly env: NodeJS.ProcessEnv;
  private readonly home: string;
  /** `env`: more of start.sh's settings (KAFKA_SSL_PORT, KAFKA_SASL_PORT, ...) */
  constructor(
    readonly port: number,
    env: Record<string, string> = {},
  ) {
    this.env = { ...process.env, KAFKA_PORT: String(port), KAFKA_CONTROLLER_PORT: String(port + 1), ...env };
    this.home = process.env.WALLAROO_KAFKA_HOME ?? join(REPO, ".kafka");
  }

  /** The CA certificate clients trust when start.sh made the test certificates (KAFKA_SSL_PORT and no KAFKA_TLS_DIR). */
  get caFile(): string {
    return join(this.home, "run", String(this.port), "tls", "ca.pem");
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  start(): Promise<void> {
    return this.script("start.sh");
  }

  destroy(): Promise<void> {
    return this.script("stop.sh");
  }

  private get pidFile(): string {
    return join(this.home, `kafka-${this.port}.pid`);
  }

  /** Stops the broker process and waits for it to be gone. */
  async kill(): Promise<string[]> {
    const pid = Number(readFileSync(this.pidFile, "utf8").trim());
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8")
      .split("\0")
      .filter((a) => a.length > 0);
    process.kill(pid, "SIGTERM");
    for (let i = 0; i < 300; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return argv;
      }
      await sleep(100);
    }
    process.kill(pid, "SIGKILL");
    await sleep(500);
    return argv;
  }

  /**
   * Freezes the broker (SIGSTOP): its port still accepts connections (the kernel completes them)
   * but nothing answers, as with a broker stuck in a pause or behind a dead link. thaw() resumes it.
   */
  freeze(): void {
    process.kill(Number(readFileSync(this.pidFile, "utf8").trim()), "SIGSTOP");
  }

  thaw(): void {
    process.kill(Number(readFileSync(this.pidFile, "utf8").trim()), "SIGCONT");
  }

  /** Launches the broker again with `argv` (from kill()), on the same data; resolves once it answers. */
  async relaunch(argv: string[]): Promise<void> {
    const out = openSync(join(this.home, "logs", String(this.port), "kafka.out"), "a");
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", out, out] });
    child.unref();
    writeFileSync(this.pidFile, `${child.pid}\n`);
    const kafka = new Kafka({ brokers: [this.address], logLevel: logLevel.NOTHING, retry: { retries: 0 } });
    for (let i = 0; i < 600; i++) {
      const admin = kafka.admin();
      try {
        await admin.connect();
        await admin.fetchTopicMetadata();
        await admin.disconnect();
        return;
      } catch {
        await admin.disconnect().catch(() => {});
        await sleep(200);
      }
    }
    throw new Error(`broker on ${this.address} did not come back`);
  }

  private script(name: string): Promise<void> {
    return new Promise((res, rej) => {
      const child = spawn("bash", [join(REPO, "scripts/kafka", name)], {
        cwd: REPO,
        env: this.env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let err = "";
      child.stderr.on("data", (d: Buffer) => {
        err += d;
      });
      child.on("exit", (code) => (code === 0 ? res() : rej(new Error(`${name} exited ${code}: ${err}`))));
    });
  }
}

/** Runs `wallaroo kafka ARGS` with `input` on stdin: exit code, stdout, stderr. */
export function wallarooKafka(
  args: string[],
  input = "",
  env: Record<string, string> = {},
): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO, "bin/wallaroo.js"), "kafka", ...args], {
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
    child.stdin.end(input);
  });
}
