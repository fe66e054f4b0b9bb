// passthrough: 64-byte frames (60-byte payload) through one toParallel identity step; every
// payload starts with the sender's f64 ns stamp, so latency is measured on every message.
export default {
  name: "passthrough",
  description: "64 B frames through one `toParallel` identity step (bench/apps/passthrough.ts)",
  app: "bench/apps/passthrough.ts",
  unit: "msgs",
  unitFrom: "out",
  inFromOut: (out) => out, // one output per input
  sources: () => [{ name: "frames", input: { kind: "fixed", frameBytes: 64 }, stamp: { offset: 4, type: "f64ns" } }],
  output: { mode: "framed", stamp: { offset: 4, type: "f64ns" } },
};
