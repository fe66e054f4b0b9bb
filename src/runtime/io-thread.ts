/**
 * Entry of an I/O thread: hosts one connector. I/O threads never load the
 * application: decoding and encoding (user code) happen on the workers, so
 * connectors only move bytes. The connector's code is imported on demand (its
 * `load()`, src/connectors/connector.ts) so that a TCP thread does not load kafkajs.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { IoInitBase } from "../connectors/connector.js";
import { ioConnector } from "../connectors/registry.js";

import { HEARTBEAT_MS, type FromIo } from "../control/protocol.js";
import { startReclaim } from "./reclaim.js";

/** What the coordinator passes an I/O thread: the init data a connector's init() built. */
export type IoInit = IoInitBase;

// Shows the coordinator that this thread's event loop runs (a silent thread past the stall timeout is declared stuck).
setInterval(() => parentPort!.postMessage({ type: "heartbeat" } satisfies FromIo), HEARTBEAT_MS).unref();

// Dead read buffers are collected once 8 MiB of them may have piled up, not V8's 64 MB (see reclaim.ts).
// WALLAROO_IO_RECLAIM_MB=0 leaves them to V8.
startReclaim(Number(process.env.WALLAROO_IO_RECLAIM_MB ?? 8) * 1024 * 1024);

const init = workerData as IoInit;
(await ioConnector(init.kind).load())(init, parentPort!);
