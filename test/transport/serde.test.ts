/** Values crossing threads keep their classes, through the ring's shared memory. */
import { describe, expect, it } from "vitest";
import { createSerde, exportedClasses } from "../../src/transport/serde.js";

class Point {
  constructor(public x = 0, public y = 0) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}
class Line {
  constructor(public from = new Point(), public to = new Point(), public tags = new Set<string>()) {}
}
class Totals {
  counts = new Map<string, number>();
  add(w: string): void {
    this.counts.set(w, (this.counts.get(w) ?? 0) + 1);
  }
}
const helper = () => 1;
const appModule = { Point, Line, helper, notAClass: 3 };

type Serde = ReturnType<typeof createSerde>;
const channels = new WeakMap<Serde, [ReturnType<Serde["channel"]>, ReturnType<Serde["channel"]>]>();

/**
 * Packs with one end of a channel, copies into a SharedArrayBuffer at an odd
 * offset (as a ring would), unpacks with the other end (its own Packr, as in
 * another thread). Every call goes over the same channel, in order.
 */
function roundTrip(serde: Serde, v: unknown): unknown {
  if (!channels.has(serde)) channels.set(serde, [serde.channel(), serde.channel()]);
  const [writer, reader] = channels.get(serde)!;
  const packed = writer.pack(v);
  // A Buffer over the shared memory, as the worker's frame handler passes it.
  const shared = Buffer.from(new SharedArrayBuffer(packed.length + 64), 8);
  shared.set(packed, 13);
  return reader.unpack(shared, 13, 13 + packed.length);
}

describe("msgpackr serialization", () => {
  const serde = createSerde(appModule, [Totals]);

  it("finds the exported classes, not plain functions or values", () => {
    expect(exportedClasses(appModule, [Totals])).toEqual([Line, Point, Totals]);
  });

  it("keeps the prototype of exported classes, nested too", () => {
    const line = new Line(new Point(3, 4), new Point(1, 1), new Set(["a", "b"]));
    const back = roundTrip(serde, line) as Line;
    expect(back).toBeInstanceOf(Line);
    expect(back.from).toBeInstanceOf(Point);
    expect(back.from.norm()).toBe(5);
    expect(back.tags).toEqual(new Set(["a", "b"]));
  });

  it("keeps state classes (not exported) and their Maps", () => {
    const t = new Totals();
    t.add("x");
    t.add("x");
    const back = roundTrip(serde, t) as Totals;
    expect(back).toBeInstanceOf(Totals);
    expect(back.counts).toBeInstanceOf(Map);
    expect(back.counts.get("x")).toBe(2);
    back.add("y");
    expect(back.counts.get("y")).toBe(1);
  });

  it("round-trips plain data exactly", () => {
    const values = [0, -1.5, 2 ** 40, "héllo wörld", "", null, true, [1, [2, { a: "b" }]], { n: 5n, big: 2n ** 63n + 5n },
      Buffer.from([1, 2, 3]), new Date(0)];
    for (const v of values) expect(roundTrip(serde, v)).toEqual(v);
  });

  it("sends a record shape once per channel and still decodes every message", () => {
    const shapes = Array.from({ length: 200 }, (_, i) => ({ [`k${i % 40}`]: i, same: "x", nested: { a: i } }));
    for (const v of shapes) expect(roundTrip(serde, v)).toEqual(v);
  });

  it("copies binary data out of the shared memory", () => {
    const back = roundTrip(serde, { payload: Buffer.from("abc") }) as { payload: Buffer };
    expect(back.payload.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });
});

describe("application serialize/deserialize", () => {
  it("replaces msgpackr and gets a copy it may keep", () => {
    const mod = {
      serialize: (o: { n: number }) => Buffer.from(JSON.stringify(o)),
      deserialize: (b: Buffer) => ({ ...JSON.parse(b.toString()), viaUser: true, kept: b }),
    };
    const serde = createSerde(mod, []);
    expect(serde.custom).toBe(true);
    const back = roundTrip(serde, { n: 7 }) as { n: number; viaUser: boolean; kept: Buffer };
    expect(back.n).toBe(7);
    expect(back.viaUser).toBe(true);
    expect(back.kept.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });

  it("refuses only one of the pair", () => {
    expect(() => createSerde({ serialize: () => new Uint8Array() }, [])).toThrow(/both or neither/);
  });
});
