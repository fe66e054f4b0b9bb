#!/usr/bin/env node
// Renders a results JSON (written by bench/run.js) into Markdown + SVG charts.
//   node bench/report.mjs [bench/results/latest.json]   re-renders BENCHMARKS.md from saved results
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { barChart } from "./lib/svg.mjs";
import { microTable } from "./micro.bench.mjs";
import { SCENARIOS } from "./scenarios/index.mjs";

const SYSTEMS = ["engine-w1", "engine-w2", "engine-w2-metrics", "hand-written", "piscina"];
const M = (x) => (x == null ? "–" : x >= 999.5e3 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`);
const f = (x, d = 1) => (x == null || Number.isNaN(x) ? "–" : x.toFixed(d));
const us = (x) =>
  x == null
    ? "–"
    : x >= 1e4
      ? `${(x / 1e3).toFixed(0)} ms`
      : x >= 1e3
        ? `${(x / 1e3).toFixed(2)} ms`
        : `${x.toFixed(0)} µs`;

/** The targets of the issue, evaluated on the measured numbers. */
export function targets(e2e) {
  const get = (s, id) => (e2e[s] && !e2e[s].error ? e2e[s][id] : undefined);
  const bestEngine = (s) =>
    ["engine-w1", "engine-w2"]
      .map((id) => get(s, id))
      .filter((r) => r && !r.full.error)
      .sort((a, b) => b.full.unitsPerSec - a.full.unitsPerSec)[0];
  const rows = [];
  const add = (target, measured, met) => rows.push({ target, measured, met });

  const ms = bestEngine("market_spread");
  const msP999 = ms?.half?.latencyUs?.p999;
  add(
    "market_spread ≥ 2 M msgs/s total (best engine config)",
    ms ? `${M(ms.full.unitsPerSec)} msgs/s (${ms.system})` : null,
    ms ? ms.full.unitsPerSec >= 2e6 : null,
  );
  add(
    "market_spread p99.9 < 1 ms at half load (same config)",
    msP999 != null ? `${us(msP999)} (${ms.system})` : null,
    msP999 != null ? msP999 < 1000 : null,
  );
  const wc = get("word_count", "engine-w2");
  const hw = get("word_count", "hand-written");
  const ratio = wc && hw && !wc.full.error && !hw.full.error ? wc.full.unitsPerSec / hw.full.unitsPerSec : null;
  add(
    "word_count, 2 workers ≥ hand-written (ratio ≥ 1.0)",
    ratio != null ? `${ratio.toFixed(2)}×` : null,
    ratio != null ? ratio >= 1 : null,
  );
  add(
    "word_count, 2 workers ≥ 3 M words/s",
    wc && !wc.full.error ? `${M(wc.full.unitsPerSec)} words/s` : null,
    wc && !wc.full.error ? wc.full.unitsPerSec >= 3e6 : null,
  );
  const pt = bestEngine("passthrough");
  add(
    "passthrough ≥ 3 M msgs/s (best engine config)",
    pt ? `${M(pt.full.unitsPerSec)} msgs/s (${pt.system})` : null,
    pt ? pt.full.unitsPerSec >= 3e6 : null,
  );
  // issue 18: windows must not cost more than twice what a hand-written loop spends per event
  const wn = get("windowed_count", "engine-w1");
  const wh = get("windowed_count", "hand-written");
  const cpuRatio =
    wn && wh && !wn.full.error && !wh.full.error ? wn.full.cpuSecPerMUnits / wh.full.cpuSecPerMUnits : null;
  add(
    "windowed_count, 1 worker: CPU per event ≤ 2× hand-written",
    cpuRatio != null ? `${cpuRatio.toFixed(2)}×` : null,
    cpuRatio != null ? cpuRatio <= 2 : null,
  );
  const rss = Object.values(e2e)
    .filter((s) => !s.error)
    .flatMap((s) => Object.values(s))
    .filter((r) => r.kind === "engine")
    .flatMap((r) => [r.full, r.half])
    .filter((x) => x && !x.error)
    .map((x) => x.peakRssMB);
  add(
    "engine peak RSS < 300 MB (all engine runs)",
    rss.length ? `${f(Math.max(...rss), 0)} MB` : null,
    rss.length ? Math.max(...rss) < 300 : null,
  );
  return rows;
}

function scenarioSection(name, res, svgRel) {
  const sc = SCENARIOS[name];
  const out = [`### ${name}`, "", sc.description + ".", ""];
  if (res.error) return [...out, `**FAILED:** ${res.error}`, ""].join("\n");
  const hw = res["hand-written"]?.full;
  const unit = sc.unit;
  out.push(
    `| system | ${unit}/s (median) | min – max | MB/s in | out msgs/s | peak RSS MB | CPU s / M ${unit} | CPU cores busy | vs hand-written |`,
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const id of SYSTEMS) {
    const r = res[id];
    if (!r) continue;
    const x = r.full;
    if (x.error) {
      out.push(`| ${id} | FAILED: ${x.error.replace(/\|/g, "/").slice(0, 300)} ||||||||`);
      continue;
    }
    const ratio = hw && !hw.error ? `${(x.unitsPerSec / hw.unitsPerSec).toFixed(2)}×` : "–";
    out.push(
      `| ${id} | ${M(x.unitsPerSec)} | ${M(x.unitsPerSecMin)} – ${M(x.unitsPerSecMax)} | ${f(x.inMBPerSec)} | ${M(x.outMsgsPerSec)} | ${f(x.peakRssMB, 0)} | ${f(x.cpuSecPerMUnits, 2)} | ${f(x.cpuUtil, 2)} | ${ratio} |`,
    );
  }
  out.push("");
  const withLat = SYSTEMS.map((id) => res[id]).filter((r) => r && (r.full.latencyUs || r.half));
  if (withLat.length) {
    out.push(
      "End-to-end latency (sender stamp → receiver), per load:",
      "",
      "| system | load | msgs/s offered | p50 | p99 | p99.9 | p99.99 | max | samples |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    );
    for (const r of withLat) {
      for (const [load, x] of [
        ["full", r.full],
        ["half", r.half],
      ]) {
        if (!x) continue;
        if (x.error) {
          out.push(`| ${r.system} | ${load} | FAILED: ${x.error.replace(/\|/g, "/").slice(0, 200)} |||||||`);
          continue;
        }
        const l = x.latencyUs;
        const offered = load === "half" ? M(r.half.rates.reduce((a, b) => a + b, 0)) : "unlimited";
        out.push(
          `| ${r.system} | ${load} | ${offered} | ${us(l?.p50)} | ${us(l?.p99)} | ${us(l?.p999)} | ${us(l?.p9999)} | ${us(l?.max)} | ${l ? l.samples : "–"} |`,
        );
      }
    }
    out.push("");
  }
  out.push(`![${name} throughput](${svgRel}/${name}-throughput.svg)`);
  if (withLat.length) out.push(`![${name} latency](${svgRel}/${name}-latency.svg)`);
  out.push("");
  return out.join("\n");
}

function charts(name, res, svgDir) {
  if (res.error) return;
  const sc = SCENARIOS[name];
  const ids = SYSTEMS.filter((id) => res[id]);
  writeFileSync(
    join(svgDir, `${name}-throughput.svg`),
    barChart({
      title: `${name}: throughput by system and workers`,
      unit: `${sc.unit}/s`,
      series: ["median"],
      rows: ids.map((id) => ({
        label: `${id} (${res[id].workers} thr)`,
        values: [res[id].full.error ? null : res[id].full.unitsPerSec],
      })),
      fmt: M,
    }),
  );
  const lat = ids.flatMap((id) =>
    [
      ["full", res[id].full],
      ["half", res[id].half],
    ]
      .filter(([, x]) => x?.latencyUs)
      .map(([load, x]) => ({
        label: `${id} ${load}`,
        values: ["p50", "p99", "p999", "p9999"].map((k) => x.latencyUs[k]),
      })),
  );
  if (lat.length) {
    writeFileSync(
      join(svgDir, `${name}-latency.svg`),
      barChart({
        title: `${name}: end-to-end latency percentiles`,
        unit: "latency",
        log: true,
        series: ["p50", "p99", "p99.9", "p99.99"],
        rows: lat,
        fmt: us,
      }),
    );
  }
}

function ringSection(ring) {
  if (!ring) return "not run";
  if (ring.error) return `**FAILED:** ${ring.error}`;
  if (!ring.throughput) return `skipped: ${ring.skipped ?? "no results"}`;
  const out = ["| channel | frame | M frames/s | MB/s | vs ours (a) |", "|---|---:|---:|---:|---:|"];
  for (const r of ring.throughput)
    out.push(
      `| ${r.kind} | ${r.size} B | ${(r.framesPerSec / 1e6).toFixed(2)} | ${f(r.mbPerSec, 0)} | ${r.vsOurs == null ? "–" : r.vsOurs.toFixed(2) + "×"} |`,
    );
  out.push("", "| doorbell spinChecks | blocking phase | round trip |", "|---:|---:|---:|");
  for (const p of ring.doorbellPingPong ?? [])
    out.push(`| ${p.spinChecks} | ${p.syncParkMs ? `${p.syncParkMs} ms` : "none"} | ${f(p.roundTripUs)} µs |`);
  out.push(
    "",
    "(kinds: ours = our SPSC ring parking on a doorbell, ours-spin = busy-polling, ringbuf = ringbuf.js, pm1 = one postMessage per frame, pmb = postMessage of 256-frame batches; see bench/ring.bench.mjs)",
  );
  return out.join("\n");
}

export function render(results, { mdPath, svgDir }) {
  mkdirSync(svgDir, { recursive: true });
  const svgRel = relative(dirname(mdPath), svgDir) || ".";
  const m = results.meta;
  const out = [
    "# Benchmarks",
    "",
    `Generated by \`npm run bench${results.quick ? " -- --quick" : ""}\` on ${m.date} (${f(results.totalSec, 0)} s). ` +
      `Do not edit by hand: \`node bench/report.mjs ${results.jsonPath ?? "bench/results/latest.json"}\` re-renders it from the raw results.`,
    "",
    results.quick
      ? "> **--quick run**: one short run per configuration and only some configurations; a smoke test, not numbers to quote.\n"
      : "",
    "## Machine",
    "",
    `- CPU: ${m.cpuModel}, ${m.cores} cores (${m.parallelism} available to Node)`,
    `- Node ${m.node}, ${m.platform}`,
    `- load average at start: ${m.loadavg.map((x) => x.toFixed(2)).join(" ")}${m.loadavg[0] > m.cores * 0.25 ? " (**the machine was busy: numbers are noisy**)" : ""}`,
    `- git: ${m.git}`,
    `- profile: warm-up ${results.profile.warmupS} s, window ${results.profile.windowS} s, ${results.profile.runs} run(s) per configuration (median shown, min – max of throughput)`,
    "",
    "## Targets",
    "",
    "| target | measured | met |",
    "|---|---|---|",
    ...targets(results.e2e).map(
      (t) => `| ${t.target} | ${t.measured ?? "not measured"} | ${t.met == null ? "–" : t.met ? "✅ yes" : "❌ no"} |`,
    ),
    "",
    "## End to end",
    "",
    "Every stage is its own OS process on loopback: load generators (bench/tools/loadgen.mjs, pre-built frames, 2 connections per source), " +
      "the system under test, and a counting receiver (bench/tools/counter.mjs). Throughput is measured over the window after the warm-up " +
      "at the receiver: passthrough and alphabet emit one message per input, word_count one line per word, and market_spread's input rate is its " +
      "rejections × 10 (exactly every 10th order of the data is rejected) scaled by the NBBO/orders ratio the senders wrote. (What the senders write " +
      "overstates throughput by whatever queues up in socket buffers and rings during the window; it is kept in the JSON as sentMsgsPerSec.) " +
      "CPU and RSS are the system under test's (all threads, /proc). **The engine binds each source connection to one worker** (round robin), so a " +
      "source needs at least as many connections as workers to use them all; the senders open 2 per source. `hand-written` is one thread doing the job directly on sockets; " +
      "`piscina` is the main thread cutting frames and handing batches to a 2-thread pool — state cannot be pinned to a piscina thread, so stateful steps (counts, letter totals, symbol state) run on the main thread and only the stateless part (split, decode) runs in the pool. " +
      'Latency: the sender stamps CLOCK_MONOTONIC (process.hrtime, one clock for all processes on Linux) into each message; "full" is at unlimited rate (mostly queueing in socket buffers and rings), "half" is rate-limited to half of that configuration\'s measured throughput.',
    "",
  ];
  for (const [name, res] of Object.entries(results.e2e)) {
    out.push(scenarioSection(name, res, svgRel));
    charts(name, res, svgDir);
  }
  out.push(
    "## Micro benchmarks (single thread, tinybench)",
    "",
    Array.isArray(results.micro)
      ? microTable(results.micro)
      : results.micro?.error
        ? `**FAILED:** ${results.micro.error}`
        : `skipped: ${results.micro?.skipped ?? "not run"}`,
    "",
    "## Inter-thread channels (bench/ring.bench.mjs)",
    "",
    ringSection(results.ring),
    "",
    "## What limits the engine",
    "",
    "Profiles, what was optimized against them and what limits the numbers above: [bench/ANALYSIS.md](bench/ANALYSIS.md).",
    "",
    "## Resilience",
    "",
    resilienceSection(results.resilience),
    "",
    "## Kafka",
    "",
    kafkaSection(results.kafka),
    "",
    "## Scaling with workers",
    "",
    scaleSection(results.scale, svgDir, svgRel),
    "",
    "## Reproduce",
    "",
    "```sh",
    "npm run bench              # everything, ~25 min; writes BENCHMARKS.md, bench/results/latest.json and bench/results/*.svg",
    "node bench/run.js --kafka-only   # only the Kafka step (with the peers), merged into latest.json, then re-renders this file",
    "npm run bench -- --quick   # < 1 min smoke run; writes bench/results/quick/ only",
    "npm run bench -- --scale 1,2,4,8   # scaling mode only: bench/results/scale.json, then re-renders this file",
    "```",
    "",
    "See bench/README.md for running single pieces. Run on an otherwise idle machine: the engine, the senders and the receiver share the cores.",
    "",
  );
  writeFileSync(mdPath, out.join("\n"));
}

function resilienceSection(r) {
  if (!r) return "not run";
  if (r.skipped) return `skipped: ${r.skipped}`;
  if (r.error) return `**FAILED:** ${r.error}`;
  const off = (rings) => r.summary.find((s) => !s.resilience && s.ringBytes === rings);
  const rows = r.summary.map((s) => {
    const base = off(s.ringBytes);
    const cost = s.resilience && base ? `${(100 * (1 - s.wordsPerSec / base.wordsPerSec)).toFixed(0)}%` : "";
    return `| ${s.resilience ? "on" : "off"} | ${s.ringBytes / 1024} KiB | ${fmtRate(s.wordsPerSec)} | ${cost} | ${s.resilience ? `${s.pauseMsP50.toFixed(0)} ms` : ""} |`;
  });
  const perCheckpoint = r.runs
    .filter((x) => x.resilience)
    .map((x) => x.bytesPerCheckpoint)
    .filter((x) => x > 0);
  const rec = r.recovery.map(
    (x) =>
      `| ${x.keys} | ${x.instancesRestored} | ${x.restoreMs} ms | ${(x.restartToRunningMs / 1000).toFixed(1)} s | ${(x.storeBytes / 1e6).toFixed(1)} MB | ${x.biggestCheckpoint ? `${x.biggestCheckpoint.pauseMs?.toFixed?.(0) ?? x.biggestCheckpoint.pauseMs} ms` : ""} |`,
  );
  return [
    "examples/word_count over TCP on 2 workers, `--checkpoint-interval 1`, resilience off and on alternating in the same run " +
      "(bench/resilience.bench.mjs). Checkpoints stop the sources and drain the rings, so their pause grows with the ring size; the cost column is the throughput lost against the same rings without resilience.",
    "",
    "| resilience | rings | words/s (median) | cost | checkpoint pause p50 |",
    "|---|---:|---:|---:|---:|",
    ...rows,
    "",
    `Bytes written per checkpoint (25 word-count instances): ${perCheckpoint.length ? Math.round(perCheckpoint.reduce((a, b) => a + b, 0) / perCheckpoint.length) : "n/a"}.`,
    "",
    "Recovery (bench/apps/keyed_count.ts: one state instance per key, checkpointed, then restarted):",
    "",
    "| keys | instances restored | restore into workers | restart until sources open | store size | pause of the largest checkpoint |",
    "|---:|---:|---:|---:|---:|---:|",
    ...rec,
  ].join("\n");
}

function kafkaSection(k) {
  if (!k) return "not run";
  if (k.skipped) return `skipped: ${k.skipped}`;
  if (k.error) return `**FAILED:** ${k.error}`;
  if (k.markdown) return k.markdown;
  return [
    kafkaLoopsSection(k.output),
    "",
    "### Word count against Kafka Streams and Flink",
    "",
    kafkaPeersSection(k.peers),
  ].join("\n");
}

/** A row of kafka.bench.mjs that did not run: its reason. */
const notRun = (r) =>
  r.error ? `**FAILED:** ${r.error}` : r.skipped ? `skipped: ${r.skipped}` : "no rate (no output measured)";
const fmtMB = (r) => (r.peakRssMB ? `${r.peakRssMB} MB` : "");

/** celsius: the engine against plain kafkajs loops on the same data */
function kafkaLoopsSection(o) {
  if (o?.error) return `**FAILED:** ${o.error}`;
  if (!o || typeof o !== "object" || !Array.isArray(o.results))
    return "```\n" + (typeof o === "string" ? o : JSON.stringify(o, null, 2)) + "\n```";
  // kafka.bench.mjs reports `perSec` with its `unit` (records/s, words/s); older results had msgsPerSec
  const rate = (r) => r.perSec ?? r.msgsPerSec;
  // a run too short for a first-to-last span (--quick) is rated from its ready line: marked *
  const mark = (r) => (r.rateFrom === "ready" ? "*" : "");
  const loop = o.results.find((r) => /transform-produce loop/.test(r.name));
  const rows = o.results.map((r) =>
    rate(r) == null
      ? `| ${r.name} | ${notRun(r)} | | | | |`
      : `| ${r.name} | ${fmtRate(rate(r))} ${r.unit ?? "msgs/s"}${mark(r)} | ${r.seconds.toFixed(2)} | ${r.cpuSeconds?.toFixed(1) ?? ""} | ${fmtMB(r)} | ${loop ? (rate(r) / rate(loop)).toFixed(2) + "×" : ""} |`,
  );
  return [
    `${o.app ? `${o.app}: ` : ""}${o.messages} messages over a topic with ${o.partitions} partitions, broker ${o.brokers}, ${o.workers} engine workers${o.loadavg ? `, load average at the start ${o.loadavg.map((x) => x.toFixed(2)).join(" ")}` : ""}; kafkajs (patched, see bench/ANALYSIS.md "Kafka") is the client. ` +
      "The engine runs as `wallaroo run` (a child process: its CPU s and peak RSS are its own) and is rated from its first to its last output, as are the peers (full runs: Kafka Streams and Flink, configured as listed under the word count below); the kafkajs loops from the group join. " +
      "The last column is the ratio to the plain kafkajs consume-transform-produce loop, measured in the same run.",
    "",
    "| what | rate | seconds | CPU s | peak RSS | vs plain loop |",
    "|---|---:|---:|---:|---:|---:|",
    ...rows,
    ...(o.results.some((r) => mark(r))
      ? [
          "",
          "\\* all its output came within a few polls (too few messages): rated from its ready line to the last output.",
        ]
      : []),
  ].join("\n");
}

/** word_count: the engine, Kafka Streams and Flink side by side (bench/kafka.bench.mjs --peers) */
export function kafkaPeersSection(p) {
  if (!p) return "not run";
  if (p.skipped) return `skipped: ${p.skipped}`;
  if (p.error) return `**FAILED:** ${p.error}`;
  const o = p.output;
  if (!o || typeof o !== "object" || !Array.isArray(o.results))
    return "```\n" + (typeof o === "string" ? o : JSON.stringify(o, null, 2)) + "\n```";
  const engineAt = (threads) => o.results.find((r) => r.engine && r.threads === threads && r.perSec != null);
  const rows = o.results.map((r) => {
    if (r.perSec == null) return `| ${r.system} | ${r.threads} | ${notRun(r)} | | | | | | |`;
    const e = engineAt(r.threads);
    const msgs = o.messages / (r.rateSeconds ?? r.firstToLastSeconds);
    const name = !r.engine ? r.system : r.system === "engine" ? "**this engine**" : `**${r.system}** (this engine)`;
    return `| ${name} | ${r.threads} | ${fmtRate(r.perSec)}${r.rateFrom === "ready" ? " (from ready)" : ""} | ${fmtRate(msgs)} | ${r.cpuSeconds.toFixed(1)} | ${r.cpuTotalSeconds?.toFixed(1) ?? ""} | ${fmtMB(r)} | ${e ? `${(r.perSec / e.perSec).toFixed(2)}×` : ""} | ${r.verified ? "exact" : "not checked"} |`;
  });
  const configs = [...new Map(o.results.filter((r) => r.config).map((r) => [r.system, r.config])).entries()];
  return [
    `${o.messages.toLocaleString("en-US")} lines (${o.outputs.toLocaleString("en-US")} words) in a topic with ${o.partitions} partitions, broker ${o.brokers}, ` +
      `load average at the start ${o.loadavg ? o.loadavg.map((x) => x.toFixed(2)).join(" ") : "not recorded"}. ` +
      "Each system reads the whole backlog (its own consumer group, from the earliest offset) and writes one record per word occurrence, " +
      "key = the word, value `word => count` with its running count, into its own output topic with as many partitions, placed by the Java client's default partitioner (murmur2 of the key). " +
      "Every output is read back and checked exact: each word's values are 1, 2, ... its occurrences, in order, all in the word's murmur2 partition.",
    "",
    "| system | threads | words/s | lines/s (msgs/s) | CPU s | CPU s with start-up | peak RSS | × engine (same threads) | output |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ...rows,
    "",
    "How it is measured and configured (`node bench/kafka.bench.mjs --app word_count --peers --workers 1,2 --engines-only`):",
    "",
    "- words/s and lines/s: from the first to the last output record acknowledged by the broker (the output topic's high-water marks, polled every 50 ms), so start-up (JVM, Flink's job submission, group joins) is left out for everyone. " +
      "CPU s: utime+stime of the system's process (all its threads), from its ready line (engine: group joined; Kafka Streams: RUNNING; Flink: job RUNNING) to the last output; with start-up: from the process's start. Peak RSS: VmHWM of that process.",
    "- the same for everyone: one broker, the same input topic and partition count, threads = engine workers = Kafka Streams stream threads = Flink parallelism, " +
      "producer acks=all, exactly-once off (the engine without `--resilience-dir`), each run on its own while the others are stopped; JVMs and Node with their default flags; " +
      "other client settings (batching, fetch sizes) at each system's defaults (Kafka Streams sets linger.ms 100 for its producers).",
    `- **this engine**: \`wallaroo run examples/word_count_kafka/app.ts --workers N\` (kafkajs, sink acks -1, no transactions); state partitioned by first letter as in examples/word_count.`,
    ...configs.map(([system, config]) => `- **${system}**: ${config}.`),
  ].join("\n");
}

/** The scaling table of `npm run bench -- --scale`, kept in bench/results/scale.json across full runs. */
export function scaleSection(sc, svgDir, svgRel) {
  if (!sc)
    return "Not measured yet: `npm run bench -- --scale 1,2,4,8` (bench/scale.mjs) on a machine with that many cores.";
  if (sc.error) return `**FAILED:** ${sc.error}`;
  const m = sc.meta ?? {};
  const pct = (x) => (x == null ? "–" : `${(x * 100).toFixed(0)}%`);
  const x = (v) => (v == null ? "–" : `${v.toFixed(2)}×`);
  const out = [
    `Measured ${m.date ?? ""} on **${m.cpuModel ?? "unknown CPU"}, ${sc.cores} cores**, Node ${m.node ?? "?"}, git ${m.git ?? "?"}` +
      `${m.loadavg ? `, load at start ${m.loadavg.map((v) => v.toFixed(2)).join(" ")}` : ""}; ` +
      `warm-up ${sc.profile.warmupS} s, window ${sc.profile.windowS} s, median of ${sc.profile.runs} run(s). ` +
      "Efficiency = thr(N) / (N × thr(1)). Load generators are added (one process per 4 workers and source to start, doubled while one " +
      'used more than 85% of a core) so that they are not the limit; "limited by" names the helper process that still was.' +
      (sc.skippedCounts?.length ? ` Left out: ${sc.skippedCounts.join(", ")} workers (more than the cores).` : ""),
    "",
  ];
  const rows = [];
  for (const [name, s] of Object.entries(sc.scenarios)) {
    const hw = s.handWritten;
    out.push(
      `**${name}** (${s.unit}/s; hand-written single thread: ${hw.error ? `FAILED ${hw.error}` : `${fmtRate(hw.unitsPerSec)}, ${hw.cpuSecPerMUnits.toFixed(2)} CPU-s per M${hw.limitedBy ? `, limited by the ${hw.limitedBy}` : ""}`})`,
      "",
      "| workers | throughput | speed-up | efficiency | × hand-written | CPU-s per M | CPU × hand-written | peak RSS | RSS per added worker | generators × conns | limited by |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    );
    for (const p of s.points) {
      if (p.error) {
        out.push(`| ${p.workers} | FAILED: ${p.error} ||||||||||`);
        continue;
      }
      out.push(
        `| ${p.workers} | ${fmtRate(p.unitsPerSec)} | ${x(p.speedup)} | ${pct(p.efficiency)} | ${x(p.vsHandWritten)} | ${p.cpuSecPerMUnits.toFixed(2)} | ${x(p.cpuVsHandWritten)} | ` +
          `${p.peakRssMB.toFixed(0)} MB | ${p.rssPerAddedWorkerMB == null ? "–" : `${p.rssPerAddedWorkerMB.toFixed(0)} MB`} | ${p.generators} × ${p.connections} | ${p.limitedBy ?? "–"} |`,
      );
    }
    out.push("");
    rows.push([name, s]);
  }
  if (svgDir && rows.length) {
    const counts = sc.counts;
    const chart = barChart({
      title: "Engine throughput per worker count (× one hand-written thread)",
      unit: "×",
      series: counts.map((n) => `${n} worker${n > 1 ? "s" : ""}`),
      rows: rows.map(([name, s]) => ({
        label: name,
        values: counts.map((n) => s.points.find((p) => p.workers === n)?.vsHandWritten ?? null),
      })),
      fmt: (v) => `${v.toFixed(2)}×`,
    });
    writeFileSync(join(svgDir, "scaling.svg"), chart);
    out.push(`![scaling](${svgRel}/scaling.svg)`, "");
  }
  return out.join("\n");
}

/** The last `--scale` results kept in DIR/scale.json, or undefined. */
export function loadScale(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, "scale.json"), "utf8"));
  } catch {
    return undefined;
  }
}

function fmtRate(r) {
  return r >= 1e6 ? `${(r / 1e6).toFixed(2)} M` : r >= 1e3 ? `${(r / 1e3).toFixed(1)} k` : r.toFixed(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const root = fileURLToPath(new URL("../", import.meta.url));
  const file = process.argv[2] ?? join(root, "bench/results/latest.json");
  const results = JSON.parse(readFileSync(file, "utf8"));
  const quick = results.quick;
  results.scale = loadScale(join(root, quick ? "bench/results/quick" : "bench/results"));
  render(
    results,
    quick
      ? { mdPath: join(root, "bench/results/quick/BENCHMARKS.md"), svgDir: join(root, "bench/results/quick") }
      : { mdPath: join(root, "BENCHMARKS.md"), svgDir: join(root, "bench/results") },
  );
}
