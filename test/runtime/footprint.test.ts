/**
 * What a worker loads: every worker imports the package's entry (an application's
 * `import "wallaroo"`), so a library that only the main thread uses is imported
 * there lazily, or every worker pays its heap (prom-client: ~2 MB of used heap per worker).
 */
import { expect, it } from "vitest";
import { Worker } from "node:worker_threads";

it("importing the package entry in a worker thread does not load prom-client (the metrics server's)", async () => {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    import(workerData.entry).then(() => {
      // prom-client is CommonJS: imported from ES modules it still lands in this thread's require cache.
      parentPort.postMessage(Object.keys(require.cache).filter((f) => f.includes("/node_modules/prom-client/")));
    }, (err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
  `;
  const entry = new URL("../../dist/index.js", import.meta.url).href;
  const w = new Worker(code, { eval: true, workerData: { entry } });
  try {
    const loaded = await new Promise<any>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    expect(loaded).toEqual([]);
  } finally {
    await w.terminate();
  }
});
