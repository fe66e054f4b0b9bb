/**
 * The exit-code table of docs/operations.md is what `wallaroo run` does: each code the table
 * documents is produced here by the cheapest real cause of it (and run --help lists
 * the same codes). A code added to the table without a way to produce it here fails
 * the first test.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { RUN_HELP } from "../../src/cli/run.js";
import { BIN, ROOT, fixture, startEngine } from "../helpers/engine.js";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";

/** The codes of the "## Exit codes" table of docs/operations.md. */
function documentedCodes(): number[] {
  const readme = readFileSync(join(ROOT, "docs/operations.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n## Exit codes"));
  const table = section.slice(0, section.indexOf("\n\n", section.indexOf("| code |")));
  return [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
}

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 30_000 });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stderr: err.stderr ?? "" };
  }
}

const HELP_APP = fixture("help-app.ts");

/** An engine whose sink address has no listener: one message stays in flight until the stop. */
async function engineWithOutputInFlight(drainTimeout: string) {
  const out = await freePort();
  const engine = await startEngine(HELP_APP, [
    "--workers",
    "1",
    "--drain-timeout",
    drainTimeout,
    "--in",
    "127.0.0.1:0",
    "--out",
    `127.0.0.1:${out}`,
  ]);
  const running = engine.logs().find((l) => / running on /.test(String(l.msg)))!;
  await sendBytes((running.sourcePorts as Record<string, number>).echo!, frame(["hello"]));
  await engine.waitForLog((l) => /closed after 1 messages/.test(String(l.msg)));
  return engine;
}

/** Each documented code, produced by a real cause; resolves to the exit code and what stderr said. */
const CAUSES: Record<number, () => Promise<{ code: number | null; stderr: string }>> = {
  // stopped on request, nothing lost
  0: async () => {
    const sink = await startCollector();
    const engine = await startEngine(HELP_APP, [
      "--workers",
      "1",
      "--in",
      "127.0.0.1:0",
      "--out",
      `127.0.0.1:${sink.port}`,
    ]);
    try {
      return { code: (await engine.stop("SIGTERM")).code, stderr: engine.stderr() };
    } finally {
      engine.kill();
      await sink.close();
    }
  },
  // a failed start: with --resilience-dir, a state class whose fresh instance cannot be serialized
  1: async () => {
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-exit1-"));
    try {
      const r = await cli([
        "run",
        fixture("unserializable-state-app.ts"),
        "--resilience-dir",
        dir,
        "--workers",
        "1",
        "--in",
        "127.0.0.1:0",
        "--out",
        "127.0.0.1:1",
      ]);
      expect(r.stderr).toContain(
        "cannot start " +
          fixture("unserializable-state-app.ts") +
          ': state "the tally" (class Tally) cannot be serialized for a checkpoint (--resilience-dir), checked at start on a fresh instance (new Tally()): cannot serialize field .onChange',
      );
      expect(r.stderr).not.toMatch(/ running on /);
      return r;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  // a bad command line: a misspelled safety flag is refused, with the fix and the way to mean it
  2: async () => {
    const r = await cli(["run", HELP_APP, "--resilence-dir", "/tmp/x", "--in", "127.0.0.1:0", "--out", "127.0.0.1:1"]);
    expect(r.stderr).toContain("--resilence-dir is not an engine flag: did you mean --resilience-dir?");
    expect(r.stderr).toContain(`wallaroo run ${HELP_APP} [engine flags] -- --resilence-dir ...`);
    return r;
  },
  // the engine failed: an error in user code under --fail-fast
  3: async () => {
    const sink = await startCollector();
    const engine = await startEngine(fixture("e2e-app.ts"), [
      "--in",
      "127.0.0.1:0",
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "1",
      "--mode",
      "faulty",
      "--fail-fast",
    ]);
    try {
      const running = engine.logs().find((l) => / running on /.test(String(l.msg)))!;
      await sendBytes(Object.values(running.sourcePorts as Record<string, number>)[0]!, frame(["bad-compute 1 k"]));
      return { code: (await engine.exited).code, stderr: engine.stderr() };
    } finally {
      engine.kill();
      await sink.close();
    }
  },
  // stopped on request, output lost: the sink never listened, and the drain gives up
  4: async () => {
    const engine = await engineWithOutputInFlight("0.5");
    try {
      const exit = await engine.stop("SIGTERM");
      expect(engine.stderr()).toContain("wallaroo: stopped, but lost: about 1 output(s)");
      return { code: exit.code, stderr: engine.stderr() };
    } finally {
      engine.kill();
    }
  },
  // a second signal while the drain waits (for a sink that never listens)
  130: async () => {
    const engine = await engineWithOutputInFlight("60");
    try {
      engine.child.kill("SIGTERM");
      await engine.waitForLog((l) => l.msg === "SIGTERM: draining");
      return { code: (await engine.stop("SIGTERM")).code, stderr: engine.stderr() };
    } finally {
      engine.kill();
    }
  },
};

describe("exit codes", () => {
  it("docs/operations.md's table and run --help document the same codes, and each has a cause in this test", () => {
    const codes = documentedCodes();
    expect(codes.length).toBeGreaterThanOrEqual(5);
    const help = RUN_HELP.slice(RUN_HELP.indexOf("Exit codes:"));
    expect([...help.matchAll(/^ {2}(\d+) /gm)].map((m) => Number(m[1]))).toEqual(codes);
    expect(
      Object.keys(CAUSES)
        .map(Number)
        .sort((a, b) => a - b),
    ).toEqual([...codes].sort((a, b) => a - b));
  });

  it.each(documentedCodes())(
    "exit %i happens as documented",
    async (code) => {
      const cause = CAUSES[code];
      expect(cause, `no cause for documented exit code ${code}`).toBeDefined();
      const r = await cause!();
      expect(r.code, r.stderr.slice(-3000)).toBe(code);
    },
    60_000,
  );
});
