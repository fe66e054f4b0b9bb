#!/usr/bin/env node
// Enrichment scenario (issue 21): the engine runs bench/apps/enrichment.ts, whose async step
// looks each message up in a local HTTP service that answers after DELAY ms (default 1), on
// one worker; throughput (messages/s end to end) at each --concurrency.
//
//   node bench/enrichment.mjs [--messages 3000] [--concurrency 1,64] [--delay 1]   (npm run build first)
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { fileURLToPath } from "node:url";

const argv = process.argv.slice(2);
const val = (f, d) => {
  const i = argv.indexOf(f);
  return i >= 0 ? argv[i + 1] : d;
};
const N = Number(val("--messages", "3000"));
const levels = val("--concurrency", "1,64").split(",").map(Number);
const delay = Number(val("--delay", "1"));
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const listen = (srv) => new Promise((r) => srv.listen(0, "127.0.0.1", () => r(srv.address().port)));
const freePort = async () => {
  const s = net.createServer();
  const p = await listen(s);
  await new Promise((r) => s.close(r));
  return p;
};

const service = http.createServer((req, res) => setTimeout(() => res.end(`v${req.url.slice(1)}`), delay));
const lookupPort = await listen(service);

for (const c of levels) {
  let lines = 0;
  let done;
  const finished = new Promise((r) => {
    done = r;
  });
  const sink = net.createServer((s) =>
    s.on("data", (d) => {
      for (const b of d) if (b === 10) lines++;
      if (lines >= N) done();
    }),
  );
  const outPort = await listen(sink);
  const inPort = await freePort();
  const engine = spawn(
    process.execPath,
    [
      `${ROOT}bin/wallaroo.js`,
      "run",
      `${ROOT}bench/apps/enrichment.ts`,
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${outPort}`,
      "--workers",
      "1",
      "--stats-interval",
      "0",
      "--lookup",
      `127.0.0.1:${lookupPort}`,
      "--concurrency",
      String(c),
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let err = "";
  engine.stderr.on("data", (d) => {
    err += d;
  });
  while (!/ running on \d+ worker/.test(err)) await new Promise((r) => setTimeout(r, 50));
  const frames = [];
  for (let i = 0; i < N; i++) {
    const p = Buffer.from(String(i));
    const h = Buffer.alloc(4);
    h.writeUInt32BE(p.length);
    frames.push(h, p);
  }
  const t0 = performance.now();
  const sock = net.connect(inPort, "127.0.0.1");
  sock.end(Buffer.concat(frames));
  await finished;
  const s = (performance.now() - t0) / 1000;
  console.log(
    JSON.stringify({
      concurrency: c,
      messages: N,
      delayMs: delay,
      seconds: +s.toFixed(3),
      perSecond: Math.round(N / s),
    }),
  );
  engine.kill("SIGTERM");
  await new Promise((r) => engine.on("exit", r));
  sink.close();
}
service.close();
