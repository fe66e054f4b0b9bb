/**
 * "Adding a connector is one folder and one registry line", made checkable: the
 * engine outside src/connectors/ never names a connector's kind (it asks the
 * registry), every registered connector is a folder with an index.ts that exports
 * it, every folder is registered, and what the registry loads in every thread stays
 * light (the I/O thread's code, and kafkajs, only through load()).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { CONNECTORS, sinkConnector, sourceConnector } from "../../src/connectors/registry.js";
import {
  FileSinkConfig,
  FileSourceConfig,
  KafkaSinkConfig,
  KafkaSourceConfig,
  TCPSinkConfig,
  TCPSourceConfig,
} from "../../src/api/configs.js";
import { decoder, encoder } from "../../src/api/wrappers.js";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../../src");
const CONNECTORS_DIR = join(SRC, "connectors");

/**
 * The files that may name kinds: the public config classes make the specs and the
 * spec types declare them (both below the connectors layer, so they cannot ask the registry).
 */
const MAY_NAME_KINDS = new Set(["api/configs.ts", "topology/spec.ts"]);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return /\.(ts|mts)$/.test(name) && !name.endsWith(".d.ts") ? [p] : [];
  });
}

const kinds = CONNECTORS.flatMap((c) => [c.source?.kind, c.sink?.kind]).filter((k): k is string => k !== undefined);

/** The relative imports that load code at run time (not `import type`), resolved to .ts files. */
function valueImports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?\bfrom\s*["']([^"']+)["']/gms)) {
    if (m[2]) continue;
    out.push(m[3]!);
  }
  for (const m of text.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) out.push(m[1]!);
  return out.map((s) => (s.startsWith(".") ? resolve(dirname(file), s).replace(/\.js$/, ".ts") : s));
}

describe("connectors: one folder and one registry line each", () => {
  it("registers connectors with kinds", () => {
    // a check on the check: with no kinds, the scan below would pass on anything
    expect(kinds.length).toBeGreaterThanOrEqual(6);
    expect(CONNECTORS.map((c) => c.name)).toEqual(expect.arrayContaining(["tcp", "kafka", "file"]));
    expect(new Set(kinds).size).toBe(kinds.length);
  });

  it("no module outside src/connectors/ names a connector kind (it asks the registry)", () => {
    const named: string[] = [];
    for (const f of files(SRC)) {
      const rel = relative(SRC, f);
      if (rel.startsWith("connectors/") || MAY_NAME_KINDS.has(rel)) continue;
      const text = readFileSync(f, "utf8");
      text.split("\n").forEach((line, i) => {
        for (const k of kinds) if (new RegExp(`["'\`]${k}["'\`]`).test(line)) named.push(`${rel}:${i + 1}: ${k}`);
      });
    }
    expect(named, "look the source or sink up in src/connectors/registry.ts instead").toEqual([]);
  });

  it("each registered connector is a folder whose index.ts exports it", async () => {
    for (const c of CONNECTORS) {
      const index = join(CONNECTORS_DIR, c.name, "index.ts");
      expect(existsSync(index), `src/connectors/${c.name}/index.ts`).toBe(true);
      const mod = (await import(pathToFileURL(index).href)) as Record<string, unknown>;
      expect(Object.values(mod), `src/connectors/${c.name}/index.ts exports the registered connector`).toContain(c);
      expect(c.source ?? c.sink, `${c.name} has a source or a sink`).toBeDefined();
    }
  });

  it("every folder of src/connectors/ is a registered connector", () => {
    const folders = readdirSync(CONNECTORS_DIR).filter((n) => statSync(join(CONNECTORS_DIR, n)).isDirectory());
    expect(folders.sort()).toEqual(CONNECTORS.map((c) => c.name).sort());
  });

  it("every connector implements its side of the interface", async () => {
    for (const c of CONNECTORS) {
      for (const side of [c.source, c.sink]) {
        if (!side) continue;
        expect(typeof side.validate, `${side.kind}.validate`).toBe("function");
        expect(typeof side.init, `${side.kind}.init`).toBe("function");
        const main = await side.load();
        expect(typeof main, `${side.kind}.load() resolves to the I/O thread's entry`).toBe("function");
      }
      if (c.source) {
        expect(["length-header", "message"]).toContain(c.source.framing);
        expect(typeof c.source.lagTopic).toBe("function");
      }
      if (c.sink) {
        expect(["stream", "records"]).toContain(c.sink.output);
        expect(typeof c.sink.transactional).toBe("boolean");
      }
    }
  });

  it("every spec the public configs make has a connector", () => {
    const dec = decoder({}, (b: Buffer) => b);
    const enc = encoder((x: unknown) => x);
    const sources = [
      new TCPSourceConfig("127.0.0.1", 7000, dec).toSpec(),
      new TCPSourceConfig("127.0.0.1", 7000, dec, { framing: "lines" }).toSpec(),
      new KafkaSourceConfig("in", [["127.0.0.1", 9092]], "Warn", dec).toSpec(),
      new FileSourceConfig("in.txt", dec).toSpec(),
      new FileSourceConfig("in.bin", dec, { framing: "length", follow: true }).toSpec(),
    ];
    const sinks = [
      new TCPSinkConfig("127.0.0.1", 7002, enc).toSpec(),
      new KafkaSinkConfig("out", [["127.0.0.1", 9092]], "Warn", undefined, undefined, enc).toSpec(),
      new FileSinkConfig("out.txt", enc, { maxBytes: 1 << 20 }).toSpec(),
    ];
    for (const s of sources) expect(sourceConnector(s).kind).toBe(s.kind);
    for (const s of sinks) expect(sinkConnector(s).kind).toBe(s.kind);
    expect(() => sourceConnector("no-such-source" as never)).toThrow(/no connector runs a source of kind/);
  });

  it("what the registry loads in every thread stays light: no connector's thread code, no kafkajs", () => {
    // Every thread that asks the registry (workers included) loads these modules; the
    // I/O thread's code comes in only through a connector's load().
    const seen = new Set<string>();
    const bare = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const t of valueImports(f)) {
        if (t.startsWith("/")) visit(t);
        else bare.add(t);
      }
    };
    visit(join(CONNECTORS_DIR, "registry.ts"));
    const loaded = [...seen].map((f) => relative(SRC, f));
    // A connector's worker half of its wire format may come with its index.ts (the Kafka
    // source's message frame: the worker's decode of a record with its metadata); the check
    // below still holds it to no kafkajs. Nothing else of a connector's folder may.
    const WORKER_HALVES = new Set(["connectors/kafka/message-frame.ts"]);
    expect(loaded.filter((f) => /^connectors\/[^/]+\/(?!index\.ts$)/.test(f) && !WORKER_HALVES.has(f))).toEqual([]);
    expect([...bare].filter((b) => b.startsWith("kafkajs"))).toEqual([]);
    // a check on the check: the walk did reach every connector's index.ts
    for (const c of CONNECTORS) expect(loaded).toContain(`connectors/${c.name}/index.ts`);
  });
});
