/**
 * The engine's options schema (src/runtime/options.ts): parsing of `wallaroo run`
 * flags, near misses, the library-side validation and defaults, and the table in docs/operations.md.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  ENGINE_FLAGS,
  EngineOptionError,
  editDistance,
  engineFlagsHelp,
  engineFlagsTable,
  nearestFlag,
  parseEngineFlags,
  resolveEngineOptions,
} from "../../src/runtime/options.js";
import { RUN_HELP } from "../../src/cli/run.js";
import { ROOT } from "../helpers/engine.js";

describe("engine flags", () => {
  it("parses every kind of flag, in both spellings, and leaves the application's alone", () => {
    const { options, nearMisses } = parseEngineFlags([
      "--in",
      "127.0.0.1:0",
      "--workers",
      "3",
      "--fail-fast",
      "--drain-timeout=2.5",
      "--ring-bytes",
      "8192",
      "--resilience-dir",
      "/tmp/x",
      "--mode",
      "fast",
    ]);
    expect(options).toEqual({
      workers: 3,
      failFast: true,
      drainTimeout: 2.5,
      ringBytes: 8192,
      resilienceDir: "/tmp/x",
    });
    expect(nearMisses).toEqual([]);
    // after --: the application's, neither read nor checked
    expect(parseEngineFlags(["--workers", "2", "--", "--worker", "1", "--workers", "3"])).toEqual({
      options: { workers: 2 },
      nearMisses: [],
    });
    // a flag that is on by default: --no-FLAG turns it off, FLAG (no value) keeps it on
    expect(parseEngineFlags(["--no-exit-with-parent"]).options).toEqual({ exitWithParent: false });
    expect(parseEngineFlags(["--exit-with-parent"]).options).toEqual({ exitWithParent: true });
    expect(() => parseEngineFlags(["--no-exit-with-parent=1"])).toThrow("takes no value");
    expect(resolveEngineOptions({ module: "x.ts" }).exitWithParent).toBe(true);
  });

  it("rejects bad values with the flag's name and what it takes", () => {
    expect(() => parseEngineFlags(["--workers", "0"])).toThrow("--workers must be an integer >= 1, got '0'");
    expect(() => parseEngineFlags(["--workers", "2.5"])).toThrow("--workers must be an integer >= 1, got '2.5'");
    expect(() => parseEngineFlags(["--ring-bytes", "100"])).toThrow(
      "--ring-bytes must be an integer >= 4096, got '100'",
    );
    expect(() => parseEngineFlags(["--checkpoint-interval", "0"])).toThrow(
      "--checkpoint-interval must be a number > 0, got '0'",
    );
    expect(() => parseEngineFlags(["--stats-interval", "-1"])).toThrow(/--stats-interval must be a number >= 0/);
    expect(() => parseEngineFlags(["--workers"])).toThrow("--workers needs a value: --workers N");
    expect(() => parseEngineFlags(["--workers", "--fail-fast"])).toThrow("--workers needs a value");
    expect(() => parseEngineFlags(["--fail-fast=yes"])).toThrow("--fail-fast takes no value");
    expect(() => parseEngineFlags(["--kafka-group="])).toThrow(EngineOptionError);
  });

  it("reports an unknown flag within edit distance 2 of an engine flag, and only those", () => {
    expect(
      parseEngineFlags(["--worker", "2", "--in", "h:1", "--out", "h:2", "--mode", "x", "--fail-fats"]).nearMisses,
    ).toEqual([
      ["--worker", "--workers"],
      ["--fail-fats", "--fail-fast"],
    ]);
    expect(nearestFlag("--drain-timout")).toBe("--drain-timeout");
    expect(nearestFlag("--symbols")).toBeUndefined();
    expect(editDistance("kitten", "sitting")).toBe(3);
  });

  it("fills in defaults, converts the deprecated millisecond options, and validates library values", () => {
    const r = resolveEngineOptions({ module: "x.ts" });
    expect(r).toMatchObject({
      maxFrameBytes: 16 * 1024 * 1024,
      failFast: false,
      statsInterval: 5,
      drainTimeout: 30,
      checkpointInterval: 1,
      checkpointTimeout: 10,
    });
    expect(r.workers).toBeUndefined();
    expect(resolveEngineOptions({ module: "x", drainTimeoutMs: 1500, checkpointTimeoutMs: 250 })).toMatchObject({
      drainTimeout: 1.5,
      checkpointTimeout: 0.25,
    });
    expect(resolveEngineOptions({ module: "x", drainTimeout: 2, drainTimeoutMs: 1500 }).drainTimeout).toBe(2);
    expect(() => resolveEngineOptions({ module: "x", workers: 0 })).toThrow(
      "workers (--workers) must be an integer >= 1, got '0'",
    );
    expect(() => resolveEngineOptions({ module: "x", workers: 1.5 })).toThrow(/workers \(--workers\)/);
    expect(() => resolveEngineOptions({ module: "x", checkpointInterval: 0 })).toThrow(
      /checkpointInterval \(--checkpoint-interval\) must be a number > 0/,
    );
    expect(() => resolveEngineOptions({ module: "x", failFast: "yes" as never })).toThrow(
      "failFast (--fail-fast) must be true or false",
    );
    expect(() => resolveEngineOptions({} as never)).toThrow(
      "module must be the application's path (relative to the current directory) or a file: URL, got undefined",
    );
    expect(() => resolveEngineOptions({ module: "x", args: "--in h:1" as never })).toThrow(
      "args must be an array of strings",
    );
  });

  it("run --help lists every flag of the schema with its default", () => {
    // a flag that is on by default is shown as --[no-]FLAG
    for (const f of ENGINE_FLAGS) expect(RUN_HELP).toMatch(new RegExp(`  --(\\[no-\\])?${f.flag.slice(2)}`));
    expect(RUN_HELP).toContain(engineFlagsHelp());
    expect(engineFlagsHelp()).toContain("(default: 30 seconds)");
    expect(engineFlagsHelp()).toContain("(default: 1 second)");
    for (const line of engineFlagsHelp().split("\n")) expect(line.length).toBeLessThanOrEqual(80);
  });

  it("docs/operations.md's flag table is the one generated from the schema (regenerate: node scripts/flag-table.mjs)", () => {
    const readme = readFileSync(join(ROOT, "docs/operations.md"), "utf8");
    const m = /<!-- engine-flags:[^\n]*-->\n([\s\S]*?)<!-- \/engine-flags -->/.exec(readme);
    expect(m, "docs/operations.md has no <!-- engine-flags --> block").not.toBeNull();
    expect(m![1]).toBe(engineFlagsTable());
  });
});
