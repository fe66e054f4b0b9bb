/** Values crossing threads keep their classes, through the ring's shared memory. */
import { describe, expect, it } from "vitest";
import { collectClasses, createSerde, exportedClasses, privateMembers } from "../../src/transport/serde.js";

class Point {
  constructor(
    public x = 0,
    public y = 0,
  ) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}
class Line {
  constructor(
    public from = new Point(),
    public to = new Point(),
    public tags = new Set<string>(),
  ) {}
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
    const values = [
      0,
      -1.5,
      2 ** 40,
      "héllo wörld",
      "",
      null,
      true,
      [1, [2, { a: "b" }]],
      { n: 5n, big: 2n ** 63n + 5n },
      Buffer.from([1, 2, 3]),
      new Date(0),
    ];
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

describe("what cannot cross is refused, naming it", () => {
  class Kept {
    constructor(public n = 0) {}
    get twice(): number {
      return this.n * 2;
    }
  }
  class KeptChild extends Kept {
    extra = 1;
  }
  class Hidden {
    #secret = 1;
    get secret(): number {
      return this.#secret;
    }
  }
  class StaticOnly {
    static #count = 0;
    n = 1;
    static next(): number {
      return ++StaticOnly.#count;
    }
  }
  const serde = createSerde({ Kept, KeptChild, Hidden, StaticOnly }, []);

  it("keeps a subclass as the subclass (msgpackr tries the latest extension first)", () => {
    const back = roundTrip(serde, [new KeptChild(2), new Kept(3)]) as Kept[];
    expect(back[0]).toBeInstanceOf(KeptChild);
    expect(back[1]).not.toBeInstanceOf(KeptChild);
    expect(back[0].twice).toBe(4);
  });

  it("refuses a class that no module exports, a function, a Symbol, a WeakMap and #private, with the field", () => {
    function local() {
      return new (class Local {
        x = 1;
      })();
    }
    class Unexported extends Kept {}
    const cases: [unknown, RegExp][] = [
      [
        { a: [1, local()] },
        /field \.a\[1\]: an instance of class Local, which the engine cannot restore; export class Local from its module/,
      ],
      [
        { u: new Unexported(1) },
        /field \.u: an instance of class Unexported \(a subclass of Kept, which is exported\)/,
      ],
      [{ f: { g: () => 1 } }, /field \.f\.g: a function \(g\)/],
      [{ m: new Map([["k", Symbol("s")]]) }, /field \.m\.get\(k\): a Symbol \(Symbol\(s\)\)/],
      [{ w: new WeakMap() }, /field \.w: a WeakMap/],
      [{ h: new Hidden() }, /field \.h: an instance of class Hidden, which has private member\(s\) #secret/],
    ];
    for (const [v, msg] of cases) expect(() => roundTrip(serde, v)).toThrow(msg);
    expect(roundTrip(serde, new StaticOnly())).toBeInstanceOf(StaticOnly);
  });

  it("stays in step after a refused value: the next values of every shape decode (sequential records)", () => {
    for (let i = 0; i < 20; i++) {
      expect(() => roundTrip(serde, { shapeA: i, shapeB: Symbol("x") })).toThrow(/Symbol/);
      expect(roundTrip(serde, { shapeA: i, shapeB: i })).toEqual({ shapeA: i, shapeB: i });
      expect(() => roundTrip(serde, { [`s${i}`]: { deep: 1 }, bad: () => 0 })).toThrow(/function/);
      expect(roundTrip(serde, { [`s${i}`]: { deep: 1 }, bad: 0 })).toEqual({ [`s${i}`]: { deep: 1 }, bad: 0 });
    }
  });

  it("cycles keep identity and prototypes; the structured-clone types survive", () => {
    const k = new Kept(5) as Kept & { self?: unknown; m?: Map<string, unknown> };
    k.self = k;
    k.m = new Map<string, unknown>([["back", k]]);
    const v = { k, list: [k], set: new Set([k]), d: new Date(9), re: /q/y, big: 2n ** 90n, f: new Float64Array([2.5]) };
    for (const codec of ["channel", "standalone"] as const) {
      let back: typeof v;
      if (codec === "channel") back = roundTrip(serde, v) as typeof v;
      else {
        const c = serde.standalone();
        const b = c.pack(v);
        back = c.unpack(b, 0, b.length) as typeof v;
      }
      expect(back.k).toBeInstanceOf(Kept);
      expect(back.k.self).toBe(back.k);
      expect(back.k.m!.get("back")).toBe(back.k);
      expect(back.list[0]).toBe(back.k);
      expect([...back.set][0]).toBe(back.k);
      expect(back.k.twice).toBe(10);
      expect(back.d).toEqual(new Date(9));
      expect(back.re).toEqual(/q/y);
      expect(back.big).toBe(2n ** 90n);
      expect(back.f).toEqual(new Float64Array([2.5]));
    }
  });
});

describe("subclasses of built-ins", () => {
  class Registry extends Map<string, number> {
    label = "r";
    total(): number {
      let t = 0;
      for (const v of this.values()) t += v;
      return t;
    }
  }
  class Bag extends Set<number> {
    get size2(): number {
      return this.size * 2;
    }
  }
  class Path extends Array<number> {
    name = "p";
    last(): number {
      return this[this.length - 1];
    }
  }
  class Stamp extends Date {}
  const serde = createSerde({ Registry, Bag, Path, Stamp }, []);

  it("exported Map, Set and Array subclasses keep their class, entries and own properties, on a cycle too", () => {
    const r = new Registry([
      ["a", 1],
      ["b", 2],
    ]);
    const b = new Bag([1, 2, 3]);
    const p = Path.from([4, 5]) as Path;
    const back = roundTrip(serde, { r, b, p }) as { r: Registry; b: Bag; p: Path };
    expect(back.r).toBeInstanceOf(Registry);
    expect(back.r.total()).toBe(3);
    expect(back.r.label).toBe("r");
    expect(back.b).toBeInstanceOf(Bag);
    expect(back.b.size2).toBe(6);
    expect(back.p).toBeInstanceOf(Path);
    expect([...back.p]).toEqual([4, 5]);
    expect(back.p.last()).toBe(5);
    expect(back.p.name).toBe("p");
    const cyc = { r, p } as { r: Registry; p: Path; me?: unknown };
    cyc.me = cyc;
    const c = roundTrip(serde, cyc) as typeof cyc;
    expect(c.me).toBe(c);
    expect(c.r).toBeInstanceOf(Registry);
    expect(c.r.total()).toBe(3);
    expect(c.p.last()).toBe(5);
  });

  it("refuses unexported subclasses of Map, Set and Error, and subclasses of Date", () => {
    class LocalMap extends Map {}
    class LocalSet extends Set {}
    class LocalError extends Error {}
    expect(() => roundTrip(serde, { m: new LocalMap() })).toThrow(
      /field \.m: an instance of class LocalMap, which the engine cannot restore/,
    );
    expect(() => roundTrip(serde, { s: new LocalSet() })).toThrow(
      /field \.s: an instance of class LocalSet, which the engine cannot restore/,
    );
    expect(() => roundTrip(serde, { e: new LocalError() })).toThrow(/field \.e: an instance of class LocalError/);
    expect(() => roundTrip(serde, { d: new Stamp() })).toThrow(
      /field \.d: an instance of class Stamp, which extends the built-in Date/,
    );
    expect(roundTrip(serde, { e: new TypeError("t") })).toEqual({ e: new TypeError("t") });
  });
});

describe("type codes", () => {
  it("orders classes by module URL then export name, whatever order the modules come in", () => {
    class A1 {}
    class B1 {}
    class C1 {}
    const m1 = { url: "file:///app/b.ts", exports: { Z: A1, Y: B1 } };
    const m2 = { url: "file:///app/a.ts", exports: { C1 } };
    expect(collectClasses([m1, m2])).toEqual([C1, B1, A1]);
    expect(collectClasses([m2, m1])).toEqual([C1, B1, A1]);
  });

  it("more classes than per-class codes, and never one of msgpackr's own codes (a bigint beyond 64 bits still decodes)", () => {
    const many = Object.fromEntries(
      Array.from({ length: 130 }, (_, i) => {
        const C = class {
          constructor(public i = 0) {}
          get tag(): string {
            return `c${this.i}`;
          }
        };
        Object.defineProperty(C, "name", { value: `Many${String(i).padStart(3, "0")}` });
        return [`Many${String(i).padStart(3, "0")}`, C];
      }),
    );
    const serde = createSerde(many, []);
    const values = Object.values(many).map((C, i) => new (C as new (i: number) => { tag: string })(i));
    const back = roundTrip(serde, { values, big: 2n ** 100n + 1n, set: new Set([1]) }) as {
      values: { tag: string }[];
      big: bigint;
      set: Set<number>;
    };
    back.values.forEach((v, i) => {
      expect(v).toBeInstanceOf(Object.values(many)[i] as never);
      expect(v.tag).toBe(`c${i}`);
    });
    expect(back.big).toBe(2n ** 100n + 1n);
    expect(back.set).toEqual(new Set([1]));
  });

  it("finds #private members a class reads through instances, its superclasses' too, not static ones", () => {
    class P {
      #a = 1;
      get a(): number {
        return this.#a;
      }
    }
    class Q extends P {}
    class R {
      static #n = 0;
      static inc(): number {
        return ++R.#n;
      }
    }
    class S {
      #m(): number {
        return 1;
      }
      call(o: S): boolean {
        return #m in o;
      }
    }
    expect(privateMembers(P)).toEqual(["#a"]);
    expect(privateMembers(Q)).toEqual(["#a"]);
    expect(privateMembers(R)).toEqual([]);
    expect(privateMembers(S)).toEqual(["#m"]);
  });
});
