#!/usr/bin/env node
// Hand-written market_spread: one thread, two sources (orders, then NBBO) sharing one Map of
// symbol state; rejected orders out.
import { parseCli, Gate, connectSink, listenFrames, ready } from "./common.mjs";
import { decodeNbbo, applyNbbo, decodeOrders, checkOrders } from "./logic.mjs";

const cli = parseCli();
const gate = new Gate();
const state = new Map();
const sink = await connectSink(cli.out, gate);
await listenFrames(cli.in[0], gate, (buf, end) => {
  const out = checkOrders(decodeOrders(buf, end), state);
  if (out) sink.write(out);
});
await listenFrames(cli.in[1], gate, (buf, end) => applyNbbo(decodeNbbo(buf, end), state));
ready();
