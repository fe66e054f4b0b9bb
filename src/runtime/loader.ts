/**
 * Loads an application module in the current thread: TypeScript files run as they
 * are (through tsx), and `import ... from "wallaroo"` finds this package.
 */
import { register } from "node:module";
import { pathToFileURL } from "node:url";
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

export async function loadAppModule(url: string): Promise<Record<string, unknown>> {
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
  return (await import(url)) as Record<string, unknown>;
}

/** Calls the module's applicationSetup(args) and checks it returned builder.build(). */
export function setupApplication(mod: Record<string, unknown>, args: string[], where: string): ApplicationSpec {
  const setup = (mod.applicationSetup ?? mod.application_setup) as ((args: string[]) => unknown) | undefined;
  if (typeof setup !== "function") {
    throw new Error(`${where} does not export applicationSetup(args) (or application_setup); export a function returning builder.build()`);
  }
  const spec = setup([...args]) as ApplicationSpec;
  if (!spec || (spec as any)[KIND] !== "application") {
    throw new Error(`applicationSetup in ${where} must return the result of ApplicationBuilder.build()`);
  }
  return spec;
}
