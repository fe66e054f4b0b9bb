#!/usr/bin/env node
// piscina passthrough: batches re-framed in the pool, written out by the main thread.
import { runPool } from "./piscina-pool.mjs";

await runPool([{ task: "passthrough", apply: (ab, sink) => sink.write(Buffer.from(ab)) }]);
