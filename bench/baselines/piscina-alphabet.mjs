#!/usr/bin/env node
// piscina alphabet: votes are decoded in the pool; totals (state) on the main thread.
import { runPool } from "./piscina-pool.mjs";
import { addVotes } from "./logic.mjs";

const totals = new Float64Array(256);
await runPool([{ task: "votes", apply: (v, sink) => sink.write(addVotes(v, totals)) }]);
