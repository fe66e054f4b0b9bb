/**
 * The Kafka connector: a consumer-group source (source.ts) and a producer sink
 * (sink.ts) on kafkajs (client.ts, kafkajs-patches.ts), both loaded only in their
 * I/O threads.
 */
import type { KafkaSinkSpec, KafkaSourceSpec } from "../../topology/spec.js";
import type { KafkaLogLevel } from "../../api/configs.js";
import type { Connector, SinkConnector, SourceConnector } from "../connector.js";
import type { KafkaSourceInit } from "./source.js";
import type { KafkaSinkInit } from "./sink.js";
import { metaDecoder, wantsMeta, writeMessageFrame } from "./message-frame.js";

const source: SourceConnector<KafkaSourceSpec, KafkaSourceInit> = {
  kind: "kafka-source",
  framing: "message",
  validate() {},
  init: (spec, ctx) => ({
    kind: "kafka-source",
    sourceId: ctx.sourceId,
    pipeline: ctx.pipeline,
    rings: ctx.rings,
    workerBells: ctx.workerBells,
    topic: spec.topic,
    brokers: spec.brokers,
    logLevel: spec.logLevel as KafkaLogLevel,
    security: spec.security,
    metadata: wantsMeta(spec.decoder),
    groupId: ctx.consumerGroup,
    blockedMs: ctx.metrics?.blockedMs,
    lag: ctx.metrics?.lag,
    stampEventTime: ctx.stampEventTime,
    resilience: ctx.resilience !== null,
    // Offsets saved for another topic (the application changed its source) do not apply.
    startOffsets: ctx.resilience?.position?.topic === spec.topic ? ctx.resilience.position.offsets : {},
  }),
  load: async () => (await import("./source.js")).runKafkaSource,
  lagTopic: (spec) => spec.topic,
  decodeFn: (spec) => (wantsMeta(spec.decoder) ? metaDecoder(spec.decoder, spec.topic) : null),
  testPayload: (spec, m) => {
    if (!wantsMeta(spec.decoder)) return m.value;
    const [buf, len] = writeMessageFrame(Buffer.alloc(0), {
      key: m.key,
      value: m.value,
      timestamp: m.timestamp ?? Date.now(),
      offset: m.offset ?? 0,
      partition: m.partition ?? 0,
      headers: m.headers,
    });
    return buf.subarray(0, len);
  },
};

const sink: SinkConnector<KafkaSinkSpec, KafkaSinkInit> = {
  kind: "kafka-sink",
  output: "records",
  transactional: true,
  validate() {},
  init: (spec, ctx) => ({
    kind: "kafka-sink",
    sinkId: ctx.sinkId,
    label: ctx.label,
    rings: ctx.rings,
    bell: ctx.bell,
    status: ctx.status,
    statusSlot: ctx.statusSlot,
    topic: spec.topic,
    brokers: spec.brokers,
    logLevel: spec.logLevel as KafkaLogLevel,
    security: spec.security,
    maxProduceBufferMs: spec.maxProduceBufferMs,
    maxMessageSize: spec.maxMessageSize,
    // Stable across restarts on one store, so that a restarted engine fences its predecessor and aborts its
    // open transaction; the store's id keeps engines of the same application on other stores apart.
    transactionalId: ctx.resilience ? `wallaroo.${ctx.appName}.${ctx.storeInstance}.sink-${ctx.sinkId}` : undefined,
    pendingTransactions: [...ctx.pendingTransactions],
  }),
  load: async () => (await import("./sink.js")).runKafkaSink,
};

export const kafka: Connector = { name: "kafka", source, sink };
