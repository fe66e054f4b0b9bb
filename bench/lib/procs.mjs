// Child processes for the benchmarks: every child started here is tracked and killed when this
// process exits (normally, on an uncaught error or on SIGINT/SIGTERM), free TCP ports, and the
// /proc readings (CPU time, RSS) of a process and its descendants.
import { spawn, fork } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";

const children = new Set();

function track(child) {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

export function killAll(signal = "SIGKILL") {
  for (const c of children) {
    try {
      c.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

process.once("exit", () => killAll());
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, () => {
    killAll();
    process.exit(130);
  });
}

/** A child node process with an IPC channel (bench/tools/*.mjs). stderr is kept for error reports. */
export function forkTool(file, args = [], opts = {}) {
  const child = track(fork(file, args, { stdio: ["ignore", "inherit", "pipe", "ipc"], ...opts }));
  keepTail(child);
  return child;
}

/** Any command; stdout and stderr are kept (tail) and scanned for `readyRe`. */
export function spawnProc(cmd, args, opts = {}) {
  const child = track(spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts }));
  keepTail(child);
  return child;
}

function keepTail(child) {
  child.tail = "";
  const keep = (d) => {
    child.tail = (child.tail + d.toString()).slice(-4000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
}

/** Resolves when a line matching `re` appears on the child's stdout/stderr; rejects on exit or timeout. */
export function waitForOutput(child, re, timeoutMs, what) {
  return new Promise((resolve, reject) => {
    const done = (err) => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.stderr?.off("data", onData);
      child.off("exit", onExit);
      err ? reject(err) : resolve();
    };
    const onData = () => {
      if (re.test(child.tail)) done();
    };
    const onExit = (code, sig) =>
      done(new Error(`${what} exited early (code ${code}, signal ${sig}): ${lastLines(child.tail)}`));
    const timer = setTimeout(
      () => done(new Error(`${what} not ready after ${timeoutMs} ms: ${lastLines(child.tail)}`)),
      timeoutMs,
    );
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.on("exit", onExit);
    onData();
  });
}

export function lastLines(s, n = 6) {
  return s.trim().split("\n").slice(-n).join(" | ");
}

/** Sends `msg` to a forked tool and resolves with its reply (a message with the same `op`). */
export function ask(child, msg, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const onMsg = (m) => {
      if (m && m.op === msg.op) {
        cleanup();
        resolve(m);
      }
    };
    const onExit = (code) => {
      cleanup();
      reject(new Error(`tool exited (code ${code}) while asked ${msg.op}: ${lastLines(child.tail)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`tool did not answer ${msg.op} in ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.off("message", onMsg);
      child.off("exit", onExit);
    };
    child.on("message", onMsg);
    child.once("exit", onExit);
    child.send(msg);
  });
}

/** Ends a child: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(child, graceMs = 3000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(t);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const TICK = 100; // USER_HZ on Linux

function descendants(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let tasks = [];
    try {
      tasks = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    } catch {
      /* gone */
    }
    out.push(...tasks.map(Number));
  }
  return out;
}

/** utime+stime (seconds) of `pid` and its descendants, and their summed VmRSS / VmHWM (bytes). */
export function procSample(pid) {
  let cpu = 0,
    rss = 0,
    hwm = 0;
  for (const p of descendants(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      cpu += (Number(f[11]) + Number(f[12])) / TICK; // fields 14 and 15 of stat
      const status = readFileSync(`/proc/${p}/status`, "utf8");
      rss += kb(status, "VmRSS");
      hwm += kb(status, "VmHWM");
    } catch {
      /* exited between the listing and the read */
    }
  }
  return { cpu, rss, hwm };
}

function kb(status, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}
