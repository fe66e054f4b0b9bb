/**
 * Market Spread: watches market data (NBBO: national best bid and offer) for
 * every stock symbol and rejects the orders sent for a symbol whose market is
 * currently too wide. A port of Wallaroo's Python `market_spread` example.
 *
 * - pipeline "Orders": orders -> "Check Order" on the "symbol-data" state
 *   partition -> sink (one record per rejected order)
 * - pipeline "Market Data": NBBO -> "Update Market Data" on the same
 *   "symbol-data" state partition -> done() (no sink)
 *
 * Both pipelines share ONE state, partitioned by symbol; the declared keys are
 * the symbols of symbols.txt, right-justified to 4 bytes (as they appear on
 * the wire). Symbols not listed get their partition on first use.
 *
 * Arguments: --in ORDERS_HOST:PORT,NBBO_HOST:PORT  --out HOST:PORT
 *            [--symbols FILE]     default: symbols.txt next to this file
 *            [--zero-timestamps]  write 0 instead of the wall-clock time in
 *                                 the rejection records (deterministic output)
 */
import { readFileSync } from "node:fs";
import * as wallaroo from "wallaroo";

export const FIXTYPE_ORDER = 1;
export const FIXTYPE_MARKET_DATA = 2;
export const SIDETYPE_BUY = 1;
export const SIDETYPE_SELL = 2;

function optionValue(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i].startsWith(name + "=")) return args[i].slice(name.length + 1);
  }
  return undefined;
}

export function loadValidSymbols(file?: string): string[] {
  const text = readFileSync(file ?? new URL("./symbols.txt", import.meta.url), "latin1");
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function applicationSetup(args: string[]) {
  const inputAddrs = wallaroo.tcpParseInputAddrs(args);
  if (inputAddrs.length < 2) {
    throw new Error("market_spread needs two input addresses: --in ORDERS_HOST:PORT,NBBO_HOST:PORT");
  }
  const [orderHost, orderPort] = inputAddrs[0];
  const [nbboHost, nbboPort] = inputAddrs[1];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];

  const symbolPartitions = loadValidSymbols(optionValue(args, "--symbols")).map((s) => s.padStart(4, " "));
  const check = args.includes("--zero-timestamps") ? checkOrderZeroTimestamp : checkOrder;

  const ab = new wallaroo.ApplicationBuilder("market-spread");
  ab.newPipeline("Orders", new wallaroo.TCPSourceConfig(orderHost, orderPort, orderDecoder))
    .toStatePartition(check, SymbolData, "symbol-data", symbolPartitionFunction, symbolPartitions)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, orderResultEncoder))
    .newPipeline("Market Data", new wallaroo.TCPSourceConfig(nbboHost, nbboPort, marketDataDecoder))
    .toStatePartition(updateMarketData, SymbolData, "symbol-data", symbolPartitionFunction, symbolPartitions)
    .done();
  return ab.build();
}

export class MarketSpreadError extends Error {
  override name = "MarketSpreadError";
}

export class SymbolData {
  // a symbol we have no market data for rejects its orders
  constructor(
    public lastBid = 0.0,
    public lastOffer = 0.0,
    public shouldRejectTrades = true,
  ) {}
}

export const symbolPartitionFunction = wallaroo.partition((data: Order | MarketDataMessage) => data.symbol);

export class Order {
  constructor(
    public side: number,
    public account: number,
    public orderId: string, // 6 bytes
    public symbol: string, // 4 bytes, right-justified
    public qty: number,
    public price: number,
    public transactTime: string, // 21 bytes
  ) {}
}

export class OrderResult {
  constructor(
    public order: Order,
    public bid: number,
    public offer: number,
    public timestamp: number,
  ) {}
}

export class MarketDataMessage {
  mid: number;
  constructor(
    public symbol: string,
    public transactTime: string,
    public bid: number,
    public offer: number,
  ) {
    this.mid = (bid + offer) / 2.0;
  }
}

/** Wallaroo's timestamp: wall-clock time in units of 10 microseconds. */
function now(): number {
  return Math.floor(Date.now() * 100);
}

function check(data: Order, state: SymbolData, timestamp: () => number): [OrderResult | null, boolean] {
  if (state.shouldRejectTrades) {
    return [new OrderResult(data, state.lastBid, state.lastOffer, timestamp()), false];
  }
  return [null, false];
}

export const checkOrder = wallaroo.stateComputation(
  "Check Order",
  (data: Order, state: SymbolData): [OrderResult | null, boolean] => check(data, state, now),
);

/** The same check with a constant 0 timestamp, for runs whose output is compared byte for byte. */
export const checkOrderZeroTimestamp = wallaroo.stateComputation(
  "Check Order (zero timestamps)",
  (data: Order, state: SymbolData): [OrderResult | null, boolean] => check(data, state, () => 0),
);

/**
 * Order payload, 53 bytes (big-endian):
 *   0  1b fix type (u8) = 1     1  1b side (u8)        2  4b account (u32)
 *   6  6b order id (string)    12  4b symbol (string) 16  8b order qty (f64)
 *  24  8b price (f64)          32 21b transact time (string)
 */
export const orderDecoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => {
  if (bs.readUInt8(0) !== FIXTYPE_ORDER) {
    throw new MarketSpreadError("Wrong Fix message type. Did you connect the senders the wrong way around?");
  }
  return new Order(
    bs.readUInt8(1),
    bs.readUInt32BE(2),
    bs.toString("latin1", 6, 12),
    bs.toString("latin1", 12, 16),
    bs.readDoubleBE(16),
    bs.readDoubleBE(24),
    bs.toString("latin1", 32, 53),
  );
});

/**
 * Rejection record: u32 BE 55 (the length of what follows), then 55 bytes
 * (Python struct ">BI6s4sddddQ"): side u8, account u32, order id 6s, symbol 4s,
 * qty f64, price f64, bid f64, offer f64, timestamp u64.
 */
export const orderResultEncoder = wallaroo.encoder((data: OrderResult) => {
  const out = Buffer.alloc(59);
  out.writeUInt32BE(55, 0);
  out.writeUInt8(data.order.side, 4);
  out.writeUInt32BE(data.order.account, 5);
  out.write(data.order.orderId, 9, 6, "latin1");
  out.write(data.order.symbol, 15, 4, "latin1");
  out.writeDoubleBE(data.order.qty, 19);
  out.writeDoubleBE(data.order.price, 27);
  out.writeDoubleBE(data.bid, 35);
  out.writeDoubleBE(data.offer, 43);
  out.writeBigUInt64BE(BigInt(data.timestamp), 51);
  return out;
});

/**
 * Market data (NBBO) payload, 42 bytes (big-endian):
 *   0  1b fix type (u8) = 2     1  4b symbol (string)   5 21b transact time (string)
 *  26  8b bid price (f64)      34  8b offer price (f64)
 */
export const marketDataDecoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => {
  if (bs.readUInt8(0) !== FIXTYPE_MARKET_DATA) {
    throw new MarketSpreadError("Wrong Fix message type. Did you connect the senders the wrong way around?");
  }
  return new MarketDataMessage(
    bs.toString("latin1", 1, 5),
    bs.toString("latin1", 5, 26),
    bs.readDoubleBE(26),
    bs.readDoubleBE(34),
  );
});

export const updateMarketData = wallaroo.stateComputation(
  "Update Market Data",
  (data: MarketDataMessage, state: SymbolData): [null, boolean] => {
    const offerBidDifference = data.offer - data.bid;
    const shouldRejectTrades = offerBidDifference >= 0.05 || offerBidDifference / data.mid >= 0.05;
    state.lastBid = data.bid;
    state.lastOffer = data.offer;
    state.shouldRejectTrades = shouldRejectTrades;
    return [null, true];
  },
);
