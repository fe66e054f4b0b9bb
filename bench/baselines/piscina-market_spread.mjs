#!/usr/bin/env node
// piscina market_spread: orders and NBBO records are decoded in the pool; the symbol state and
// the checks run on the main thread.
import { runPool } from "./piscina-pool.mjs";
import { applyNbbo, checkOrders } from "./logic.mjs";

const state = new Map();
await runPool([
  {
    task: "orders",
    apply: (orders, sink) => {
      const out = checkOrders(orders, state);
      if (out) sink.write(out);
    },
  },
  { task: "nbbo", apply: (updates) => applyNbbo(updates, state) },
]);
