#!/usr/bin/env node
// Deterministic generator of alphabet votes: raw 5-byte records (1-byte
// lowercase letter, u32 BE votes in [1, 10000)), as Wallaroo's _test/gen.py
// made them, but without the length header: `wallaroo send --binary FILE
// --record-size 5` frames each record.
//
//   node examples/alphabet/gen.mjs --count 1000 --out examples/alphabet/votes.bin   (committed data)
//   node examples/alphabet/gen.mjs --count 1000000 --out /tmp/votes.bin
//
// Options: --count N (default 1000), --seed S (default 1), --out FILE (required).
import { openSync, writeSync, closeSync } from "node:fs";
import { pathToFileURL } from "node:url";

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

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
  const o = { count: 1000, seed: 1, out: null };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--count" || a === "-n") o.count = Number(argv[++i]);
    else if (a === "--seed") o.seed = Number(argv[++i]);
    else if (a === "--out" || a === "-o") o.out = argv[++i];
    else throw new Error(`unknown argument ${a}; usage: gen.mjs [--count N] [--seed S] --out FILE`);
  }
  if (!o.out) throw new Error("--out FILE is required (the output is binary)");
  if (!Number.isInteger(o.count) || o.count < 0) throw new Error("--count must be a non-negative integer");
  const r = rng(o.seed);
  const fd = openSync(o.out, "w");
  const CHUNK = 65536;
  const buf = Buffer.alloc(CHUNK * 5);
  let n = 0;
  for (let i = 0; i < o.count; i++) {
    buf[n * 5] = LETTERS.charCodeAt(Math.floor(r() * 26));
    buf.writeUInt32BE(1 + Math.floor(r() * 9999), n * 5 + 1);
    if (++n === CHUNK) {
      writeSync(fd, buf, 0, n * 5);
      n = 0;
    }
  }
  if (n) writeSync(fd, buf, 0, n * 5);
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
