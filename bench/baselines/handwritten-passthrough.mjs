#!/usr/bin/env node
// Hand-written passthrough: one thread, frames in, the same payloads re-framed out.
import { parseCli, Gate, connectSink, listenFrames, ready } from "./common.mjs";
import { passthroughEncode } from "./logic.mjs";

const cli = parseCli();
const gate = new Gate();
const sink = await connectSink(cli.out, gate);
await listenFrames(cli.in[0], gate, (buf, end) => sink.write(passthroughEncode(buf, end)));
ready();
