/**
 * Module resolution hook: the bare specifier "wallaroo" resolves to this package
 * for an application file wherever it lives, as Machida put wallaroo on the Python
 * path. Registered with module.register() in every thread that loads the app.
 */
let wallarooUrl = "";

export function initialize(data: { wallarooUrl: string }): void {
  wallarooUrl = data.wallarooUrl;
}

export async function resolve(
  specifier: string,
  context: unknown,
  next: (specifier: string, context: unknown) => Promise<unknown>,
): Promise<unknown> {
  if (specifier === "wallaroo") return { url: wallarooUrl, shortCircuit: true };
  const resolved = (await next(specifier, context)) as { url: string; format?: string };
  // Wallaroo apps are ES modules (`import * as wallaroo from "wallaroo"`), also
  // where no package.json says "type": "module"; only .cts stays CommonJS.
  if (resolved.url.startsWith("file:") && /\.(ts|tsx)$/.test(resolved.url) && resolved.format !== "module") {
    return { ...resolved, format: "module" };
  }
  return resolved;
}
