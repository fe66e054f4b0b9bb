// CPU cost of the I/O threads' reclaim (src/runtime/reclaim.ts): a worker thread reads 1 GiB from a loopback
// socket (touching every 64th byte), with the checks on (8 MiB) and off, alternating 6 times; prints the CPU
// seconds of the process (sender and reader) per run. npm run build first. node bench/reclaim.bench.mjs
import { Worker } from "node:worker_threads";
import net from "node:net";
const reclaim = new URL("../dist/runtime/reclaim.js", import.meta.url).href;
const code = `
const { parentPort, workerData } = require("node:worker_threads");
const net = require("node:net");
import(workerData.reclaim).then(({ startReclaim }) => {
  const r = startReclaim(workerData.limit); let sum = 0;
  const server = net.createServer((s) => {
    s.on("data", (c) => { for (let i = 0; i < c.length; i += 64) sum += c[i]; });
    s.on("end", () => { parentPort.postMessage({ collections: r.collections() }); server.close(); });
  });
  server.listen(0, "127.0.0.1", () => parentPort.postMessage({ port: server.address().port }));
});`;
const one = async (limit) => {
  const w = new Worker(code, { eval: true, workerData: { reclaim, limit } });
  const msgs = [];
  let wake = () => {};
  w.on("message", (m) => {
    msgs.push(m);
    wake();
  });
  const next = async () => {
    while (!msgs.length) await new Promise((r) => (wake = r));
    return msgs.shift();
  };
  const { port } = await next();
  const s = net.connect(port, "127.0.0.1");
  await new Promise((r) => s.once("connect", r));
  const block = Buffer.alloc(1 << 20, 1);
  const c0 = process.cpuUsage();
  for (let i = 0; i < 1024; i++) if (!s.write(block)) await new Promise((r) => s.once("drain", r));
  s.end();
  const { collections } = await next();
  const c = process.cpuUsage(c0);
  await w.terminate();
  return { cpu: (c.user + c.system) / 1e6, collections };
};
const res = { on: [], off: [] };
for (let i = 0; i < 6; i++) {
  for (const [k, l] of [
    ["off", 0],
    ["on", 8 << 20],
  ]) {
    const r = await one(l);
    res[k].push(r.cpu.toFixed(3));
    if (k === "on" && i === 0) console.log("collections per GiB", r.collections);
  }
}
console.log(JSON.stringify(res));
