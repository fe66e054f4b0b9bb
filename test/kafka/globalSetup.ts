/**
 * Vitest globalSetup: provides a real single-node Kafka broker to the tests.
 *
 * - KAFKA_BROKERS set            -> use that (comma-separated host:port list), start nothing.
 * - java (or mvn, when the jar cache is empty) missing
 *     - CI set                   -> throw: Kafka tests must run in CI.
 *     - otherwise                -> skip: provide kafkaBrokers = "" and a reason.
 * - otherwise                    -> scripts/kafka/start.sh on 127.0.0.1:19092 (controller 19093)
 *                                   so a developer's own broker on 9092 is left alone; teardown
 *                                   runs stop.sh only if this setup started the broker (or
 *                                   adopted one left behind by an interrupted run).
 *                                   WALLAROO_KAFKA_KEEP=1 keeps it running for the next run.
 *
 * Tests read the values with `inject('kafkaBrokers')` / `inject('kafkaSkipReason')`.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    /** Comma-separated bootstrap brokers, or "" when the Kafka tests are skipped. */
    kafkaBrokers: string;
    /** Why the Kafka tests are skipped ("" when kafkaBrokers is set). */
    kafkaSkipReason: string;
  }
}

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const SCRIPTS = join(REPO, "scripts/kafka");
const KAFKA_HOME = process.env.WALLAROO_KAFKA_HOME ?? join(REPO, ".kafka");
const TEST_PORT = process.env.WALLAROO_TEST_KAFKA_PORT ?? "19092";
const TEST_CONTROLLER_PORT = process.env.WALLAROO_TEST_KAFKA_CONTROLLER_PORT ?? String(Number(TEST_PORT) + 1);

let startedByUs = false;

/**
 * Records which vitest process started the test broker, so that a broker left
 * behind by an interrupted run (owner gone) is adopted and stopped at teardown,
 * while a broker owned by a concurrent run or started by hand is left alone.
 * stop.sh deletes this file together with the rest of run/<port>/.
 */
const OWNER_FILE = join(KAFKA_HOME, "run", TEST_PORT, "vitest-owner.pid");

function ownerIsGone(): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(OWNER_FILE, "utf8").trim());
  } catch {
    return false; // no owner file: started by hand (npm run kafka:start), leave it alone
  }
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function hasCommand(cmd: string, args: string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: "ignore" });
  return !r.error && r.status === 0;
}

function scriptEnv(): NodeJS.ProcessEnv {
  return { ...process.env, KAFKA_PORT: TEST_PORT, KAFKA_CONTROLLER_PORT: TEST_CONTROLLER_PORT };
}

/** Run a script, echoing its output line by line; resolves with its stdout. */
function runScript(script: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn("bash", [join(SCRIPTS, script)], {
      cwd: REPO,
      env: scriptEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d;
      process.stdout.write(d);
    });
    child.stderr.on("data", (d: Buffer) => {
      err += d;
      process.stderr.write(d);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolvePromise(out);
      else reject(new Error(`scripts/kafka/${script} exited with code ${code}\n${err.trim()}`));
    });
  });
}

function skip(project: TestProject, reason: string): void {
  if (process.env.CI) {
    throw new Error(`${reason}: Kafka tests must run in CI (install Java 17+ and Maven, or set KAFKA_BROKERS)`);
  }
  console.warn(`\n*** Kafka tests skipped: ${reason} ***\n`);
  process.env.WALLAROO_KAFKA_SKIP = "1";
  project.provide("kafkaBrokers", "");
  project.provide("kafkaSkipReason", reason);
}

export async function setup(project: TestProject): Promise<void> {
  const external = process.env.KAFKA_BROKERS?.trim();
  if (external) {
    project.provide("kafkaBrokers", external);
    project.provide("kafkaSkipReason", "");
    return;
  }

  const haveJava = hasCommand("java", ["-version"]);
  const haveJars = existsSync(join(KAFKA_HOME, "libs", ".complete"));
  const haveMvn = haveJars || hasCommand("mvn", ["-v"]);
  if (!haveJava || !haveMvn) {
    const missing = [!haveJava && "java", !haveMvn && "mvn"].filter(Boolean).join("/");
    skip(project, `${missing} not found`);
    return;
  }

  const out = await runScript("start.sh");
  const ready = /kafka: READY (\S+) \((started|reused)\)/.exec(out);
  if (!ready) throw new Error("scripts/kafka/start.sh did not report READY");
  startedByUs = ready[2] === "started" || ownerIsGone();
  if (startedByUs) writeFileSync(OWNER_FILE, `${process.pid}\n`);
  project.provide("kafkaBrokers", ready[1]!);
  project.provide("kafkaSkipReason", "");
}

export async function teardown(): Promise<void> {
  if (!startedByUs || process.env.WALLAROO_KAFKA_KEEP === "1") return;
  startedByUs = false;
  await runScript("stop.sh");
}
