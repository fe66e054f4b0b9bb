/**
 * An I/O thread's dead socket read buffers are collected soon after they die
 * (src/runtime/reclaim.ts). Without it V8 collected them only once external memory had grown
 * by 64 MB, and each I/O thread's malloc arena stayed resident at that high-water mark.
 * A real worker thread reads 256 MiB from a real loopback socket, sent at about 200 MB/s
 * (an I/O thread's rate under full load on the development machine), and keeps nothing
 * it reads; it reports the most external memory it ever had.
 */
import { expect, it } from "vitest";
import net from "node:net";
import { Worker } from "node:worker_threads";

const READER = `
  const { parentPort, workerData } = require("node:worker_threads");
  const net = require("node:net");
  const v8 = require("node:v8");
  import(workerData.reclaim).then(({ startReclaim }) => {
    const r = startReclaim(workerData.limit);
    const base = v8.getHeapStatistics().external_memory;
    let peak = 0;
    let sum = 0;
    const sample = () => (peak = Math.max(peak, v8.getHeapStatistics().external_memory - base));
    const timer = setInterval(sample, 2);
    const server = net.createServer((s) => {
      s.on("data", (chunk) => {
        sum += chunk[0];
        sample();
      });
      s.on("end", () => {
        clearInterval(timer);
        parentPort.postMessage({ peak, collections: r.collections(), sum });
        server.close();
      });
    });
    server.listen(0, "127.0.0.1", () => parentPort.postMessage({ port: server.address().port }));
  });
`;

async function peakExternalWhileReading(limitBytes: number): Promise<{ peak: number; collections: number }> {
  const reclaim = new URL("../../dist/runtime/reclaim.js", import.meta.url).href;
  const w = new Worker(READER, { eval: true, workerData: { reclaim, limit: limitBytes } });
  try {
    const messages: any[] = [];
    let notify = () => {};
    w.on("message", (m) => {
      messages.push(m);
      notify();
    });
    w.on("error", (e) => messages.push({ error: String(e) }));
    const next = async () => {
      while (messages.length === 0) await new Promise<void>((r) => (notify = r));
      const m = messages.shift();
      if (m.error) throw new Error(m.error);
      return m;
    };
    const { port } = await next();
    const sock = net.connect(port, "127.0.0.1");
    await new Promise((r) => sock.once("connect", r));
    const block = Buffer.alloc(1024 * 1024, 1);
    // 1 MiB every 5 ms: about 200 MB/s, 256 MiB in all.
    for (let i = 0; i < 256; i++) {
      if (!sock.write(block)) await new Promise((r) => sock.once("drain", r));
      await new Promise((r) => setTimeout(r, 5));
    }
    sock.end();
    return await next();
  } finally {
    await w.terminate();
  }
}

it("an I/O thread reading a socket holds about the reclaim limit of dead read buffers, not V8's 64 MB", async () => {
  const { peak, collections } = await peakExternalWhileReading(8 * 1024 * 1024);
  expect(collections).toBeGreaterThan(0);
  // 8 MiB of limit, plus what 20 ms of reads (4 MB at 200 MB/s) bring between two checks, with room for a slow check.
  expect(peak).toBeLessThan(32 * 1024 * 1024);
}, 60_000);

it("I/O threads starting together each get V8's collection function (the flag it needs is process-wide)", async () => {
  const reclaim = new URL("../../dist/runtime/reclaim.js", import.meta.url).href;
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    import(workerData.reclaim).then(
      ({ startReclaim }) => {
        const r = startReclaim(1 << 20);
        r.stop();
        parentPort.postMessage({ active: r.active, gcVisible: typeof globalThis.gc });
      },
      (err) => parentPort.postMessage({ error: String(err) }),
    );
  `;
  const workers = Array.from({ length: 8 }, () => new Worker(code, { eval: true, workerData: { reclaim } }));
  try {
    const results = await Promise.all(
      workers.map(
        (w) =>
          new Promise((resolve, reject) => {
            w.once("message", resolve);
            w.once("error", reject);
          }),
      ),
    );
    // Active in every thread, and the flag is not left on: the threads' own globals never get a gc function.
    expect(results).toEqual(Array.from({ length: 8 }, () => ({ active: true, gcVisible: "undefined" })));
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
});
