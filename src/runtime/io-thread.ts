/**
 * Entry of an I/O thread: hosts one connector. I/O threads never load the
 * application: decoding and encoding (user code) happen on the workers, so
 * connectors only move bytes. Connectors are imported on demand so that a TCP
 * thread does not load kafkajs.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { TcpSourceInit } from "../connectors/tcp/source.js";
import type { TcpSinkInit } from "../connectors/tcp/sink.js";
import type { KafkaSourceInit } from "../connectors/kafka/source.js";
import type { KafkaSinkInit } from "../connectors/kafka/sink.js";

import { HEARTBEAT_MS, type FromIo } from "../control/protocol.js";

export type IoInit = TcpSourceInit | TcpSinkInit | KafkaSourceInit | KafkaSinkInit;

// Shows the coordinator that this thread's event loop runs (a silent thread past the stall timeout is declared stuck).
setInterval(() => parentPort!.postMessage({ type: "heartbeat" } satisfies FromIo), HEARTBEAT_MS).unref();

const init = workerData as IoInit;
switch (init.kind) {
  case "tcp-source":
    (await import("../connectors/tcp/source.js")).runTcpSource(init, parentPort!);
    break;
  case "tcp-sink":
    (await import("../connectors/tcp/sink.js")).runTcpSink(init, parentPort!);
    break;
  case "kafka-source":
    (await import("../connectors/kafka/source.js")).runKafkaSource(init, parentPort!);
    break;
  case "kafka-sink":
    (await import("../connectors/kafka/sink.js")).runKafkaSink(init, parentPort!);
    break;
}
