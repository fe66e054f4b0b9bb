/**
 * The module hooks every thread that loads an application installs (dist/runtime/loader.js):
 * `import "wallaroo"` from a file outside the package, and the record of the user
 * modules loaded (the classes of helper modules keep their prototype across workers).
 * Where Node's module.registerHooks is used, the hooks run in the loading thread: a
 * worker that loads an application is one thread, not two (module.register starts a
 * hooks thread, a whole isolate, for every thread that calls it).
 */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";

const LOADER = new URL("../../dist/runtime/loader.js", import.meta.url).href;

/** the releases where the loader uses module.registerHooks (loader.ts, inThreadHooksWork) */
const [major, minor, patch] = process.versions.node.split(".").map(Number);
const atLeast = (m: number, p: number) => minor > m || (minor === m && patch >= p);
const inThread =
  major === 22 ? atLeast(22, 3) : major === 24 ? atLeast(11, 1) : major === 25 ? atLeast(1, 0) : major >= 26;

/** this process's threads named WorkerThread (Node >= 22 names its threads; /proc: Linux) */
const workerThreads = () =>
  readdirSync("/proc/self/task").filter((t) => {
    try {
      return readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "WorkerThread";
    } catch {
      return false; // a thread that ended while listed
    }
  }).length;

function writeApp(dir: string): string {
  writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
  writeFileSync(join(dir, "helper.js"), "export class Reading { constructor(v) { this.v = v; } }\n");
  writeFileSync(
    join(dir, "app.js"),
    [
      'import * as wallaroo from "wallaroo";',
      'import { Reading } from "./helper.js";',
      "export function applicationSetup() {",
      '  const ab = new wallaroo.ApplicationBuilder("hooks");',
      '  ab.newPipeline("p", new wallaroo.TCPSourceConfig("127.0.0.1", 7010, wallaroo.decoder((b) => new Reading(b))))',
      '    .toSink(new wallaroo.TCPSinkConfig("127.0.0.1", 7002, wallaroo.encoder((r) => String(r.v))));',
      "  return ab.build();",
      "}",
    ].join("\n"),
  );
  return join(dir, "app.js");
}

/** Loads the app in a fresh worker thread; answers what the worker saw. */
async function loadInWorker(app: string): Promise<{ name: string; modules: string[]; threadsWhileLoaded: number }> {
  const code = `
    const { parentPort, workerData } = require("node:worker_threads");
    const { readdirSync, readFileSync } = require("node:fs");
    const named = () => readdirSync("/proc/self/task").filter((t) => {
      try { return readFileSync("/proc/self/task/" + t + "/comm", "utf8").trim() === "WorkerThread"; } catch { return false; }
    }).length;
    (async () => {
      const loader = await import(workerData.loader);
      const mod = await loader.loadAppModule(workerData.url);
      const spec = loader.setupApplication(mod, [], workerData.url);
      const modules = (await loader.userModules()).map((m) => m.url);
      parentPort.postMessage({ name: spec.name, modules, threadsWhileLoaded: named() });
    })().catch((err) => parentPort.postMessage({ error: String(err && err.stack || err) }));
  `;
  const w = new Worker(code, { eval: true, workerData: { loader: LOADER, url: pathToFileURL(app).href } });
  try {
    const m = await new Promise<any>((resolve, reject) => {
      w.once("message", resolve);
      w.once("error", reject);
    });
    if (m.error) throw new Error(m.error);
    return m;
  } finally {
    await w.terminate();
  }
}

describe("module hooks", () => {
  it('a worker thread loads an app outside the package: "wallaroo" resolves, its user modules are recorded', async () => {
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-hooks-"));
    try {
      const app = writeApp(dir);
      const r = await loadInWorker(app);
      expect(r.name).toBe("hooks");
      expect(r.modules).toEqual([pathToFileURL(app).href, pathToFileURL(join(dir, "helper.js")).href].sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(inThread && existsSync("/proc/self/task"))(
    "on a Node with usable module.registerHooks, the hooks start no thread of their own",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "wallaroo-hooks-"));
      try {
        const before = workerThreads();
        const r = await loadInWorker(writeApp(dir));
        // The worker itself, and no module-hooks thread beside it (module.register would make it 2).
        expect(r.threadsWhileLoaded - before).toBe(1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
