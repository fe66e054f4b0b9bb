/**
 * Loads an application module in the current thread: TypeScript files run as they
 * are (through tsx), and `import ... from "wallaroo"` finds this package.
 */
import { register } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isAbsolute, resolve as resolvePath } from "node:path";
import type { ApplicationSpec } from "../topology/spec.js";
import { KIND } from "../topology/spec.js";

let hooksRegistered = false;
let tsxRegistered = false;

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
    const err = new Error(`cannot find the application module ${fileURLToPath(url)}` +
      ` (a relative path is resolved against the current directory, ${process.cwd()})`);
    (err as NodeJS.ErrnoException).code = "ERR_MODULE_NOT_FOUND";
    err.stack = `Error: ${err.message}`; // the user's mistake, not a place in the engine

    throw err;
  }
  if (!tsxRegistered && /\.(ts|mts|cts|tsx)$/.test(new URL(url).pathname)) {
    tsxRegistered = true;
    const tsx = await import("tsx/esm/api");
    tsx.register();
  }
  if (!hooksRegistered) {
    // Registered after tsx so that it runs first (hooks chain last-registered first).
    hooksRegistered = true;
    register(new URL("./resolve-hooks.js", import.meta.url), {
      data: { wallarooUrl: new URL("../index.js", import.meta.url).href },
    });
  }
  try {
    return (await import(url)) as Record<string, unknown>;
  } catch (err) {
    // A missing import inside the application: Node names the importing file, which
    // is the user's; only a message that points into this package is rewritten.
    if (err instanceof Error && / imported from \S*\/dist\/runtime\/loader\.js/.test(err.message)) {
      err.message = err.message.replace(/ imported from \S*\/dist\/runtime\/loader\.js/, ` (loading ${displayPath(url)})`);
    }
    throw err;
  }
}

/** Calls the module's applicationSetup(args) and checks it returned builder.build(). */
export function setupApplication(mod: Record<string, unknown>, args: string[], where: string): ApplicationSpec {
  const setup = (mod.applicationSetup ?? mod.application_setup) as ((args: string[]) => unknown) | undefined;
  if (typeof setup !== "function") {
    throw new Error(`${displayPath(where)} does not export applicationSetup(args) (or application_setup); export a function returning builder.build()`);
  }
  const spec = setup([...args]) as ApplicationSpec;
  if (!spec || (spec as any)[KIND] !== "application") {
    throw new Error(`applicationSetup in ${displayPath(where)} must return the result of ApplicationBuilder.build(), got ${spec === null ? "null" : typeof spec}`);
  }
  return spec;
}
