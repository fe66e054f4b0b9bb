#!/usr/bin/env node
// Hand-written word_count: one thread, lines in, split, count per word in a Map, "word => count\n" out.
import { parseCli, Gate, connectSink, listenFrames, ready } from "./common.mjs";
import { splitFrames, countWords } from "./logic.mjs";

const cli = parseCli();
const gate = new Gate();
const totals = new Map();
const sink = await connectSink(cli.out, gate);
await listenFrames(cli.in[0], gate, (buf, end) => sink.write(countWords(splitFrames(buf, end, []), totals)));
ready();
