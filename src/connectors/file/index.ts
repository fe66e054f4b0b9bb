/**
 * The file connector: a source that reads a file or a directory of them, by lines or
 * by the decoder's length header, resuming at its checkpointed position (source.ts),
 * and a sink that appends the encoder's bytes with rotation by size, truncated back
 * to its checkpointed end on restore (sink.ts).
 */
import { existsSync, statSync } from "node:fs";
import { dirname } from "node:path";
import type { FileSinkSpec, FileSourceSpec } from "../../topology/spec.js";
import { parseLengthFormat } from "../../core/struct.js";
import type { Connector, SinkConnector, SourceConnector } from "../connector.js";
import type { FileSourceInit } from "./source.js";
import type { FileSinkInit } from "./sink.js";

/** The position "topic" of a file source (its path): offsets saved for another path do not apply. */
const positionTopic = (path: string) => `file ${path}`;

const source: SourceConnector<FileSourceSpec, FileSourceInit> = {
  kind: "file-source",
  framing: "length-header",
  validate(spec) {
    parseLengthFormat(spec.decoder.lengthFmt);
    if (!spec.follow && !existsSync(spec.path))
      throw new Error(
        `FileSourceConfig: ${spec.path} does not exist; give an existing file or directory, or { follow: true } to wait for it`,
      );
  },
  init: (spec, ctx) => ({
    kind: "file-source",
    sourceId: ctx.sourceId,
    pipeline: ctx.pipeline,
    path: spec.path,
    framing: spec.framing,
    follow: spec.follow,
    lengthFmt: spec.decoder.lengthFmt,
    maxFrameBytes: ctx.maxFrameBytes,
    rings: ctx.rings,
    workerBells: ctx.workerBells,
    start:
      ctx.resilience === null
        ? null
        : ctx.resilience.position?.topic === positionTopic(spec.path)
          ? ctx.resilience.position.offsets
          : {},
    blockedMs: ctx.metrics?.blockedMs,
  }),
  load: async () => (await import("./source.js")).runFileSource,
  lagTopic: () => null,
};

const sink: SinkConnector<FileSinkSpec, FileSinkInit> = {
  kind: "file-sink",
  output: "stream",
  // With resilience it records its end at each checkpoint (prepare) and truncates to it on restore.
  transactional: true,
  validate(spec) {
    const dir = dirname(spec.path);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new Error(`FileSinkConfig: the directory ${dir} of ${spec.path} does not exist; create it first`);
    if (existsSync(spec.path) && statSync(spec.path).isDirectory())
      throw new Error(`FileSinkConfig: ${spec.path} is a directory; give the path of a file to append to`);
  },
  init: (spec, ctx) => {
    const own = ctx.pendingTransactions.find((t) => t.transactionalId === `file ${spec.path}`);
    return {
      kind: "file-sink",
      sinkId: ctx.sinkId,
      label: ctx.label,
      path: spec.path,
      maxBytes: spec.maxBytes,
      rings: ctx.rings,
      bell: ctx.bell,
      status: ctx.status,
      statusSlot: ctx.statusSlot,
      resilience: ctx.resilience,
      restore: own ? { rotations: own.producerEpoch, bytes: Number(own.producerId) } : null,
    };
  },
  load: async () => (await import("./sink.js")).runFileSink,
};

export const file: Connector = { name: "file", source, sink };
