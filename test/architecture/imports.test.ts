/**
 * The dependency rule of src/: folders form layers, and a module may import only from its own
 * layer or the layers below it; no module imports itself back through a cycle. Adding a folder
 * means placing it in LAYERS (that is the point: the test makes the direction a decision).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");

/**
 * Bottom first. core: hashing, length formats, logging; topology: the spec and the plan;
 * windows: window assignment, firing and watermarks (pure, per key and per input); api: what applications call; transport: rings, doorbells, channels, serialization, the shared
 * memory layout; recovery: the checkpoint store; control: the typed messages between threads;
 * metrics: the counters threads keep in shared memory and the server that reports them;
 * engine: the step runner; connectors: sources and sinks in I/O threads; runtime: coordinator,
 * workers, loader; testing: the in-process driver; cli: the commands; "." is the package entry (index.ts).
 */
const LAYERS = [
  "core",
  "topology",
  "windows",
  "api",
  "transport",
  "recovery",
  "control",
  "metrics",
  "engine",
  "connectors",
  "runtime",
  "testing",
  "cli",
  ".",
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return /\.(ts|mts)$/.test(name) && !name.endsWith(".d.ts") ? [p] : [];
  });
}

/** relative imports of a module (static, re-exports, dynamic with a literal), as absolute .ts paths */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.[^"']+)["']/g)].map((m) => m[1]!);
  return specs.map((s) => resolve(dirname(file), s).replace(/\.js$/, ".ts"));
}

const layerOf = (file: string): string => {
  const rel = relative(SRC, file);
  return rel.includes("/") ? rel.slice(0, rel.indexOf("/")) : ".";
};

const modules = files(SRC);
const graph = new Map(modules.map((m) => [m, importsOf(m)]));

describe("src/ dependency direction", () => {
  it("places every folder of src/ in a layer", () => {
    const unknown = [...new Set(modules.map(layerOf))].filter((l) => !LAYERS.includes(l));
    expect(unknown, "add new folders to LAYERS in this test, at the height they belong").toEqual([]);
  });

  it("imports only from the same layer or below", () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        if (LAYERS.indexOf(layerOf(to)) > LAYERS.indexOf(layerOf(from))) {
          upward.push(`${relative(SRC, from)} imports ${relative(SRC, to)} (${layerOf(from)} is below ${layerOf(to)})`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it("has no import cycle between modules", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (m: string) => {
      state.set(m, "open");
      stack.push(m);
      for (const t of graph.get(m) ?? []) {
        if (!graph.has(t)) continue;
        if (state.get(t) === "open")
          cycles.push([...stack.slice(stack.indexOf(t)), t].map((x) => relative(SRC, x)).join(" -> "));
        else if (!state.has(t)) visit(t);
      }
      stack.pop();
      state.set(m, "done");
    };
    for (const m of graph.keys()) if (!state.has(m)) visit(m);
    expect(cycles).toEqual([]);
  });

  it("resolves every relative import to a file of src/", () => {
    // a check on the check: an import the regex misreads would otherwise pass unnoticed
    const missing = [...graph].flatMap(([from, ts]) =>
      ts.filter((t) => !graph.has(t)).map((t) => `${relative(SRC, from)} -> ${relative(SRC, t)}`),
    );
    expect(missing).toEqual([]);
  });
});
