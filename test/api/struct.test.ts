import { describe, expect, it } from "vitest";
import { parseLengthFormat } from "../../src/core/struct.js";

// Every single-integer format with its size, sign and byte order.
const FORMATS: [string, number, boolean, boolean][] = [];
for (const [order, little] of [
  ["<", true],
  [">", false],
  ["!", false],
  ["=", true],
  ["@", true],
  ["", true],
] as const) {
  for (const [code, size, signed] of [
    ["b", 1, true],
    ["B", 1, false],
    ["h", 2, true],
    ["H", 2, false],
    ["i", 4, true],
    ["I", 4, false],
    ["q", 8, true],
    ["Q", 8, false],
    // l/L are 4 bytes in standard mode and C long (8 bytes on 64-bit) in native mode
    ["l", order === "" || order === "@" ? 8 : 4, true],
    ["L", order === "" || order === "@" ? 8 : 4, false],
  ] as const) {
    FORMATS.push([order + code, size, signed, little]);
  }
}

/** Values near the limits of a format, kept within what a double holds exactly. */
function samples(size: number, signed: boolean): number[] {
  const bits = size * 8;
  const max = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const min = signed ? -(2 ** (bits - 1)) : 0;
  const cap = (n: number) => Math.max(Math.min(n, Number.MAX_SAFE_INTEGER), -Number.MAX_SAFE_INTEGER);
  const vals = [
    0,
    1,
    2,
    127,
    128,
    255,
    256,
    65535,
    65536,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 40 + 3,
    Number.MAX_SAFE_INTEGER,
    cap(max),
    cap(max) - 1,
    min,
    min + 1,
    -1,
    -128,
    -32768,
    -(2 ** 31),
  ];
  return [...new Set(vals.filter((v) => v >= min && v <= max && (size < 8 || Math.abs(v) <= Number.MAX_SAFE_INTEGER)))];
}

describe("parseLengthFormat", () => {
  it.each(FORMATS)("%j: size %i, signed %s, little-endian %s", (fmt, size, signed, little) => {
    const f = parseLengthFormat(fmt);
    expect(f).toMatchObject({ fmt, size, signed, littleEndian: little });
  });

  it.each(FORMATS)("%j round-trips values near its limits at non-zero offsets", (fmt, size, signed) => {
    const f = parseLengthFormat(fmt);
    for (const offset of [0, 1, 3, 7]) {
      const buf = new Uint8Array(offset + size + 2).fill(0xaa);
      for (const v of samples(size, signed)) {
        f.write(buf, offset, v);
        expect(f.read(buf, offset)).toBe(v);
        // the bytes around the header are untouched
        expect(buf[offset - 1] ?? 0xaa).toBe(0xaa);
        expect(buf[offset + size]).toBe(0xaa);
      }
    }
  });

  it.each(FORMATS)("%j writes the byte order Node's Buffer writes", (fmt, size, signed, little) => {
    const f = parseLengthFormat(fmt);
    for (const v of samples(size, signed)) {
      const ours = Buffer.alloc(size + 3);
      f.write(ours, 3, v);
      const ref = Buffer.alloc(size + 3);
      if (size === 8) {
        const big = BigInt(v);
        if (signed) little ? ref.writeBigInt64LE(big, 3) : ref.writeBigInt64BE(big, 3);
        else little ? ref.writeBigUInt64LE(big, 3) : ref.writeBigUInt64BE(big, 3);
      } else if (signed) {
        little ? ref.writeIntLE(v, 3, size) : ref.writeIntBE(v, 3, size);
      } else {
        little ? ref.writeUIntLE(v, 3, size) : ref.writeUIntBE(v, 3, size);
      }
      expect(ours.equals(ref)).toBe(true);
    }
  });

  it("reads the Python struct.pack bytes of known values", () => {
    // struct.pack(">I", 258) == b"\x00\x00\x01\x02"; struct.pack("<H", 258) == b"\x02\x01"
    expect(parseLengthFormat(">I").read(Uint8Array.of(9, 0, 0, 1, 2), 1)).toBe(258);
    expect(parseLengthFormat("<H").read(Uint8Array.of(2, 1), 0)).toBe(258);
    expect(parseLengthFormat("!Q").read(Uint8Array.of(0, 0, 0, 0, 0, 0, 1, 0, 9), 0)).toBe(256);
    expect(parseLengthFormat(">b").read(Uint8Array.of(0xff), 0)).toBe(-1);
    expect(parseLengthFormat(">B").read(Uint8Array.of(0xff), 0)).toBe(255);
    expect(parseLengthFormat(">i").read(Uint8Array.of(0xff, 0xff, 0xff, 0xfe), 0)).toBe(-2);
    expect(parseLengthFormat(">I").read(Uint8Array.of(0xff, 0xff, 0xff, 0xff), 0)).toBe(4294967295);
    expect(parseLengthFormat("<q").read(Uint8Array.of(0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 0)).toBe(-2);
  });

  it("works on Buffers that are views into a larger ArrayBuffer", () => {
    const backing = Buffer.alloc(64, 0);
    const view = backing.subarray(13, 30);
    for (const fmt of [">Q", "<q", ">I", "<h"]) {
      const f = parseLengthFormat(fmt);
      f.write(view, 5, 1234);
      expect(f.read(view, 5)).toBe(1234);
      expect(f.read(backing, 18)).toBe(1234);
    }
  });

  it.each([">X", "", ">>I", "II", "I<", "2I", "> I", ">d", ">s", "x"])("rejects %j saying what is accepted", (fmt) => {
    expect(() => parseLengthFormat(fmt)).toThrow(
      /is not a single-integer Python struct format.*one of b B h H i I l L q Q/,
    );
  });

  it("rejects a non-string", () => {
    expect(() => parseLengthFormat(4 as never)).toThrow(/lengthFmt must be a string such as ">I", got number/);
  });
});
