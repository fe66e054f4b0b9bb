/**
 * The exact sink output of the market_spread example, computed single-threaded.
 *
 * `input`: payloads of both streams in the order they are processed. Each
 * message is recognised by its first byte (1 = order, 53 bytes; 2 = NBBO,
 * 42 bytes). The deterministic case the e2e test uses is ALL NBBO messages
 * first, then the orders: `expected([...nbbo, ...orders])` (or
 * `expectedFor(nbbo, orders)`). The engine must run with `--zero-timestamps`
 * to match byte for byte; otherwise compare with `maskTimestamp` applied to
 * both sides.
 *
 * Output: one 59-byte Buffer per rejected order: u32 BE 55, then side u8,
 * account u32, order id 6s, symbol 4s, qty f64, price f64, bid f64, offer f64,
 * timestamp u64 (0 here). Orders of one symbol come out in input order; with
 * several workers records of different symbols may interleave differently.
 */
interface Market {
  bid: number;
  offer: number;
  reject: boolean;
}

export const RECORD_SIZE = 59;

export function expected(input: Buffer[]): Buffer[] {
  const markets = new Map<string, Market>();
  const out: Buffer[] = [];
  for (const m of input) {
    const type = m[0];
    if (type === 2) {
      if (m.length !== 42) throw new Error(`NBBO payload of ${m.length} bytes, expected 42`);
      const symbol = m.toString("latin1", 1, 5);
      const bid = m.readDoubleBE(26);
      const offer = m.readDoubleBE(34);
      const spread = offer - bid;
      const mid = (bid + offer) / 2.0;
      markets.set(symbol, { bid, offer, reject: spread >= 0.05 || spread / mid >= 0.05 });
    } else if (type === 1) {
      if (m.length !== 53) throw new Error(`order payload of ${m.length} bytes, expected 53`);
      const symbol = m.toString("latin1", 12, 16);
      const market = markets.get(symbol) ?? { bid: 0, offer: 0, reject: true };
      if (!market.reject) continue;
      const rec = Buffer.alloc(RECORD_SIZE);
      rec.writeUInt32BE(55, 0);
      rec[4] = m[1]; // side
      m.copy(rec, 5, 2, 16); // account (4), order id (6), symbol (4)
      m.copy(rec, 19, 16, 32); // qty, price
      rec.writeDoubleBE(market.bid, 35);
      rec.writeDoubleBE(market.offer, 43);
      rec.writeBigUInt64BE(0n, 51); // timestamp
      out.push(rec);
    } else {
      throw new Error(`unknown FIX type ${type}`);
    }
  }
  return out;
}

/** All NBBO messages processed before all orders. */
export function expectedFor(nbbo: Buffer[], orders: Buffer[]): Buffer[] {
  return expected([...nbbo, ...orders]);
}

/** A copy of a 59-byte rejection record with the timestamp (last 8 bytes) set to 0. */
export function maskTimestamp(record: Buffer): Buffer {
  const c = Buffer.from(record);
  c.fill(0, c.length - 8);
  return c;
}

/** Splits a concatenated binary output (as received from the sink) into 59-byte records. */
export function splitRecords(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < bytes.length) {
    const len = bytes.readUInt32BE(off);
    out.push(bytes.subarray(off, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

/** Human-readable form of one rejection record. */
export function describe(rec: Buffer): string {
  const side = rec[4] === 1 ? "buy" : rec[4] === 2 ? "sell" : String(rec[4]);
  return (
    `side=${side}, account=${rec.readUInt32BE(5)}, order_id=${rec.toString("latin1", 9, 15)}, ` +
    `symbol=${rec.toString("latin1", 15, 19)}, quantity=${rec.readDoubleBE(19)}, price=${rec.readDoubleBE(27)}, ` +
    `bid=${rec.readDoubleBE(35)}, offer=${rec.readDoubleBE(43)}, timestamp=${rec.readBigUInt64BE(51)}`
  );
}
