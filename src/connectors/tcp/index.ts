/**
 * The TCP connector: a source that listens and cuts the byte stream by the decoder's
 * length header or at newlines (source.ts), and a sink that connects and writes the encoder's bytes
 * as one stream (sink.ts).
 */
import type { TCPSinkSpec, TCPSourceSpec } from "../../topology/spec.js";
import { parseLengthFormat } from "../../core/struct.js";
import type { Connector, SinkConnector, SourceConnector } from "../connector.js";
import type { TcpSourceInit } from "./source.js";
import type { TcpSinkInit } from "./sink.js";

const source: SourceConnector<TCPSourceSpec, TcpSourceInit> = {
  kind: "tcp-source",
  framing: "length-header",
  validate(spec) {
    parseLengthFormat(spec.decoder.lengthFmt);
  },
  init: (spec, ctx) => ({
    kind: "tcp-source",
    sourceId: ctx.sourceId,
    pipeline: ctx.pipeline,
    rings: ctx.rings,
    workerBells: ctx.workerBells,
    host: spec.host,
    port: spec.port,
    framing: spec.framing,
    headerLength: spec.decoder.headerLength,
    lengthFmt: spec.decoder.lengthFmt,
    maxFrameBytes: ctx.maxFrameBytes,
    blockedMs: ctx.metrics?.blockedMs,
    backlog: ctx.metrics?.backlog,
  }),
  load: async () => (await import("./source.js")).runTcpSource,
  lagTopic: () => null,
};

const sink: SinkConnector<TCPSinkSpec, TcpSinkInit> = {
  kind: "tcp-sink",
  output: "stream",
  transactional: false,
  validate() {},
  init: (spec, ctx) => ({
    kind: "tcp-sink",
    sinkId: ctx.sinkId,
    label: ctx.label,
    rings: ctx.rings,
    bell: ctx.bell,
    status: ctx.status,
    statusSlot: ctx.statusSlot,
    host: spec.host,
    port: spec.port,
    counters: ctx.counters,
  }),
  load: async () => (await import("./sink.js")).runTcpSink,
};

export const tcp: Connector = { name: "tcp", source, sink };
