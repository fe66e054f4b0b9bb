#!/usr/bin/env node
// Receiver (a child process of bench/e2e.mjs, driven over IPC): listens where the system under
// test's sink connects and only counts what arrives: length-framed messages (4-byte BE header)
// or lines. With a stamp spec it reads the send time stamped in each framed message and records
// now - stamp in an HDR histogram (one clock reading per socket read).
//
// config (JSON in argv[2]): { mode: 'framed'|'lines', stamp: null | { offset, type }, epoch }
//   stamp.offset is counted from the start of the frame (header included).
// IPC: sends {op:'listening', port} first; {op:'snap'} -> {op:'snap', count, bytes, t};
//      {op:'reset'} -> clears the histogram; {op:'hist'} -> {op:'hist', samples, p50, p99, p999, p9999, max, mean} (ns)
import net from "node:net";
import * as hdr from "hdr-histogram-js";
import { setEpoch, nowNs, STAMPS } from "../lib/clock.mjs";

const cfg = JSON.parse(process.argv[2]);
setEpoch(cfg.epoch ?? "0");
const stamp = cfg.stamp ? STAMPS[cfg.stamp.type] : null;
const stampOff = cfg.stamp?.offset ?? 0;
const stampEnd = stampOff + (cfg.stamp?.type === "f64ns" ? 8 : 4);
const newHist = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3.6e12, numberOfSignificantValueDigits: 3 });
let hist = newHist();

let count = 0;
let bytes = 0;

function framedReader() {
  let rest = null;
  return (chunk) => {
    const b = rest ? Buffer.concat([rest, chunk]) : chunk;
    const now = stamp ? nowNs() : 0;
    let o = 0;
    while (o + 4 <= b.length) {
      const end = o + 4 + b.readUInt32BE(o);
      if (end > b.length) break;
      if (stamp && o + stampEnd <= end) hist.recordValue(Math.max(1, stamp.latencyNs(b, o + stampOff, now)));
      count++;
      o = end;
    }
    rest = o < b.length ? b.subarray(o) : null;
  };
}

function lineReader() {
  return (chunk) => {
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) count++;
  };
}

const server = net.createServer((sock) => {
  const read = cfg.mode === "lines" ? lineReader() : framedReader();
  sock.on("data", (chunk) => {
    bytes += chunk.length;
    read(chunk);
  });
  sock.on("error", () => {});
});
server.listen(cfg.port ?? 0, "127.0.0.1", () => process.send({ op: "listening", port: server.address().port }));

process.on("message", (m) => {
  if (m.op === "snap") process.send({ op: "snap", count, bytes, t: nowNs() });
  else if (m.op === "reset") {
    hist = newHist();
    process.send({ op: "reset" });
  } else if (m.op === "hist") {
    const p = (q) => hist.getValueAtPercentile(q);
    process.send({
      op: "hist",
      samples: hist.totalCount,
      p50: p(50),
      p99: p(99),
      p999: p(99.9),
      p9999: p(99.99),
      max: hist.maxValue,
      mean: hist.mean,
    });
  }
});
process.on("disconnect", () => process.exit(0));
