#!/usr/bin/env node
// Hand-written windowed count: one thread, votes in, a count per letter in tumbling 1 s windows
// of ingest time (the clock read once per socket read: every event of a read is in the same
// window), each closed window out as "LETTER START END EVENTS\n" when the clock passes its end
// (at the first read after it, or a 50 ms timer when the input is quiet), as
// bench/apps/windowed_count.ts does in the engine.
import { parseCli, Gate, connectSink, listenFrames, ready } from "./common.mjs";

const RANGE = 1000;
const cli = parseCli();
const gate = new Gate();
const counts = new Float64Array(256);
let start = -1;
const sink = await connectSink(cli.out, gate);

/** Emits the current window if the clock has passed its end, and starts the window of `now`. */
function roll(now) {
  if (start >= 0 && now < start + RANGE) return;
  if (start >= 0) {
    let out = "";
    for (let l = 0; l < 256; l++) {
      if (counts[l] > 0) {
        out += `${String.fromCharCode(l)} ${start} ${start + RANGE} ${counts[l]}\n`;
        counts[l] = 0;
      }
    }
    if (out) sink.write(out);
  }
  start = now - (now % RANGE);
}

await listenFrames(cli.in[0], gate, (buf, end) => {
  roll(Date.now());
  for (let o = 0; o < end; o += 4 + buf.readUInt32BE(o)) counts[buf[o + 4]]++;
});
setInterval(() => {
  if (start >= 0) roll(Date.now());
}, 50);
ready();
