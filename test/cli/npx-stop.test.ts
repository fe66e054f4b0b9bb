/**
 * Stops that leave nothing behind: `npx wallaroo run|receive ...` is npm → `sh -c`
 * → node. Killing the npx pid (what a supervisor or CI script does) must stop the
 * engine or receiver — with a SIGTERM npm forwards it to the shell, which dies and
 * re-parents node; with a SIGKILL the shell stays, waiting on node, and only the
 * shell's parent changes — so that no process remains and the port is free.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT, fixture, sleep } from "../helpers/engine.js";
import { freePort, startCollector } from "../helpers/net.js";

const NPX = process.platform === "win32" ? "npx.cmd" : "npx";

/** pids of the processes whose argv has `token` as one of its arguments (Linux /proc). */
function processesWith(token: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, "utf8").split(/[\0 ]+/);
      if (args.includes(token) && Number(d) !== process.pid) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

describe.skipIf(process.platform !== "linux")("started through npx, stopped by killing npx", () => {
  // npx's cache of its own: a run killed while npx was still setting up its link would
  // otherwise leave a half-made entry in ~/.npm/_npx that breaks later runs (ENOENT package.json)
  const npmCache = mkdtempSync(join(tmpdir(), "wallaroo-npx-cache-"));
  afterAll(() => rmSync(npmCache, { recursive: true, force: true }));
  const cases = [
    ["run", "SIGKILL"],
    ["run", "SIGTERM"],
    ["receive", "SIGKILL"],
  ] as const;
  it.each(cases)(
    "wallaroo %s: npx killed with %s",
    async (command, signal) => {
      const port = await freePort();
      const sink = command === "run" ? await startCollector() : undefined;
      const args =
        command === "run"
          ? [
              "run",
              fixture("help-app.ts"),
              "--stats-interval",
              "0",
              "--workers",
              "1",
              "--in",
              `127.0.0.1:${port}`,
              "--out",
              `127.0.0.1:${sink!.port}`,
            ]
          : ["receive", "--port", String(port), "--no-progress"];
      const token = command === "run" ? `127.0.0.1:${port}` : String(port);
      // --package ROOT: npx links this checkout (no install), as `npx --package /path/to/clone` would.
      const npx = spawn(NPX, ["--package", ROOT, "--", "wallaroo", ...args], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          ...process.env,
          npm_config_yes: "true",
          npm_config_update_notifier: "false",
          npm_config_cache: npmCache,
        },
      });
      let out = "";
      npx.stdout!.on("data", (d: Buffer) => {
        out += d;
      });
      npx.stderr!.on("data", (d: Buffer) => {
        out += d;
      });
      const ready = command === "run" ? / running on / : /listening on /;
      try {
        // npx links the checkout before it starts anything: on a loaded machine that alone takes seconds
        for (let i = 0; i < 1200 && !ready.test(out); i++) await sleep(100);
        expect(out).toMatch(ready);
        // the chain npx leaves behind: sh -c and node, both holding the token in their argv
        expect(processesWith(token).length, out).toBeGreaterThanOrEqual(2);
        npx.kill(signal);
        // Bounded polls, not timed assertions: a drain takes what it takes on a loaded machine.
        for (let i = 0; i < 300 && processesWith(token).length > 0; i++) await sleep(100);
        expect(processesWith(token), out).toEqual([]);
        let free = false;
        for (let i = 0; i < 100 && !(free = await canListen(port)); i++) await sleep(100);
        expect(free, `port ${port} still taken`).toBe(true);
        if (command === "run") {
          expect(out).toMatch(
            /(started this one through (a launcher|\d launchers) \(pid [\d, ]+\),|the parent process \d+) exited: stopping/,
          );
          expect(out).toMatch(/"msg":"stopped"/);
        } else expect(out).toMatch(/wallaroo receive: .*exited: stopping/);
      } finally {
        npx.kill("SIGKILL");
        for (const pid of processesWith(token)) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            /* gone */
          }
        }
        await sink?.close();
      }
    },
    240_000,
  );
});
