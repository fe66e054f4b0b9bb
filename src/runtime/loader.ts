/**
 * Loads an application module in the current thread: TypeScript files run as they
 * are (through tsx), and `import ... from "wallaroo"` finds this package.
 */
import * as nodeModule from "node:module";
import { MessageChannel, type MessagePort } from "node:worker_threads";
import { fileURLToPath, pathToFileURL } from "node:url";
import { existsSync } from "node:fs";
import { isAbsolute, resolve as resolvePath } from "node:path";
import type { ApplicationSpec } from "../topology/spec.js";
import { KIND } from "../topology/spec.js";
import type { ModuleExports } from "../transport/serde.js";
import { initialize, loadSync, recordedUserModules, resolveSync } from "./resolve-hooks.js";
import { isPythonModule, loadPythonModule } from "./python.js";

/**
 * module.registerHooks (Node >= 22.15 / 23.5): synchronous hooks that run in the
 * thread that loads, where module.register runs its hooks on one more thread (a
 * whole isolate, ~10 MB) per registering thread, so per worker. Typed loosely:
 * the same hook functions (resolve-hooks.ts) serve both kinds of registration.
 */
type SyncHooks = {
  resolve: (specifier: string, context: unknown, next: (specifier: string, context: unknown) => unknown) => unknown;
  load: (url: string, context: unknown, next: (url: string, context: unknown) => unknown) => unknown;
};
const registerHooks = inThreadHooksWork()
  ? (nodeModule as { registerHooks?: (hooks: SyncHooks) => unknown }).registerHooks
  : undefined;

/**
 * Whether this Node's module.registerHooks is used: from the releases where tsx (4.23)
 * uses it for TypeScript too (22.22.3, 24.11.1, 25.1, 26). On earlier ones tsx runs on
 * a hooks thread anyway, and registerHooks next to it fails: on 22.15.0 every load of
 * the application threw "Expected a string, an ArrayBuffer, or a TypedArray to be
 * returned for the "source" from the "load" hook but got undefined".
 */
function inThreadHooksWork(): boolean {
  const [major, minor, patch] = process.versions.node.split(".").map(Number);
  const atLeast = (m: number, p: number) => minor > m || (minor === m && patch >= p);
  if (major === 22) return atLeast(22, 3);
  if (major === 24) return atLeast(11, 1);
  if (major === 25) return atLeast(1, 0);
  return major >= 26;
}

let hooksRegistered = false;
let tsxRegistered = false;
/** this thread's line to the resolve/load hooks on their own thread (module.register), which record the user modules loaded */
let hooksPort: MessagePort | null = null;
/** the hooks run in this thread (module.registerHooks): the record is read directly */
let hooksInThread = false;
let nextRequest = 1;
/** a Python application was loaded in this thread: it has no JavaScript user modules (pickle finds its classes) */
let pythonLoaded = false;

/** file: URL of a module given as a path (relative to the cwd) or a URL */
export function moduleUrl(module: string | URL): string {
  if (module instanceof URL) return module.href;
  if (/^file:/.test(module)) return module;
  return pathToFileURL(isAbsolute(module) ? module : resolvePath(process.cwd(), module)).href;
}

/** A path to show the user: the file path of a file: URL. */
export function displayPath(url: string): string {
  try {
    return url.startsWith("file:") ? fileURLToPath(url) : url;
  } catch {
    return url;
  }
}

export async function loadAppModule(url: string): Promise<Record<string, unknown>> {
  // Checked here so that the error names the user's path only: Node's own message
  // would say "imported from .../dist/runtime/loader.js", which is not the user's file.
  if (url.startsWith("file:") && !existsSync(fileURLToPath(url))) {
    const err = new Error(
      `cannot find the application module ${fileURLToPath(url)}` +
        ` (a relative path is resolved against the current directory, ${process.cwd()})`,
    );
    (err as NodeJS.ErrnoException).code = "ERR_MODULE_NOT_FOUND";
    err.stack = `Error: ${err.message}`; // the user's mistake, not a place in the engine

    throw err;
  }
  if (isPythonModule(url)) {
    pythonLoaded = true;
    return loadPythonModule(url);
  }
  if (!tsxRegistered && /\.(ts|mts|cts|tsx)$/.test(new URL(url).pathname)) {
    tsxRegistered = true;
    const tsx = await import("tsx/esm/api");
    tsx.register();
  }
  if (!hooksRegistered) {
    // Registered after tsx so that it runs first (hooks chain last-registered first).
    hooksRegistered = true;
    const wallarooUrl = new URL("../index.js", import.meta.url).href;
    if (registerHooks) {
      initialize({ wallarooUrl });
      registerHooks({ resolve: resolveSync, load: loadSync });
      hooksInThread = true;
    } else {
      const { port1, port2 } = new MessageChannel();
      hooksPort = port1;
      hooksPort.unref();
      nodeModule.register(new URL("./resolve-hooks.js", import.meta.url), {
        data: { wallarooUrl, port: port2 },
        transferList: [port2],
      });
    }
  }
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    // A missing import inside the application: Node names the importing file, which
    // is the user's; only a message that points into this package is rewritten.
    if (err instanceof Error && / imported from \S*\/dist\/runtime\/loader\.js/.test(err.message)) {
      err.message = err.message.replace(
        / imported from \S*\/dist\/runtime\/loader\.js/,
        ` (loading ${displayPath(url)})`,
      );
    }
    throw err;
  }
}

/**
 * The exports of every user module loaded so far in this thread (the application
 * module and the files it imports, not node_modules, not wallaroo itself), by URL.
 * Called after loadAppModule: the hooks record a module before it is evaluated, so
 * the whole graph of the application module is known by then.
 */
export async function userModules(): Promise<ModuleExports[]> {
  if (!hooksRegistered && pythonLoaded) return [];
  if (!hooksRegistered) throw new Error("userModules() called before loadAppModule()");
  const urls = hooksInThread ? recordedUserModules() : await askHooksThread();
  // Already evaluated: import() returns the cached namespace, it runs nothing.
  // Only code modules (a JSON import cannot be imported again without its attribute, and exports no class).
  // A file gone since it was loaded (an earlier application in a test process, in a temp dir since
  // removed) belongs to no application loaded now, and its import() would fail to resolve.
  const code = urls.filter((u) => /\.(m|c)?(j|t)sx?$/.test(new URL(u).pathname) && existsSync(fileURLToPath(u))).sort();
  return Promise.all(code.map(async (url) => ({ url, exports: (await import(url)) as Record<string, unknown> })));
}

/** The user modules recorded by the hooks on their own thread (module.register), asked over the port. */
function askHooksThread(): Promise<string[]> {
  const port = hooksPort;
  if (port === null)
    return Promise.reject(new Error("the module hooks have no port to ask (module.register not used)"));
  const id = nextRequest++;
  return new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      port.off("message", onMessage);
      reject(new Error("the module hooks did not answer with the list of the application's modules within 10 s"));
    }, 10_000);
    const onMessage = (m: { id: number; urls: string[] }) => {
      if (m.id !== id) return;
      clearTimeout(timer);
      port.off("message", onMessage);
      port.unref();
      resolve(m.urls);
    };
    port.on("message", onMessage);
    port.ref();
    port.postMessage({ id });
  });
}

/** Calls the module's applicationSetup(args) and checks it returned builder.build(). */
export function setupApplication(mod: Record<string, unknown>, args: string[], where: string): ApplicationSpec {
  const setup = (mod.applicationSetup ?? mod.application_setup) as ((args: string[]) => unknown) | undefined;
  if (typeof setup !== "function") {
    throw new Error(
      `${displayPath(where)} does not export applicationSetup(args) (or application_setup); export a function returning builder.build()`,
    );
  }
  const spec = setup([...args]) as ApplicationSpec;
  if (!spec || (spec as any)[KIND] !== "application") {
    throw new Error(
      `applicationSetup in ${displayPath(where)} must return the result of ApplicationBuilder.build(), got ${spec === null ? "null" : typeof spec}`,
    );
  }
  return spec;
}
