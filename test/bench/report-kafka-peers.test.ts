// The Kafka peers table of BENCHMARKS.md (bench/report.mjs): every system of a run is a row,
// one that did not run says why, and the ratio is to the engine at the same thread count.
import { describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs module of the bench, without type declarations
import { kafkaPeersSection } from "../../bench/report.mjs";

const run = (results: object[]) => ({
  output: {
    app: "word_count",
    messages: 200000,
    outputs: 3822173,
    partitions: 4,
    brokers: "127.0.0.1:19092",
    loadavg: [1.5, 1.25, 1],
    results,
  },
});
const row = (system: string, threads: number, perSec: number, extra: object = {}) => ({
  name: `${system} (${threads})`,
  system,
  threads,
  perSec,
  firstToLastSeconds: 3822173 / perSec,
  seconds: 3822173 / perSec + 1,
  cpuSeconds: 10,
  cpuTotalSeconds: 12,
  peakRssMB: 300,
  verified: true,
  ...extra,
});

describe("kafkaPeersSection", () => {
  it("rates each system against the engine at the same thread count and lists each configuration", () => {
    const md: string = kafkaPeersSection(
      run([
        row("engine", 1, 200_000, { engine: true }),
        row("Flink 1.20.3", 1, 400_000, { config: "checkpointing off" }),
        row("engine", 2, 100_000, { engine: true }),
        row("Flink 1.20.3", 2, 150_000, { config: "checkpointing off" }),
      ]),
    );
    const lines = md.split("\n");
    expect(lines).toContain("| **this engine** | 1 | 200.0 k | 10.5 k | 10.0 | 12.0 | 300 MB | 1.00× | exact |");
    expect(lines).toContain("| Flink 1.20.3 | 1 | 400.0 k | 20.9 k | 10.0 | 12.0 | 300 MB | 2.00× | exact |");
    expect(lines).toContain("| Flink 1.20.3 | 2 | 150.0 k | 7.8 k | 10.0 | 12.0 | 300 MB | 1.50× | exact |");
    expect(lines).toContain("- **Flink 1.20.3**: checkpointing off.");
    expect(md).toContain("load average at the start 1.50 1.25 1.00");
  });

  it("keeps a peer that could not be built or failed as a row with its reason", () => {
    const md: string = kafkaPeersSection(
      run([
        row("engine", 1, 200_000, { engine: true }),
        {
          name: "Kafka Streams 3.9.1 (1 threads)",
          system: "Kafka Streams 3.9.1",
          threads: 1,
          skipped: "mvn not found",
        },
        { name: "Flink 1.20.3 (1 threads)", system: "Flink 1.20.3", threads: 1, error: "exited (code 1)" },
      ]),
    );
    expect(md.split("\n")).toContain("| Kafka Streams 3.9.1 | 1 | skipped: mvn not found | | | | | | |");
    expect(md.split("\n")).toContain("| Flink 1.20.3 | 1 | **FAILED:** exited (code 1) | | | | | | |");
  });

  it("marks a run too short for a first-to-last span as rated from its ready line", () => {
    const md: string = kafkaPeersSection(
      run([row("engine", 1, 200_000, { engine: true, rateFrom: "ready", rateSeconds: 4, firstToLastSeconds: 0 })]),
    );
    expect(md.split("\n")).toContain(
      "| **this engine** | 1 | 200.0 k (from ready) | 50.0 k | 10.0 | 12.0 | 300 MB | 1.00× | exact |",
    );
  });

  it("says why the whole comparison did not run", () => {
    expect(kafkaPeersSection({ skipped: "not run with --quick" })).toBe("skipped: not run with --quick");
    expect(kafkaPeersSection({ error: "timed out" })).toBe("**FAILED:** timed out");
    expect(kafkaPeersSection(undefined)).toBe("not run");
  });
});
