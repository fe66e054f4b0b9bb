// Memory against the number of workers: RSS of `wallaroo run` (a child process) idle
// after start, with the passthrough app (bench/apps/passthrough.ts), and idle again
// after traffic through a keyed app (bench/apps/keyed_count.ts: keys on every worker,
// so every source, peer and sink ring has been written through: RSS counts only
// touched pages, and a ring's pages stay resident once touched). Also prints the
// bytes of ring memory allocated (SharedArrayBuffers, allocated up front).
//   node bench/idle-memory.mjs [--workers 2,4,8,16] [--traffic-mb 64]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { freePort } from "./lib/procs.mjs";

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : d;
};
const WORKERS = arg("--workers", "2,4,8,16").split(",").map(Number);
const TRAFFIC = Number(arg("--traffic-mb", "64")) * 1024 * 1024;
const BIN = fileURLToPath(new URL("../bin/wallaroo.js", import.meta.url));
const app = (n) => fileURLToPath(new URL(`apps/${n}`, import.meta.url));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function memOf(pid) {
  const st = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? 0) / 1024;
  return {
    rss: kb("VmRSS"),
    anon: kb("RssAnon"),
    file: kb("RssFile"),
    shmem: kb("RssShmem"),
    threads: Number(/Threads:\s+(\d+)/.exec(st)[1]),
  };
}
function sink() {
  let bytes = 0;
  const socks = new Set();
  const srv = net.createServer((s) => {
    socks.add(s);
    s.on("data", (d) => {
      bytes += d.length;
    });
    s.on("error", () => {});
  });
  return new Promise((r) =>
    srv.listen(0, "127.0.0.1", () =>
      r({
        port: srv.address().port,
        bytes: () => bytes,
        close: () => {
          socks.forEach((s) => s.destroy());
          srv.close();
        },
      }),
    ),
  );
}
async function engine(appFile, workers, outPort) {
  const inPort = await freePort();
  const child = spawn(
    process.execPath,
    [
      BIN,
      "run",
      appFile,
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${outPort}`,
      "--workers",
      String(workers),
      "--stats-interval",
      "0",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  await new Promise((resolve, reject) => {
    child.stderr.on("data", (d) => {
      err += d;
      if (/running on \d+ worker/.test(err)) resolve();
    });
    child.on("exit", () => reject(new Error(err)));
  });
  child.stderr.on("data", (d) => {
    if (/"level":(50|60)/.test(String(d))) process.stderr.write(d);
  });
  return { child, inPort };
}
async function send(port, conns, bytes) {
  const per = Math.ceil(bytes / conns);
  await Promise.all(
    Array.from({ length: conns }, async (_, c) => {
      const s = await new Promise((r, j) => {
        const x = net.connect(port, "127.0.0.1", () => r(x));
        x.on("error", j);
      });
      s.on("error", (e) => console.error(`sender: ${e.message}`));
      const parts = [];
      let n = 0;
      for (let i = 0; n < 1 << 20; i++) {
        const b = Buffer.from(`key-${c}-${i % 4096}`);
        const h = Buffer.alloc(4);
        h.writeUInt32BE(b.length);
        parts.push(h, b);
        n += 4 + b.length;
      }
      const chunk = Buffer.concat(parts);
      for (let sent = 0; sent < per; sent += chunk.length)
        if (!s.write(chunk)) await new Promise((r) => s.once("drain", r));
      await new Promise((r) => s.end(r));
    }),
  );
}
const ringBytes = (w) => {
  const pow2 = (n) => {
    let c = 4096;
    while (c < n) c *= 2;
    return c;
  };
  const peer = pow2(Math.max(256 * 1024, Math.floor((8 * 1024 * 1024) / w)));
  return { source: w * pow2(2 * 1024 * 1024), peer: w * (w - 1) * peer, sink: w * pow2(2 * 1024 * 1024) };
};

console.log(
  `node ${process.version} (the engine runs on this node); load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`,
);
const rows = [];
for (const w of WORKERS) {
  const out = await sink();
  let e = await engine(app("passthrough.ts"), w, out.port);
  await sleep(3000);
  const idle = memOf(e.child.pid);
  e.child.kill("SIGTERM");
  await new Promise((r) => e.child.on("exit", r));
  e = await engine(app("keyed_count.ts"), w, out.port);
  await send(e.inPort, 2 * w, TRAFFIC);
  await sleep(3000);
  const after = memOf(e.child.pid);
  e.child.kill("SIGTERM");
  await new Promise((r) => e.child.on("exit", r));
  out.close();
  const r = ringBytes(w);
  const mb = (b) => (b / 2 ** 20).toFixed(0);
  rows.push({ w, idle, after, rings: r });
  console.log(
    `workers ${w}: idle passthrough RSS ${idle.rss.toFixed(0)} MB (anon ${idle.anon.toFixed(0)}, file ${idle.file.toFixed(0)}, threads ${idle.threads}); ` +
      `idle after ${mb(TRAFFIC)} MB keyed traffic ${after.rss.toFixed(0)} MB; rings allocated: source ${mb(r.source)} + peer ${mb(r.peer)} + sink ${mb(r.sink)} MB (keyed app)`,
  );
}
console.log(JSON.stringify(rows));
