// Load time and RSS of Pyodide interpreters in worker threads, with and without one
// compiled WebAssembly.Module shared between them (bench/ANALYSIS.md, "Python").
// Usage: node bench/pyodide-load.mjs [workers=2] [shared|own]
import { Worker, isMainThread, workerData, parentPort } from "node:worker_threads";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const dir = require.resolve("pyodide/package.json").replace(/package\.json$/, "");

if (isMainThread) {
  const n = Number(process.argv[2] ?? 2);
  const mode = process.argv[3] ?? "shared";
  const mb = () => Math.round(process.memoryUsage.rss() / 1048576);
  const rss0 = mb();
  let t = performance.now();
  const module = mode === "shared" ? await WebAssembly.compile(readFileSync(`${dir}pyodide.asm.wasm`)) : null;
  const compileMs = performance.now() - t;
  console.log(`mode ${mode}: compile ${compileMs.toFixed(0)} ms, rss ${rss0} -> ${mb()} MB`);
  for (let i = 0; i < n; i++) {
    t = performance.now();
    const w = new Worker(new URL(import.meta.url), { workerData: { module } });
    const ms = await new Promise((res, rej) => {
      w.once("message", res);
      w.once("error", rej);
    });
    console.log(
      `worker ${i + 1}: loaded in ${(performance.now() - t).toFixed(0)} ms (in-thread loadPyodide ${ms.toFixed(0)} ms), process rss ${mb()} MB`,
    );
  }
  process.exit(0);
} else {
  const t = performance.now();
  const { loadPyodide } = await import("pyodide");
  const module = workerData.module;
  const orig = WebAssembly.instantiate;
  if (module) {
    // pyodide instantiates from the bytes it reads; hand it the shared compiled module instead
    WebAssembly.instantiate = async (src, imports) =>
      src instanceof WebAssembly.Module ? orig(src, imports) : { instance: await orig(module, imports), module };
  }
  const py = await loadPyodide({ indexURL: dir });
  WebAssembly.instantiate = orig;
  py.runPython("import pickle, struct, sys\nx = sum(i for i in range(1000))");
  parentPort.postMessage(performance.now() - t);
  setInterval(() => {}, 1000);
}
