/**
 * Every connector, one line each. Adding a connector is a folder under
 * src/connectors/ with an index.ts that exports a `Connector` (connector.ts), and its
 * line here (test/architecture/connectors.test.ts checks both).
 */
import type { SinkSpec, SourceSpec } from "../topology/spec.js";
import type { Connector, SinkConnector, SourceConnector } from "./connector.js";
import { tcp } from "./tcp/index.js";
import { kafka } from "./kafka/index.js";
import { file } from "./file/index.js";

export const CONNECTORS: readonly Connector[] = [tcp, kafka, file];

const sources = new Map(CONNECTORS.flatMap((c) => (c.source ? [[c.source.kind, c.source] as const] : [])));
const sinks = new Map(CONNECTORS.flatMap((c) => (c.sink ? [[c.sink.kind, c.sink] as const] : [])));

/** The connector that runs a source of this kind; throws for a kind no connector runs. */
export function sourceConnector<S extends SourceSpec>(spec: S | S["kind"]): SourceConnector<S> {
  const kind = typeof spec === "string" ? spec : spec.kind;
  const c = sources.get(kind);
  if (!c)
    throw new Error(
      `no connector runs a source of kind ${JSON.stringify(kind)}; known: ${[...sources.keys()].join(", ")}`,
    );
  return c;
}

/** The connector that runs a sink of this kind; throws for a kind no connector runs. */
export function sinkConnector<S extends SinkSpec>(spec: S | S["kind"]): SinkConnector<S> {
  const kind = typeof spec === "string" ? spec : spec.kind;
  const c = sinks.get(kind);
  if (!c)
    throw new Error(`no connector runs a sink of kind ${JSON.stringify(kind)}; known: ${[...sinks.keys()].join(", ")}`);
  return c;
}

/** The connector of an I/O thread's init data (io-thread.ts), source or sink. */
export function ioConnector(kind: string): SourceConnector | SinkConnector {
  const c = sources.get(kind) ?? sinks.get(kind);
  if (!c) throw new Error(`no connector runs an I/O thread of kind ${JSON.stringify(kind)}`);
  return c;
}
