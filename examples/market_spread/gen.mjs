#!/usr/bin/env node
// Deterministic generator of market_spread input: raw FIX-like binary records
// without length headers (`wallaroo send --binary FILE --record-size N` frames
// each record): NBBO records of 42 bytes, order records of 53 bytes.
//
//   node examples/market_spread/gen.mjs --nbbo 200 --orders 300 --reject-every 5 --edge-cases \
//        --nbbo-out examples/market_spread/nbbo.bin --orders-out examples/market_spread/orders.bin   (committed data)
//   node examples/market_spread/gen.mjs --nbbo 1000000 --orders 1000000 --reject-every 10 \
//        --nbbo-out /tmp/nbbo.bin --orders-out /tmp/orders.bin
//
// Options:
//   --symbols FILE      symbol list (default: symbols.txt next to this script)
//   --nbbo N            NBBO records (default 200); the first ones prime every
//                       symbol once, in list order (N is raised to at least the
//                       number of symbols), the rest update random symbols
//   --orders N          order records (default 300)
//   --reject-every N    1 order in N is for a symbol whose market is too wide and
//                       is rejected (default 10; 0: no order is rejected)
//   --seed S            PRNG seed (default 1)
//   --edge-cases        append a few special records (see EDGE CASES below) to both
//                       files; these add 2 rejected orders beyond the 1-in-N ones
//   --nbbo-out FILE     (default nbbo.bin in the current directory)
//   --orders-out FILE   (default orders.bin in the current directory)
//
// Every symbol keeps one class for the whole run: every 5th symbol of the list
// (index 0, 5, 10, ...) always gets a wide market (offer - bid >= 0.05: orders
// rejected), the others a narrow one (offer - bid <= 0.04 and price >= 10:
// orders accepted). So once a symbol has had its first NBBO record, whether its
// orders are rejected no longer depends on how the two streams interleave; the
// bid/offer copied into a rejection record does (it is the last one seen).
import { readFileSync, openSync, writeSync, closeSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

export const FIXTYPE_ORDER = 1;
export const FIXTYPE_MARKET_DATA = 2;
export const NBBO_SIZE = 42;
export const ORDER_SIZE = 53;

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

/** The application's rule (Update Market Data). */
export function rejects(bid, offer) {
  const diff = offer - bid;
  const mid = (bid + offer) / 2.0;
  return diff >= 0.05 || diff / mid >= 0.05;
}

const BASE_MS = Date.UTC(2018, 0, 2, 14, 30, 0, 0);
/** FIX UTCTimestamp, 21 characters: YYYYMMDD-HH:MM:SS.sss */
function transactTime(i) {
  const d = new Date(BASE_MS + i * 10);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}.${p(d.getUTCMilliseconds(), 3)}`;
}

export function nbboRecord(symbol, time, bid, offer) {
  const b = Buffer.alloc(NBBO_SIZE);
  b.writeUInt8(FIXTYPE_MARKET_DATA, 0);
  b.write(symbol.padStart(4, " "), 1, 4, "latin1");
  b.write(time, 5, 21, "latin1");
  b.writeDoubleBE(bid, 26);
  b.writeDoubleBE(offer, 34);
  return b;
}

export function orderRecord(side, account, orderId, symbol, qty, price, time) {
  const b = Buffer.alloc(ORDER_SIZE);
  b.writeUInt8(FIXTYPE_ORDER, 0);
  b.writeUInt8(side, 1);
  b.writeUInt32BE(account, 2);
  b.write(orderId, 6, 6, "latin1");
  b.write(symbol.padStart(4, " "), 12, 4, "latin1");
  b.writeDoubleBE(qty, 16);
  b.writeDoubleBE(price, 24);
  b.write(time, 32, 21, "latin1");
  return b;
}

class RecordWriter {
  constructor(file, size) {
    this.fd = openSync(file, "w");
    this.buf = Buffer.alloc(size * 8192);
    this.n = 0;
  }
  push(rec) {
    rec.copy(this.buf, this.n);
    this.n += rec.length;
    if (this.n === this.buf.length) this.flush();
  }
  flush() {
    if (this.n) writeSync(this.fd, this.buf, 0, this.n);
    this.n = 0;
  }
  close() {
    this.flush();
    closeSync(this.fd);
  }
}

function main() {
  const here = fileURLToPath(new URL(".", import.meta.url));
  const o = {
    symbols: here + "symbols.txt",
    nbbo: 200,
    orders: 300,
    rejectEvery: 10,
    seed: 1,
    edge: false,
    nbboOut: "nbbo.bin",
    ordersOut: "orders.bin",
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--symbols") o.symbols = argv[++i];
    else if (a === "--nbbo") o.nbbo = Number(argv[++i]);
    else if (a === "--orders") o.orders = Number(argv[++i]);
    else if (a === "--reject-every") o.rejectEvery = Number(argv[++i]);
    else if (a === "--seed") o.seed = Number(argv[++i]);
    else if (a === "--edge-cases") o.edge = true;
    else if (a === "--nbbo-out") o.nbboOut = argv[++i];
    else if (a === "--orders-out") o.ordersOut = argv[++i];
    else throw new Error(`unknown argument ${a} (see the comment at the top of gen.mjs)`);
  }
  for (const k of ["nbbo", "orders", "rejectEvery"]) {
    if (!Number.isInteger(o[k]) || o[k] < 0) throw new Error(`--${k} must be a non-negative integer`);
  }
  const symbols = readFileSync(o.symbols, "latin1")
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter(Boolean);
  if (symbols.some((s) => s.length > 4)) throw new Error("symbols are at most 4 characters");
  const wide = symbols.filter((_, i) => i % 5 === 0);
  const narrow = symbols.filter((_, i) => i % 5 !== 0);
  if (o.rejectEvery > 0 && wide.length === 0) throw new Error("need at least one symbol");
  if (narrow.length === 0 && o.rejectEvery !== 1 && o.orders > 0) throw new Error("need at least 2 symbols");

  const r = rng(o.seed);
  const pick = (arr) => arr[Math.floor(r() * arr.length)];
  const lastBid = new Map();

  const nbboOut = new RecordWriter(o.nbboOut, NBBO_SIZE);
  const nbboCount = Math.max(o.nbbo, symbols.length);
  let t = 0;
  for (let i = 0; i < nbboCount; i++) {
    const sym = i < symbols.length ? symbols[i] : pick(symbols);
    const isWide = symbols.indexOf(sym) % 5 === 0;
    const bid = (1000 + Math.floor(r() * 49000)) / 100; // 10.00 .. 499.99
    const offer = isWide
      ? Math.round((bid + (10 + Math.floor(r() * 91)) / 100) * 100) / 100 // + 0.10 .. 1.00
      : Math.round((bid + Math.floor(r() * 5) / 100) * 100) / 100; // + 0.00 .. 0.04
    if (rejects(bid, offer) !== isWide) throw new Error(`generator bug: ${sym} ${bid} ${offer}`);
    lastBid.set(sym, bid);
    nbboOut.push(nbboRecord(sym, transactTime(t++), bid, offer));
  }

  const ordersOut = new RecordWriter(o.ordersOut, ORDER_SIZE);
  let orderNo = 0;
  const order = (sym, price) => {
    orderNo++;
    const side = r() < 0.5 ? 1 : 2;
    const account = 1 + Math.floor(r() * 100000);
    const orderId = String(orderNo % 1000000).padStart(6, "0");
    const qty = 100 * (1 + Math.floor(r() * 50));
    ordersOut.push(orderRecord(side, account, orderId, sym, qty, price, transactTime(t++)));
  };
  for (let i = 0; i < o.orders; i++) {
    const reject = o.rejectEvery > 0 && i % o.rejectEvery === o.rejectEvery - 1;
    const sym = reject ? pick(wide) : pick(narrow);
    order(sym, Math.round(lastBid.get(sym) * 100 + Math.floor(r() * 21) - 10) / 100);
  }

  if (o.edge) {
    // EDGE CASES
    // " PNY": not in the symbol list, a narrow spread in cents (0.04) that is
    //         wide relative to its price (0.04 / 0.52 >= 0.05): rejected
    // "ZZZ":  not in the symbol list, narrow: accepted
    // "QQQQ": not in the symbol list and no market data at all: rejected with bid 0, offer 0
    nbboOut.push(nbboRecord("PNY", transactTime(t++), 0.5, 0.54));
    nbboOut.push(nbboRecord("ZZZ", transactTime(t++), 20.0, 20.01));
    order("PNY", 0.51);
    order("ZZZ", 20.0);
    order("QQQQ", 1.0);
  }
  nbboOut.close();
  ordersOut.close();
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  try {
    main();
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
