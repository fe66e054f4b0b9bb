/**
 * Entry of an I/O thread: hosts one connector. I/O threads never load the
 * application: decoding and encoding (user code) happen on the workers, so
 * connectors only move bytes.
 */
import { parentPort, workerData } from "node:worker_threads";
import { runTcpSource, type TcpSourceInit } from "../connectors/tcp-source.js";
import { runTcpSink, type TcpSinkInit } from "../connectors/tcp-sink.js";

export type IoInit = TcpSourceInit | TcpSinkInit;

const init = workerData as IoInit;
switch (init.kind) {
  case "tcp-source":
    runTcpSource(init, parentPort!);
    break;
  case "tcp-sink":
    runTcpSink(init, parentPort!);
    break;
}
