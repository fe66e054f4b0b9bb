/**
 * Module resolution hook: the bare specifier "wallaroo" resolves to this package
 * for an application file wherever it lives, as Machida put wallaroo on the Python
 * path. Installed in every thread that loads the app: in-thread with
 * module.registerHooks() where Node has it (see loader.ts), else with
 * module.register(), which runs these hooks on a thread of their own.
 *
 * The load hook also records the URL of every user module that is loaded (files
 * outside node_modules and outside this package): the loader then collects the
 * classes those modules export, so that a message class living in a helper module
 * keeps its prototype when it crosses to another worker (see transport/serde.ts).
 * In-thread, the loader reads the record directly (recordedUserModules); on a hooks
 * thread, it asks over the MessagePort the loader passes in.
 */
import type { MessagePort } from "node:worker_threads";

let wallarooUrl = "";
/** the folder of this package's own code (dist/ or src/): not user modules */
let wallarooDir = "";
const userModules = new Set<string>();

export function initialize(data: { wallarooUrl: string; port?: MessagePort }): void {
  wallarooUrl = data.wallarooUrl;
  wallarooDir = new URL("./", wallarooUrl).href;
  // One port per registering thread (the hooks may serve several threads): answer on the asking one.
  const port = data.port;
  if (port) {
    port.on("message", (msg: { id: number }) => port.postMessage({ id: msg.id, urls: [...userModules] }));
    port.unref();
  }
}

/** The user modules loaded so far, for the in-thread hooks (same thread, same module instance). */
export function recordedUserModules(): string[] {
  return [...userModules];
}

type Resolved = { url: string; format?: string | null };

function resolved(r: Resolved): Resolved {
  // Wallaroo apps are ES modules (`import * as wallaroo from "wallaroo"`), also
  // where no package.json says "type": "module"; only .cts stays CommonJS.
  if (r.url.startsWith("file:") && /\.(ts|tsx)$/.test(r.url) && r.format !== "module") {
    return { ...r, format: "module" };
  }
  return r;
}

function record(url: string): void {
  // Recorded before the module is evaluated: when the importer's import() settles, every module of its graph is here.
  if (url.startsWith("file:") && !url.includes("/node_modules/") && !(wallarooDir && url.startsWith(wallarooDir))) {
    userModules.add(url); // as loaded, query included: import() of this URL returns this very module
  }
}

export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  if (specifier === "wallaroo") return { url: wallarooUrl, shortCircuit: true };
  return resolved((await next(specifier, context)) as Resolved);
}

export async function load(
  url: string,
  context: unknown,
  next: (url: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  record(url);
  return next(url, context);
}

/** The same two hooks, synchronous, for module.registerHooks(). */
export function resolveSync(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => unknown,
): unknown {
  if (specifier === "wallaroo") return { url: wallarooUrl, shortCircuit: true };
  return resolved(next(specifier, context) as Resolved);
}

export function loadSync(url: string, context: unknown, next: (url: string, context: unknown) => unknown): unknown {
  record(url);
  return next(url, context);
}
