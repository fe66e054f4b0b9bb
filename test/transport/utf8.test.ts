import { describe, expect, it } from "vitest";
import { utf8Length, utf8Write } from "../../src/transport/utf8.js";

const samples = [
  "",
  "a",
  "word => 3\n",
  "héllo",
  "日本語",
  "emoji 🎉 here",
  "x".repeat(64),
  "y".repeat(65),
  "ascii then é".repeat(8),
];

describe("utf8 fast paths", () => {
  it.each(samples.map((s) => [JSON.stringify(s).slice(0, 30), s]))("%s: same length and bytes as Buffer", (_n, s) => {
    expect(utf8Length(s)).toBe(Buffer.byteLength(s));
    const buf = Buffer.alloc(Buffer.byteLength(s) + 10, 0xee);
    const n = utf8Write(buf, s, 3, buf.length - 3);
    expect(n).toBe(Buffer.byteLength(s));
    expect(buf.subarray(3, 3 + n).equals(Buffer.from(s))).toBe(true);
    expect(buf[2]).toBe(0xee);
    expect(buf[3 + n]).toBe(0xee);
  });
});
