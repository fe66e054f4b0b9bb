// Per-path backpressure: throughput of a pipeline while another pipeline's sink is
// stalled (its receiver accepts the connection and never reads) against the same
// pipeline with nothing stalled. App: test/fixtures/two-paths.ts (stalled: state
// partition over the workers; free: one identity step). The engine runs in this
// process (its main thread touches no message); sender and receivers are sockets here.
//   node bench/per-path.bench.mjs [--messages N] [--runs N] [--workers N]
import net from "node:net";
import { fileURLToPath } from "node:url";
import { freePort } from "./lib/procs.mjs";
import { runApplication } from "../dist/index.js";

const arg = (name, d) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : d;
};
const MESSAGES = arg("--messages", 300_000);
const RUNS = arg("--runs", 2);
const WORKERS = arg("--workers", 2);
const APP = fileURLToPath(new URL("../test/fixtures/two-paths.ts", import.meta.url));
process.env.WALLAROO_LOG_LEVEL ??= "error";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function receiver({ paused }) {
  let lines = 0;
  let waiter = null;
  const socks = new Set();
  const srv = net.createServer((s) => {
    socks.add(s);
    if (paused) s.pause();
    s.on("data", (d) => {
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
      if (waiter) waiter();
    });
    s.on("error", () => {});
  });
  return new Promise((r) =>
    srv.listen(0, "127.0.0.1", () =>
      r({
        port: srv.address().port,
        lines: () => lines,
        until: (n) =>
          new Promise((res) => {
            waiter = () => {
              if (lines >= n) {
                waiter = null;
                res();
              }
            };
            waiter();
          }),
        close: () => {
          socks.forEach((s) => s.destroy());
          srv.close();
        },
      }),
    ),
  );
}
function framed(payloads) {
  const bufs = payloads.map((p) => {
    const b = Buffer.from(p);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(b.length);
    return Buffer.concat([h, b]);
  });
  return Buffer.concat(bufs);
}
const connect = (port) =>
  new Promise((r, j) => {
    const s = net.connect(port, "127.0.0.1", () => r(s));
    s.on("error", j);
  });
async function writeAll(s, buf) {
  if (!s.write(buf)) await new Promise((r) => s.once("drain", r));
}

async function once(stall) {
  const stalledSink = await receiver({ paused: stall });
  const freeSink = await receiver({ paused: false });
  const [sIn, fIn] = [await freePort(), await freePort()];
  const app = await runApplication({
    module: APP,
    workers: WORKERS,
    statsInterval: 0,
    args: [
      "--in",
      `127.0.0.1:${sIn},127.0.0.1:${fIn}`,
      "--out",
      `127.0.0.1:${stalledSink.port},127.0.0.1:${freeSink.port}`,
    ],
  });
  const stalledSock = await connect(sIn);
  stalledSock.on("error", () => {});
  if (stall) {
    // fill the stalled path until its sender is blocked for a second
    const filler = "x".repeat(1000);
    for (let seq = 0; ; seq += 64) {
      const b = framed(Array.from({ length: 64 }, (_, i) => `k${(seq + i) % 16} ${seq + i} ${filler}`));
      if (!stalledSock.write(b)) {
        const drained = await Promise.race([
          new Promise((r) => stalledSock.once("drain", () => r(true))),
          sleep(1000).then(() => false),
        ]);
        if (!drained) break;
      }
    }
  }
  const chunk = framed(Array.from({ length: 1000 }, (_, i) => String(i)));
  const conns = [await connect(fIn), await connect(fIn)];
  const t0 = performance.now();
  await Promise.all(
    conns.map(async (c, ci) => {
      for (let n = ci * 1000; n < MESSAGES; n += 2000) await writeAll(c, chunk);
      c.end();
    }),
  );
  await freeSink.until(MESSAGES);
  const secs = (performance.now() - t0) / 1000;
  const stalledLines = stalledSink.lines();
  stalledSock.destroy();
  stalledSink.close(); // the drain at stop cannot finish for a stalled sink: do not wait for it
  await Promise.race([app.stop(), sleep(3000)]);
  freeSink.close();
  return { rate: MESSAGES / secs, stalledLines };
}

const results = { none: [], stalled: [] };
for (let r = 0; r < RUNS; r++) {
  for (const stall of [false, true]) {
    const { rate, stalledLines } = await once(stall);
    results[stall ? "stalled" : "none"].push(rate);
    console.log(
      `${stall ? "other sink stalled" : "nothing stalled  "}: free pipeline ${(rate / 1e6).toFixed(2)} M msgs/s (${MESSAGES} msgs; stalled sink got ${stalledLines} lines)`,
    );
  }
}
const med = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
console.log(
  JSON.stringify({
    workers: WORKERS,
    messages: MESSAGES,
    freeMsgsPerS: { nothingStalled: med(results.none), otherSinkStalled: med(results.stalled) },
  }),
);
process.exit(0);
