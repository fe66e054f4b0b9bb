// A clock shared by the processes of one benchmark run. process.hrtime() reads CLOCK_MONOTONIC,
// which on Linux is one system-wide clock, so a stamp taken in the sender and read in the
// receiver compare directly (no Date.now() millisecond error). The orchestrator passes its own
// reading as the epoch so that stamps stay small (exact in a double, and in a u32 of microseconds
// for ~71 minutes).
let epoch = 0n;

export function setEpoch(ns) {
  epoch = BigInt(ns);
}

export function newEpoch() {
  return process.hrtime.bigint().toString();
}

/** nanoseconds since the epoch */
export function nowNs() {
  return Number(process.hrtime.bigint() - epoch);
}

/** How a latency stamp is written in a payload: a f64 LE of ns, or a u32 BE of microseconds (mod 2^32). */
export const STAMPS = {
  f64ns: {
    write: (buf, off, ns) => buf.writeDoubleLE(ns, off),
    latencyNs: (buf, off, nowNs) => nowNs - buf.readDoubleLE(off),
  },
  u32us: {
    write: (buf, off, ns) => buf.writeUInt32BE(Math.floor(ns / 1000) >>> 0, off),
    latencyNs: (buf, off, nowNs) => ((Math.floor(nowNs / 1000) - buf.readUInt32BE(off)) >>> 0) * 1000,
  },
};
