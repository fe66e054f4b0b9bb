#!/usr/bin/env node
// piscina word_count: lines are split into words in the pool; the counts (state) are kept on
// the main thread, the only place that sees every word in order.
import { runPool } from "./piscina-pool.mjs";
import { countWords } from "./logic.mjs";

const totals = new Map();
await runPool([{ task: "split", apply: (words, sink) => sink.write(countWords(words, totals)) }]);
