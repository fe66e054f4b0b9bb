import { describe, expect, it } from "vitest";
import { WallarooParameterError } from "../../src/api/errors.js";
import * as w from "../../src/api/wrappers.js";
import { KIND } from "../../src/topology/spec.js";

describe("WallarooParameterError", () => {
  it("is an Error with its own name", () => {
    const e = new WallarooParameterError("fix it");
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(WallarooParameterError);
    expect(e.name).toBe("WallarooParameterError");
    expect(e.message).toBe("fix it");
    expect(String(e)).toBe("WallarooParameterError: fix it");
  });
});

describe("computation wrappers", () => {
  const f1 = (x: number) => x * 2;
  const f2 = (x: number, st: { n: number }): [number, boolean] => [st.n + x, true];

  it.each([
    ["computation", w.computation, "computation", false],
    ["computationMulti", w.computationMulti, "computation", true],
    ["stateComputation", w.stateComputation, "stateComputation", false],
    ["stateComputationMulti", w.stateComputationMulti, "stateComputation", true],
  ] as const)("%s makes a frozen, tagged description", (_label, wrap, kind, multi) => {
    const fn = kind === "computation" ? f1 : f2;
    const c = (wrap as (n: string, f: unknown) => any)("Step", fn);
    expect(c[KIND]).toBe(kind);
    expect(c.name).toBe("Step");
    expect(c.multi).toBe(multi);
    expect(c.fn).toBe(fn);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("the functions run as given", () => {
    expect(w.computation("Double", f1).fn(21)).toBe(42);
    expect(w.computationMulti("Split", (s: string) => s.split(" ")).fn("a b")).toEqual(["a", "b"]);
    expect(w.stateComputation("Add", f2).fn(1, { n: 2 })).toEqual([3, true]);
  });

  it("snake_case aliases are the same functions", () => {
    expect(w.computation_multi).toBe(w.computationMulti);
    expect(w.state_computation).toBe(w.stateComputation);
    expect(w.state_computation_multi).toBe(w.stateComputationMulti);
  });

  it.each([
    ["computation", w.computation],
    ["computationMulti", w.computationMulti],
    ["stateComputation", w.stateComputation],
    ["stateComputationMulti", w.stateComputationMulti],
  ] as const)("%s rejects a non-function and a bad name at once", (label, wrap) => {
    const call = wrap as (n: unknown, f: unknown) => unknown;
    expect(() => call("Name", 42)).toThrow(WallarooParameterError);
    expect(() => call("Name", 42)).toThrow(new RegExp(`${label}\\("Name"\\).*fn must be a function, got a number`));
    expect(() => call("Name", undefined)).toThrow(/must be a function/);
    expect(() => call("", f1)).toThrow(new RegExp(`${label}\\(name, fn\\): the name must be a non-empty string`));
    expect(() => call("   ", f1)).toThrow(/non-empty string/);
    expect(() => call(undefined, f1)).toThrow(/name must be a non-empty string, got undefined/);
    expect(() => call(f1, undefined)).toThrow(/name must be a non-empty string, got a function/);
  });
});

describe("partition and encoder", () => {
  it("wrap functions", () => {
    const p = w.partition((s: string) => s[0]);
    expect(p[KIND]).toBe("partition");
    expect(p.fn("hello")).toBe("h");
    expect(Object.isFrozen(p)).toBe(true);
    const e = w.encoder((x: number) => `${x}\n`);
    expect(e[KIND]).toBe("encoder");
    expect(e.fn(3)).toBe("3\n");
    expect(Object.isFrozen(e)).toBe(true);
  });

  it("reject non-functions", () => {
    expect(() => w.partition("x" as never)).toThrow(WallarooParameterError);
    expect(() => w.partition("x" as never)).toThrow(/partition\(fn\): fn must be a function, got the string "x"/);
    expect(() => w.encoder({} as never)).toThrow(/encoder\(fn\): fn must be a function, got an object/);
  });
});

describe("decoder", () => {
  const fn = (b: Buffer) => b.toString();

  it("decoder(fn) uses headerLength 4 and >I", () => {
    const d = w.decoder(fn);
    expect(d[KIND]).toBe("decoder");
    expect(d.headerLength).toBe(4);
    expect(d.lengthFmt).toBe(">I");
    expect(d.fn(Buffer.from("hi"))).toBe("hi");
    expect(Object.isFrozen(d)).toBe(true);
  });

  it("decoder({}, fn) uses the same defaults", () => {
    expect(w.decoder({}, fn)).toMatchObject({ headerLength: 4, lengthFmt: ">I" });
  });

  it.each([
    [1, ">B"],
    [1, "b"],
    [2, ">H"],
    [2, "<h"],
    [4, "!I"],
    [4, "<i"],
    [4, "=L"],
    [8, ">Q"],
    [8, "<q"],
    [8, "l"],
    [8, "@L"],
  ])("accepts headerLength %i with %s", (headerLength, lengthFmt) => {
    expect(w.decoder({ headerLength, lengthFmt }, fn)).toMatchObject({ headerLength, lengthFmt });
  });

  it("defaults headerLength to the size of the given lengthFmt", () => {
    expect(w.decoder({ lengthFmt: ">H" }, fn).headerLength).toBe(2);
    expect(w.decoder({ lengthFmt: "<Q" }, fn).headerLength).toBe(8);
  });

  it("accepts the Python spellings header_length and length_fmt", () => {
    expect(w.decoder({ header_length: 2, length_fmt: "<H" }, fn)).toMatchObject({ headerLength: 2, lengthFmt: "<H" });
  });

  it("rejects a header length that is not the size of the format, at once", () => {
    expect(() => w.decoder({ headerLength: 2, lengthFmt: ">I" }, fn)).toThrow(WallarooParameterError);
    expect(() => w.decoder({ headerLength: 2, lengthFmt: ">I" }, fn)).toThrow(
      /headerLength 2 does not match lengthFmt ">I", which is 4 bytes; use headerLength: 4/,
    );
    expect(() => w.decoder({ headerLength: 8 }, fn)).toThrow(/headerLength 8 does not match lengthFmt ">I"/);
    expect(() => w.decoder({ headerLength: 0, lengthFmt: ">B" }, fn)).toThrow(/which is 1 byte;/);
  });

  it.each([">X", ">II", "I>", "", "4I", ">s", ">f"])("rejects the unparseable lengthFmt %j", (lengthFmt) => {
    expect(() => w.decoder({ lengthFmt }, fn)).toThrow(WallarooParameterError);
    expect(() => w.decoder({ lengthFmt }, fn)).toThrow(/lengthFmt .* is not a single-integer Python struct format/);
  });

  it("rejects a non-string lengthFmt, unknown options, two spellings that disagree", () => {
    expect(() => w.decoder({ lengthFmt: 4 as never }, fn)).toThrow(/lengthFmt must be a string/);
    expect(() => w.decoder({ lengthFormat: ">I" } as never, fn)).toThrow(
      /unknown option "lengthFormat"; the options are headerLength and lengthFmt/,
    );
    expect(() => w.decoder({ headerLength: 4, header_length: 2 }, fn)).toThrow(/give headerLength once/);
  });

  it("rejects a missing or non-function fn and bad options", () => {
    expect(() => w.decoder({ headerLength: 4, lengthFmt: ">I" }, undefined as never)).toThrow(
      /decoder\(options, fn\): fn must be a function/,
    );
    expect(() => w.decoder(null as never, fn)).toThrow(/options must be an object/);
    expect(() => w.decoder(">I" as never, fn)).toThrow(/options must be an object/);
    expect(() => (w.decoder as (...a: unknown[]) => unknown)()).toThrow(WallarooParameterError);
  });
});
