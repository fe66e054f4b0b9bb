// market_spread: two sources (orders first, then NBBO, as the app's --in expects) sharing one
// state partitioned by symbol; 1 order in REJECT_EVERY is rejected. Throughput counts both
// inputs. The order's account field (u32 BE, payload offset 2) carries the send time in
// microseconds; the app copies it into the rejection record (frame offset 5), which gives the
// latency of rejected orders.
import { generate } from "./data.mjs";

export const REJECT_EVERY = 10;

export default {
  name: "market_spread",
  description: `examples/market_spread: orders + NBBO sources sharing a state partitioned by symbol, 1 order in ${REJECT_EVERY} rejected`,
  app: "examples/market_spread/app.ts",
  unit: "msgs",
  unitFrom: "in",
  // Exactly every REJECT_EVERY-th order of the data is for a wide-market symbol, so the orders
  // processed are rejections x REJECT_EVERY; NBBO records are assumed processed in the same
  // proportion to what was sent as the orders were.
  inFromOut: (out, [orders, nbbo]) => Math.min(out * REJECT_EVERY, orders) * (1 + nbbo / orders),
  sources: () => {
    const [orders, nbbo] = generate(
      "market_spread",
      ["orders-500k.bin", "nbbo-500k.bin"],
      [
        "--orders",
        "500000",
        "--nbbo",
        "500000",
        "--reject-every",
        String(REJECT_EVERY),
        "--orders-out",
        0,
        "--nbbo-out",
        1,
      ],
    );
    return [
      {
        name: "orders",
        input: { kind: "records", file: orders, recordSize: 53 },
        stamp: { offset: 4 + 2, type: "u32us" },
      },
      { name: "nbbo", input: { kind: "records", file: nbbo, recordSize: 42 } },
    ];
  },
  output: { mode: "framed", stamp: { offset: 5, type: "u32us" } },
};
