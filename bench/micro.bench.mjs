#!/usr/bin/env node
// Single-thread microbenchmarks (tinybench) of the per-message costs the engine pays:
//   - serialization of typical messages, encode + decode round trip: msgpackr with records
//     (the engine's default), msgpackr without records, structuredClone, JSON
//   - header framing: reading the 4-byte '>I' headers of a buffer of 64 B frames with
//     parseLengthFormat (dist/core/struct.js) vs Buffer#readUInt32BE
//   - key hashing: hashString / hashKey (dist/core/hash.js)
//
// usage: npm run build && node bench/micro.bench.mjs [--quick] [--json]
import { Bench } from "tinybench";
import { Packr } from "msgpackr";
import { parseLengthFormat } from "../dist/core/struct.js";
import { hashKey, hashString } from "../dist/core/hash.js";

class WordCount {
  constructor(word, count) {
    this.word = word;
    this.count = count;
  }
}
class Votes {
  constructor(letter, votes) {
    this.letter = letter;
    this.votes = votes;
  }
}
class Order {
  constructor() {
    this.side = 1;
    this.account = 123456;
    this.orderId = "000042";
    this.symbol = " IBM";
    this.qty = 900;
    this.price = 143.27;
    this.transactTime = "20180102-14:30:00.010";
  }
}

const MESSAGES = {
  "WordCount {word,count}": new WordCount("neighbour", 1234),
  "Votes {letter,votes}": new Votes("q", 4242),
  "Order (7 fields)": new Order(),
  "60 B Buffer": Buffer.alloc(60, 7),
  "string (line, 80 chars)": "One engine slowly wandered. Another northern book mended our school toward a sad",
};

function serializers() {
  const rec = new Packr({ useRecords: true });
  const plain = new Packr({ useRecords: false, moreTypes: true }); // the engine's default (src/transport/serde.ts)
  return {
    "msgpackr (records)": (m) => rec.unpack(rec.pack(m)),
    "msgpackr (no records, moreTypes: the engine default)": (m) => plain.unpack(plain.pack(m)),
    structuredClone: (m) => structuredClone(m),
    JSON: (m) => JSON.parse(JSON.stringify(m)),
  };
}

// every task repeats its operation REPEAT times so that the timer's own cost does not dominate
const REPEAT = 256;
const FRAMES = 1024;
function framesBuffer() {
  const buf = Buffer.alloc(FRAMES * 64);
  for (let i = 0; i < FRAMES; i++) buf.writeUInt32BE(60, i * 64);
  return buf;
}

const WORDS = "the river mountain village neighbour traveller answer question golden silver a b".split(" ");
const loop = (fn) => () => {
  let h = 0;
  for (let r = 0; r < 32; r++) h ^= fn();
  return h;
};

export async function runMicro({ quick = false } = {}) {
  const bench = new Bench({ time: quick ? 60 : 400, warmupTime: quick ? 20 : 100 });
  const groups = [];
  const add = (group, name, fn, perOp = 1) => {
    bench.add(`${group}: ${name}`, fn);
    groups.push({ group, name, perOp });
  };
  for (const [sname, fn] of Object.entries(serializers())) {
    for (const [mname, m] of Object.entries(MESSAGES)) {
      if (sname === "JSON" && Buffer.isBuffer(m)) continue; // not a faithful round trip
      add(
        `serialize round trip ${mname}`,
        sname,
        () => {
          let x;
          for (let i = 0; i < REPEAT; i++) x = fn(m);
          return x;
        },
        REPEAT,
      );
    }
  }
  const buf = framesBuffer();
  const lf = parseLengthFormat(">I");
  add(
    "read 4-byte headers (per frame)",
    'parseLengthFormat(">I").read',
    () => {
      let s = 0;
      for (let o = 0; o < buf.length; o += 4 + lf.read(buf, o)) s++;
      return s;
    },
    FRAMES,
  );
  add(
    "read 4-byte headers (per frame)",
    "Buffer#readUInt32BE",
    () => {
      let s = 0;
      for (let o = 0; o < buf.length; o += 4 + buf.readUInt32BE(o)) s++;
      return s;
    },
    FRAMES,
  );
  add(
    "hash a key (per key)",
    "hashString(word)",
    loop(() => {
      let h = 0;
      for (const w of WORDS) h ^= hashString(w);
      return h;
    }),
    32 * WORDS.length,
  );
  add(
    "hash a key (per key)",
    "hashKey(string)",
    loop(() => {
      let h = 0;
      for (const w of WORDS) h ^= hashKey(w);
      return h;
    }),
    32 * WORDS.length,
  );
  add(
    "hash a key (per key)",
    "hashKey(u32 number)",
    loop(() => {
      let h = 0;
      for (let i = 0; i < 12; i++) h ^= hashKey(i * 7919);
      return h;
    }),
    32 * 12,
  );
  add(
    "hash a key (per key)",
    "hashKey(bigint)",
    loop(() => {
      let h = 0;
      for (let i = 0n; i < 12n; i++) h ^= hashKey(i << 40n);
      return h;
    }),
    32 * 12,
  );
  await bench.run();
  return bench.tasks.map((t, i) => {
    const meanMs = t.result.latency?.mean ?? t.result.period;
    const ns = (meanMs * 1e6) / groups[i].perOp;
    return {
      group: groups[i].group,
      name: groups[i].name,
      nsPerOp: ns,
      opsPerSec: 1e9 / ns,
      rme: t.result.latency?.rme ?? null,
    };
  });
}

export function microTable(rows) {
  const out = ["| benchmark | variant | ns/op | M ops/s |", "|---|---|---:|---:|"];
  for (const r of rows)
    out.push(`| ${r.group} | ${r.name} | ${r.nsPerOp.toFixed(1)} | ${(r.opsPerSec / 1e6).toFixed(2)} |`);
  return out.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runMicro({ quick: process.argv.includes("--quick") });
  process.stdout.write(
    process.argv.includes("--json") ? JSON.stringify(rows, null, 2) + "\n" : microTable(rows) + "\n",
  );
}
