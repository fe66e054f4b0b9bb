// The work of each scenario written directly against Buffers (no framework), the same rules
// as the example apps: used by the hand-written baselines and by the piscina workers.

// ---- passthrough: copy each payload behind a fresh 4-byte BE length header
export function passthroughEncode(buf, end) {
  const out = Buffer.allocUnsafe(end);
  for (let o = 0; o < end; ) {
    const len = buf.readUInt32BE(o);
    out.writeUInt32BE(len, o);
    buf.copy(out, o + 4, o + 4, o + 4 + len);
    o += 4 + len;
  }
  return out;
}

// ---- word_count (examples/word_count/app.ts: lowercase, strip punctuation, split on ' ')
const PUNCT = new Uint8Array(128);
for (const c of " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") PUNCT[c.charCodeAt(0)] = 1;
const isPunct = (s, i) => {
  const c = s.charCodeAt(i);
  return c < 128 && PUNCT[c] === 1;
};

function strip(s) {
  let a = 0,
    b = s.length;
  while (a < b && isPunct(s, a)) a++;
  while (b > a && isPunct(s, b - 1)) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

/** words of every line payload in buf[0..end), pushed onto `words` */
export function splitFrames(buf, end, words) {
  for (let o = 0; o < end; ) {
    const len = buf.readUInt32BE(o);
    const text = buf.toString("utf8", o + 4, o + 4 + len);
    o += 4 + len;
    for (const line of text.split("\n")) {
      for (const w of strip(line.toLowerCase()).split(" ")) {
        const clean = strip(w);
        if (clean.length > 0) words.push(clean);
      }
    }
  }
  return words;
}

/** counts the words into `totals` (a Map) and returns the "word => count\n" lines */
export function countWords(words, totals) {
  let out = "";
  for (const w of words) {
    const c = (totals.get(w) ?? 0) + 1;
    totals.set(w, c);
    out += `${w} => ${c}\n`;
  }
  return out;
}

// ---- alphabet: 5-byte votes (letter u8, votes u32 BE) -> 13-byte records (u32 9, letter, u64 total)
export function decodeVotes(buf, end) {
  const n = countFrames(buf, end);
  const letters = new Uint8Array(n);
  const votes = new Uint32Array(n);
  let i = 0;
  for (let o = 0; o < end; o += 4 + buf.readUInt32BE(o)) {
    letters[i] = buf[o + 4];
    votes[i++] = buf.readUInt32BE(o + 5);
  }
  return { letters, votes };
}

export function addVotes({ letters, votes }, totals /* Float64Array(256) */) {
  const out = Buffer.allocUnsafe(letters.length * 13);
  for (let i = 0; i < letters.length; i++) {
    const t = (totals[letters[i]] += votes[i]);
    out.writeUInt32BE(9, i * 13);
    out[i * 13 + 4] = letters[i];
    out.writeBigUInt64BE(BigInt(t), i * 13 + 5);
  }
  return out;
}

// ---- market_spread: NBBO (42 B) updates the symbol's state; an order (53 B) for a symbol whose
// market is too wide (or unknown) is rejected: a 59-byte record (u32 55, side, account, order id,
// symbol, qty, price, bid, offer, timestamp u64 in 10 us units).
export function decodeNbbo(buf, end) {
  const out = [];
  for (let o = 0; o < end; o += 4 + buf.readUInt32BE(o)) {
    const p = o + 4;
    if (buf[p] !== 2) throw new Error("not an NBBO record");
    const bid = buf.readDoubleBE(p + 26),
      offer = buf.readDoubleBE(p + 34);
    const diff = offer - bid;
    out.push({
      symbol: buf.toString("latin1", p + 1, p + 5),
      bid,
      offer,
      reject: diff >= 0.05 || diff / ((bid + offer) / 2) >= 0.05,
    });
  }
  return out;
}

export function applyNbbo(updates, state /* Map symbol -> update */) {
  for (const u of updates) state.set(u.symbol, u);
}

export function decodeOrders(buf, end) {
  const out = [];
  for (let o = 0; o < end; o += 4 + buf.readUInt32BE(o)) {
    const p = o + 4;
    if (buf[p] !== 1) throw new Error("not an order record");
    out.push({
      side: buf[p + 1],
      account: buf.readUInt32BE(p + 2),
      orderId: buf.toString("latin1", p + 6, p + 12),
      symbol: buf.toString("latin1", p + 12, p + 16),
      qty: buf.readDoubleBE(p + 16),
      price: buf.readDoubleBE(p + 24),
      transactTime: buf.toString("latin1", p + 32, p + 53),
    });
  }
  return out;
}

export function checkOrders(orders, state) {
  let out = null,
    n = 0;
  const ts = BigInt(Math.floor(Date.now() * 100));
  for (const ord of orders) {
    const s = state.get(ord.symbol);
    if (s !== undefined && !s.reject) continue;
    out ??= Buffer.allocUnsafe(orders.length * 59);
    const r = n++ * 59;
    out.writeUInt32BE(55, r);
    out[r + 4] = ord.side;
    out.writeUInt32BE(ord.account, r + 5);
    out.write(ord.orderId, r + 9, 6, "latin1");
    out.write(ord.symbol, r + 15, 4, "latin1");
    out.writeDoubleBE(ord.qty, r + 19);
    out.writeDoubleBE(ord.price, r + 27);
    out.writeDoubleBE(s?.bid ?? 0, r + 35);
    out.writeDoubleBE(s?.offer ?? 0, r + 43);
    out.writeBigUInt64BE(ts, r + 51);
  }
  return out ? out.subarray(0, n * 59) : null;
}

export function countFrames(buf, end) {
  let n = 0;
  for (let o = 0; o < end; o += 4 + buf.readUInt32BE(o)) n++;
  return n;
}
