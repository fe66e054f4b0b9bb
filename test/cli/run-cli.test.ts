/**
 * `wallaroo run` and `wallaroo --version` as a user meets them (the CLI as a child
 * process): help after APP, near-miss flags, port 0, and errors that name the
 * user's file and line.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { BIN, ROOT, fixture, sleep, startEngine } from "../helpers/engine.js";
import { frame, sendBytes, startCollector } from "../helpers/net.js";

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd: ROOT, timeout: 30_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : -1, stdout: err.stdout ?? "", stderr: err.stderr ?? "" };
  }
}

const HELP_APP = fixture("help-app.ts");

describe("wallaroo run", () => {
  it("--version prints the package's version", async () => {
    const r = await cli(["--version"]);
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect(r).toMatchObject({ code: 0, stdout: `wallaroo ${pkg.version}\n` });
  });

  it("APP --help shows the engine's flags and the application's help string", async () => {
    const r = await cli(["run", HELP_APP, "--in", "127.0.0.1:1", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--workers N");
    expect(r.stdout).toContain(`Application ${HELP_APP}:\n  --explode   make applicationSetup throw\n`);
  });

  it("warns about too many workers, leaves a near-miss flag after -- to the application, listens on a port chosen by the OS and logs it", async () => {
    const sink = await startCollector();
    const workers = availableParallelism() + 1;
    const engine = await startEngine(HELP_APP, [
      "--in",
      "127.0.0.1:0",
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      String(workers),
      // after --: the application's, not refused as a misspelling of --workers
      "--",
      "--worker",
      "2",
    ]);
    try {
      const msgs = engine.logs().map((l) => String(l.msg));
      expect(msgs.some((m) => m.includes("--worker is not an engine flag"))).toBe(false);
      expect(msgs.some((m) => m.startsWith(`--workers ${workers} is more than the ${workers - 1} core(s)`))).toBe(true);
      const running = engine.logs().find((l) => / running on /.test(String(l.msg)))!;
      const port = (running.sourcePorts as Record<string, number>).echo!;
      expect(port).toBeGreaterThan(0);
      expect(String(running.msg)).toContain(`TCP sources listen on echo: ${port}`);
      await sendBytes(port, frame(["hello\n"]));
      for (let i = 0; i < 200 && sink.bytes().length < 6; i++) await sleep(50);
      expect(sink.bytes().toString()).toBe("hello\n");
    } finally {
      await engine.stop();
      await sink.close();
    }
  });

  it("an exception in applicationSetup names the user's file and line, in the log and in a plain line on stderr", async () => {
    const r = await cli(["run", HELP_APP, "--explode"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`wallaroo run: cannot start ${HELP_APP}: exploded on purpose\n    at ${HELP_APP}:12:`);
    const logged = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { err?: string; type?: string; at?: string });
    const line = logged.find((l) => l.err);
    expect(line?.err).toBe("exploded on purpose");
    expect(line?.type).toBe("RangeError");
    expect(line?.at).toMatch(/help-app\.ts:12:\d+$/);
  });

  it("a module that does not exist is named by the user's path only", async () => {
    const r = await cli(["run", "no/such/app.ts"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot find the application module ${join(ROOT, "no/such/app.ts")}`);
    expect(r.stderr).not.toContain("loader.js");
  });

  it("--fail-fast: the error names the line of the user's computation", async () => {
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
      const exit = await Promise.race([engine.exited, sleep(20_000).then(() => null)]);
      expect(exit?.code).toBe(3); // EXIT.FAILED: the engine stopped on an error
      // The line of the fixture's `throw`, found rather than written down, so reformatting cannot stale it.
      const throwLine =
        readFileSync(fixture("e2e-app.ts"), "utf8")
          .split("\n")
          .findIndex((l) => l.includes("computation refuses")) + 1;
      expect(throwLine).toBeGreaterThan(0);
      expect(engine.stderr()).toMatch(
        new RegExp(`computation refuses bad-compute 1 k \\(at [^)]*e2e-app\\.ts:${throwLine}:\\d+\\)`),
      );
    } finally {
      engine.kill();
      await sink.close();
    }
  });

  it("by default (--exit-with-parent) the engine drains and exits when the process that started it is killed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-parent-"));
    const sink = await startCollector();
    let enginePid = 0;
    try {
      const log = join(dir, "engine.log");
      // The parent: starts the engine (stderr to a file, so that nothing breaks when the parent dies), prints its pid, waits.
      const parent = spawn(
        process.execPath,
        [
          "-e",
          `
        const { spawn } = require("node:child_process");
        const fd = require("node:fs").openSync(${JSON.stringify(log)}, "w");
        const c = spawn(process.execPath, ${JSON.stringify([
          BIN,
          "run",
          HELP_APP,
          "--stats-interval",
          "0",
          "--in",
          "127.0.0.1:0",
          "--out",
          `127.0.0.1:${sink.port}`,
          "--workers",
          "1",
        ])}, { stdio: ["ignore", "ignore", fd] });
        console.log(c.pid);
        setInterval(() => {}, 1000);
      `,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
      );
      enginePid = await new Promise<number>((resolve) =>
        parent.stdout!.once("data", (d: Buffer) => resolve(Number(String(d).trim()))),
      );
      for (let i = 0; i < 300 && !/ running on /.test(readFileSync(log, "utf8")); i++) await sleep(100);
      expect(readFileSync(log, "utf8")).toMatch(/ running on /);
      parent.kill("SIGKILL");
      const alive = () => {
        try {
          process.kill(enginePid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 300 && alive(); i++) await sleep(100);
      expect(alive(), "the engine outlived its parent").toBe(false);
      const text = readFileSync(log, "utf8");
      expect(text).toMatch(
        /the parent process \d+ exited: stopping \(--no-exit-with-parent keeps the engine running\)/,
      );
      expect(text).toMatch(/"msg":"stopped"/);
    } finally {
      if (enginePid)
        try {
          process.kill(enginePid, "SIGKILL");
        } catch {
          /* gone */
        }
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
