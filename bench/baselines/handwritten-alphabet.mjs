#!/usr/bin/env node
// Hand-written alphabet: one thread, votes in, running total per letter, (letter, total) records out.
import { parseCli, Gate, connectSink, listenFrames, ready } from "./common.mjs";
import { decodeVotes, addVotes } from "./logic.mjs";

const cli = parseCli();
const gate = new Gate();
const totals = new Float64Array(256);
const sink = await connectSink(cli.out, gate);
await listenFrames(cli.in[0], gate, (buf, end) => sink.write(addVotes(decodeVotes(buf, end), totals)));
ready();
