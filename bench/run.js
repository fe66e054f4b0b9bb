#!/usr/bin/env node
// `npm run bench [-- --quick]`: micro benchmarks, the inter-thread ring benchmark, the end-to-end
// scenarios (engine at 1 and 2 workers, hand-written and piscina baselines) and, when a broker is
// reachable (or one can be started), the Kafka benchmark: celsius against kafkajs loops and, full runs
// only, the word count against Kafka Streams and Flink; then the raw results (JSON) and the report.
//   full:    BENCHMARKS.md, bench/results/latest.json, bench/results/*.svg   (~25 min)
//   --quick: bench/results/quick/{BENCHMARKS.md,quick.json,*.svg}             (< 1 min, smoke run)
// Options: --scenario a,b (subset of end-to-end scenarios), --skip micro,ring,e2e,kafka
//   --kafka-only: only the Kafka step, merged into the saved results (bench/results/latest.json) and re-rendered
//   --scale 1,2,4,8: only the scaling mode (bench/scale.mjs): writes bench/results/scale.json (with --quick:
//   bench/results/quick/scale.json) and re-renders BENCHMARKS.md from the saved results with it
import { execFile, execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { killAll } from "./lib/procs.mjs";
import { runMicro } from "./micro.bench.mjs";
import { runScenario, PROFILES } from "./e2e.mjs";
import { render, loadScale } from "./report.mjs";
import { runScale } from "./scale.mjs";
import { SCENARIOS } from "./scenarios/index.mjs";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const argv = process.argv.slice(2);
const val = (flag) => {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = argv.includes("--quick");
const skip = new Set(val("--skip")?.split(",") ?? []);
const scenarios = val("--scenario")?.split(",") ?? Object.keys(SCENARIOS);
const log = (s) => process.stderr.write(s + "\n");
const t0 = performance.now();

function meta() {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  let git = "unknown";
  try {
    git = execFileSync("git", ["describe", "--always", "--dirty"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    /* not a checkout */
  }
  return {
    date: new Date().toISOString(),
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? "unknown",
    cores: (cpuinfo.match(/^processor\s*:/gm) ?? []).length,
    parallelism: os.availableParallelism(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    loadavg: os.loadavg(),
    git,
  };
}

/** Runs a node script, resolves to its stdout; rejects with its stderr tail. */
function runScript(file, args, timeoutMs) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [file, ...args],
      { cwd: ROOT, timeout: timeoutMs, maxBuffer: 64 << 20, killSignal: "SIGKILL" },
      (err, stdout, stderr) =>
        err
          ? reject(new Error(`${err.message.split("\n")[0]}: ${stderr.trim().split("\n").slice(-5).join(" | ")}`))
          : resolve(stdout),
    );
  });
}

function reachable(host, port, ms = 1500) {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(ms, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

async function kafka() {
  const file = join(ROOT, "bench/kafka.bench.mjs");
  if (!existsSync(file)) return { skipped: "bench/kafka.bench.mjs does not exist" };
  let brokers = process.env.KAFKA_BROKERS ?? "127.0.0.1:9092";
  const [host, port = "9092"] = brokers.split(",")[0].split(":");
  let started = null;
  if (!(await reachable(host, Number(port)))) {
    if (process.env.KAFKA_BROKERS) return { skipped: `no Kafka broker reachable at ${host}:${port} (KAFKA_BROKERS)` };
    // No broker running: start one of our own (scripts/kafka, jars from Maven Central) for this run.
    started = process.env.WALLAROO_BENCH_KAFKA_PORT ?? "19492";
    log(`   starting a Kafka broker on 127.0.0.1:${started} (scripts/kafka/start.sh)`);
    const r = spawnSync("bash", [join(ROOT, "scripts/kafka/start.sh")], {
      env: { ...process.env, KAFKA_PORT: started },
      encoding: "utf8",
    });
    if (r.status !== 0)
      return {
        skipped: `no Kafka broker reachable at ${host}:${port}, and scripts/kafka/start.sh failed (Java 17 and Maven needed): ${(r.stderr || r.stdout).trim().split("\n").pop()}`,
      };
    brokers = `127.0.0.1:${started}`;
  }
  const json = (stdout) => {
    try {
      return JSON.parse(stdout);
    } catch {
      return stdout.trim();
    }
  };
  try {
    // the two runs are independent: a failure of one is written into the report, the other still runs
    let output;
    try {
      output = json(
        await runScript(
          file,
          // celsius (the default app); full runs add the peers (Kafka Streams, Flink)
          ["--brokers", brokers, "--json", ...(quick ? ["--messages", "20000"] : ["--peers"])],
          quick ? 120000 : 600000,
        ),
      );
    } catch (e) {
      log(`   kafka celsius FAILED: ${e.message}`);
      output = { error: e.message };
    }
    return { brokers, output, peers: quick ? { skipped: PEERS_QUICK } : await kafkaPeers(file, brokers) };
  } finally {
    if (started)
      spawnSync("bash", [join(ROOT, "scripts/kafka/stop.sh")], { env: { ...process.env, KAFKA_PORT: started } });
  }
}

const PEERS_QUICK = "not run with --quick (the full run measures the word count against Kafka Streams and Flink)";

/**
 * The word count over Kafka of the engine and its peers (Kafka Streams, Flink: bench/peers/, built
 * by kafka.bench.mjs when Java and Maven are here; a peer that cannot be built or run is a row
 * with its reason), 1 and 2 threads each, the issue's data size: 200,000 lines, 4 partitions.
 */
async function kafkaPeers(file, brokers) {
  log("   word count: engine, Kafka Streams, Flink (1 and 2 threads; ~10 min)");
  try {
    const args = ["--brokers", brokers, "--json", "--app", "word_count", "--messages", "200000", "--partitions", "4"];
    const stdout = await runScript(file, [...args, "--workers", "1,2", "--peers", "--engines-only"], 2_400_000);
    return { output: JSON.parse(stdout) };
  } catch (e) {
    log(`   kafka peers FAILED: ${e.message}`);
    return { error: e.message };
  }
}

async function step(name, fn) {
  if (skip.has(name)) return { skipped: "skipped with --skip" };
  log(`== ${name}`);
  try {
    return await fn();
  } catch (e) {
    log(`   ${name} FAILED: ${e.message}`);
    return { error: e.message };
  }
}

const outDir = quick ? join(ROOT, "bench/results/quick") : join(ROOT, "bench/results");
const jsonPath = quick ? "bench/results/quick/quick.json" : "bench/results/latest.json";
const mdPath = quick ? join(outDir, "BENCHMARKS.md") : join(ROOT, "BENCHMARKS.md");

if (val("--scale")) {
  const counts = val("--scale").split(",").map(Number);
  if (counts.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`--scale wants worker counts like 1,2,4,8, got ${val("--scale")}`);
  const m = meta();
  log(`machine: ${m.cpuModel}, ${m.cores} cores, load ${m.loadavg.map((x) => x.toFixed(2)).join(" ")}`);
  const scale = { meta: m, ...(await runScale({ counts, scenarios: val("--scenario")?.split(","), quick, log })) };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "scale.json"), JSON.stringify(scale, null, 2) + "\n");
  let saved = null;
  try {
    saved = JSON.parse(readFileSync(join(ROOT, jsonPath), "utf8"));
  } catch {
    /* no full run saved yet */
  }
  if (saved) render({ ...saved, scale }, { mdPath, svgDir: outDir });
  log(
    `wrote ${join(outDir, "scale.json").slice(ROOT.length)}${saved ? ` and ${mdPath.slice(ROOT.length)}` : ` (no ${jsonPath} to render ${mdPath.slice(ROOT.length)} from)`} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  killAll();
  process.exit(0);
}

if (argv.includes("--kafka-only")) {
  // Only the Kafka step, merged into the saved full run (its other sections stay as measured), then re-rendered.
  if (!existsSync(join(ROOT, jsonPath))) {
    log(`--kafka-only merges into a saved run, and there is no ${jsonPath}: run npm run bench first`);
    process.exit(2);
  }
  const saved = JSON.parse(readFileSync(join(ROOT, jsonPath), "utf8"));
  const m = meta();
  log(`machine: ${m.cpuModel}, ${m.cores} cores, load ${m.loadavg.map((x) => x.toFixed(2)).join(" ")}`);
  saved.kafka = { ...(await step("kafka", kafka)), meta: m };
  writeFileSync(join(ROOT, jsonPath), JSON.stringify(saved, null, 2) + "\n");
  render({ ...saved, scale: loadScale(outDir) }, { mdPath, svgDir: outDir });
  log(
    `wrote ${jsonPath} (kafka) and ${mdPath.slice(ROOT.length)} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  killAll();
  process.exit(0);
}

const results = { meta: meta(), quick, profile: quick ? PROFILES.quick : PROFILES.full };
log(
  `machine: ${results.meta.cpuModel}, ${results.meta.cores} cores, load ${results.meta.loadavg.map((x) => x.toFixed(2)).join(" ")}`,
);
results.micro = await step("micro", () => runMicro({ quick }));
results.ring = await step("ring", async () =>
  JSON.parse(
    await runScript(
      join(ROOT, "bench/ring.bench.mjs"),
      ["--json", ...(quick ? ["--quick", "--only=ours,ringbuf,pmb"] : [])],
      300000,
    ),
  ),
);
results.e2e = {};
if (!skip.has("e2e")) {
  for (const name of scenarios) {
    log(`== e2e ${name}`);
    try {
      results.e2e[name] = await runScenario(SCENARIOS[name], { quick, log });
    } catch (e) {
      log(`   ${name} FAILED: ${e.message}`);
      results.e2e[name] = { error: e.message };
    }
  }
}
results.resilience = await step("resilience", async () =>
  JSON.parse(
    await runScript(
      join(ROOT, "bench/resilience.bench.mjs"),
      quick ? ["--quick", "--keys", "10000"] : ["--runs", "2", "--window", "6", "--keys", "10000,100000,1000000"],
      quick ? 180000 : 900000,
    ),
  ),
);
results.kafka = await step("kafka", kafka);
if (results.kafka.skipped) log(`   kafka skipped: ${results.kafka.skipped}`);
results.totalSec = (performance.now() - t0) / 1000;

mkdirSync(outDir, { recursive: true });
results.jsonPath = jsonPath;
writeFileSync(join(ROOT, results.jsonPath), JSON.stringify(results, null, 2) + "\n");
// the scaling table comes from the last --scale run (often on another, bigger machine: it names it)
render({ ...results, scale: loadScale(outDir) }, { mdPath, svgDir: outDir });
log(`wrote ${results.jsonPath} and ${mdPath.slice(ROOT.length)} in ${results.totalSec.toFixed(1)} s`);
killAll();
process.exit(0);
