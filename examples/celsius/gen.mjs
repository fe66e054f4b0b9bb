#!/usr/bin/env node
// Deterministic generator of celsius input records: raw 4-byte big-endian
// float32 values (no length header; `wallaroo send --binary FILE --record-size 4`
// adds the 4-byte frame header to each record). Values are uniform in
// [0, 10000) as in Wallaroo's data_gen.py.
//
//   node examples/celsius/gen.mjs --count 1000000 --out /tmp/celsius.bin
//   node examples/celsius/gen.mjs --count 200 --edge-cases --out examples/celsius/celsius.bin   (committed data)
//
// Options: --count N (default 200), --seed S (default 1), --out FILE (required),
// --edge-cases: start with a few fixed values (0, 100, -40, 37, -273.15, the
// largest float32, ...) before the random ones.
import { openSync, writeSync, closeSync } from "node:fs";
import { pathToFileURL } from "node:url";

export const EDGE_CASES = [
  0, 100, -40, 37, -273.15, 36.6, 1e-7, -17.77777777, 3.4028234663852886e38, -3.4028234663852886e38, 0.5, 9999.99,
];

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function main() {
  const o = { count: 200, seed: 1, out: null, edge: false };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--count" || a === "-n") o.count = Number(argv[++i]);
    else if (a === "--seed") o.seed = Number(argv[++i]);
    else if (a === "--out" || a === "-o") o.out = argv[++i];
    else if (a === "--edge-cases") o.edge = true;
    else throw new Error(`unknown argument ${a}; usage: gen.mjs [--count N] [--seed S] [--edge-cases] --out FILE`);
  }
  if (!o.out) throw new Error("--out FILE is required (the output is binary)");
  if (!Number.isInteger(o.count) || o.count < 0) throw new Error("--count must be a non-negative integer");
  const r = rng(o.seed);
  const fd = openSync(o.out, "w");
  const CHUNK = 65536;
  const buf = Buffer.alloc(CHUNK * 4);
  let n = 0;
  const push = (v) => {
    buf.writeFloatBE(v, n * 4);
    if (++n === CHUNK) {
      writeSync(fd, buf, 0, n * 4);
      n = 0;
    }
  };
  if (o.edge) for (const v of EDGE_CASES) push(v);
  for (let i = 0; i < o.count; i++) push(r() * 10000);
  if (n) writeSync(fd, buf, 0, n * 4);
  closeSync(fd);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    main();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
