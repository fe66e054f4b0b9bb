/** A `wallaroo run` child process for end-to-end tests: stderr (pino JSON lines) collected, SIGKILL-able. */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface Engine {
  readonly child: ChildProcess;
  readonly lines: Record<string, any>[];
  readonly exited: Promise<number | null>;
  waitForLog(match: (l: Record<string, any>) => boolean, ms: number, from?: number): Promise<Record<string, any>>;
  /** resident memory of the process in bytes (Linux /proc) */
  rssBytes(): number;
  kill9(): Promise<void>;
  /** SIGTERM, then the exit code */
  stop(ms?: number): Promise<number | null>;
}

export function startEngine(app: string, args: string[]): Engine {
  const child = spawn(process.execPath, [join(REPO, "bin/wallaroo.js"), "run", app, ...args], {
    cwd: REPO, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, WALLAROO_LOG_LEVEL: "info" },
  });
  const lines: Record<string, any>[] = [];
  let rest = "";
  child.stderr!.on("data", (d: Buffer) => {
    const parts = (rest + d.toString()).split("\n");
    rest = parts.pop()!;
    for (const p of parts) {
      try { lines.push(JSON.parse(p)); } catch { lines.push({ msg: p }); }
    }
  });
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return {
    child, lines, exited,
    async waitForLog(match, ms, from = 0) {
      const deadline = Date.now() + ms;
      for (;;) {
        const l = lines.slice(from).find(match);
        if (l) return l;
        if (Date.now() > deadline || child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`log line not found within ${ms} ms; got:\n${lines.map((x) => x.msg).join("\n")}`);
        }
        await sleep(50);
      }
    },
    rssBytes() {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      return m ? Number(m[1]) * 1024 : 0;
    },
    async kill9() {
      child.kill("SIGKILL");
      await exited;
    },
    async stop(ms = 40_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const code = await Promise.race([exited, sleep(ms).then(() => "timeout" as const)]);
      if (code === "timeout") {
        child.kill("SIGKILL");
        throw new Error(`wallaroo run did not exit within ${ms} ms of SIGTERM`);
      }
      return code;
    },
  };
}
