import { describe, expect, it } from "vitest";
import { FrameReader, FrameScan, frameEnd, maxPayload, scanFrames, writeFrame } from "../../src/core/framing.js";
import { parseLengthFormat } from "../../src/core/struct.js";

const FORMATS = [">I", "<I", ">H", "<h", "b", "B", ">Q", "<q", "!i"];

/** payloads of mixed sizes (0 included), framed back to back with writeFrame */
function framed(fmtText: string, payloads: Buffer[]): Buffer {
  const fmt = parseLengthFormat(fmtText);
  const out = Buffer.alloc(payloads.reduce((n, p) => n + fmt.size + p.length, 0));
  let off = 0;
  for (const p of payloads) off = writeFrame(fmt, out, off, p);
  expect(off).toBe(out.length);
  return out;
}

const sample = (n: number) => Array.from({ length: n }, (_, i) => Buffer.from("x".repeat(i % 7) + String(i)));

describe("length-header framing", () => {
  it("maxPayload is what the header can announce", () => {
    expect(maxPayload(parseLengthFormat("B"))).toBe(255);
    expect(maxPayload(parseLengthFormat("b"))).toBe(127);
    expect(maxPayload(parseLengthFormat(">H"))).toBe(65535);
    expect(maxPayload(parseLengthFormat(">I"))).toBe(2 ** 32 - 1);
    expect(maxPayload(parseLengthFormat(">i"))).toBe(2 ** 31 - 1);
    expect(maxPayload(parseLengthFormat(">Q"))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it.each(FORMATS)("writeFrame lays out header + payload, and frameEnd/scanFrames find them again (%s)", (f) => {
    const fmt = parseLengthFormat(f);
    const payloads = [Buffer.alloc(0), ...sample(20)];
    const wire = framed(f, payloads);
    // the header holds the length in the format's byte order
    expect(fmt.read(wire, 0)).toBe(0);
    expect(fmt.read(wire, fmt.size)).toBe(payloads[1].length);
    const scan = scanFrames(fmt, wire, 0, wire.length, 1 << 20, new FrameScan());
    expect(scan).toMatchObject({ end: wire.length, count: payloads.length, bad: null });
    // the workers' walk: frameEnd from header to header
    const got: string[] = [];
    for (let p = 0; p < wire.length; ) {
      const next = frameEnd(fmt, wire, p);
      got.push(wire.subarray(p + fmt.size, next).toString());
      p = next;
    }
    expect(got).toEqual(payloads.map((p) => p.toString()));
  });

  it("writeFrame frames a slice of a larger buffer", () => {
    const fmt = parseLengthFormat(">I");
    const out = Buffer.alloc(9);
    expect(writeFrame(fmt, out, 0, Buffer.from("abcdefgh"), 2, 7)).toBe(9);
    expect(out).toEqual(Buffer.from([0, 0, 0, 5, ...Buffer.from("cdefg")]));
  });

  it("writeFrame refuses a payload the header cannot announce", () => {
    const fmt = parseLengthFormat("B");
    expect(() => writeFrame(fmt, Buffer.alloc(300), 0, Buffer.alloc(256))).toThrow(RangeError);
    expect(writeFrame(fmt, Buffer.alloc(300), 0, Buffer.alloc(255))).toBe(256);
  });

  it("scanFrames stops before an incomplete header or payload", () => {
    const fmt = parseLengthFormat(">I");
    const wire = framed(">I", sample(3));
    const whole = wire.length;
    const third = frameEnd(fmt, wire, frameEnd(fmt, wire, 0));
    const scan = new FrameScan();
    for (const cut of [third + 1, third + 3, third + 4, whole - 1]) {
      expect(scanFrames(fmt, wire, 0, cut, 1000, scan)).toMatchObject({ end: third, count: 2, bad: null });
    }
    // from the middle of a buffer, to its end
    expect(scanFrames(fmt, wire, third, whole, 1000, scan)).toMatchObject({ end: whole, count: 1, bad: null });
    expect(scanFrames(fmt, wire, whole, whole, 1000, scan)).toMatchObject({ end: whole, count: 0, bad: null });
  });

  it("scanFrames reports a header over the limit or negative, after the frames before it", () => {
    const fmt = parseLengthFormat(">i");
    const good = framed(">i", sample(2));
    const over = Buffer.alloc(4);
    fmt.write(over, 0, 101);
    const neg = Buffer.alloc(4);
    fmt.write(neg, 0, -5);
    const scan = new FrameScan();
    // the bad header is found as soon as it is whole, before its payload arrives
    expect(scanFrames(fmt, Buffer.concat([good, over]), 0, good.length + 4, 100, scan)).toMatchObject({
      end: good.length,
      count: 2,
      bad: 101,
    });
    expect(scanFrames(fmt, Buffer.concat([good, neg, good]), 0, 2 * good.length + 4, 100, scan)).toMatchObject({
      end: good.length,
      count: 2,
      bad: -5,
    });
    // exactly at the limit is fine
    const at = framed(">i", [Buffer.alloc(100)]);
    expect(scanFrames(fmt, at, 0, at.length, 100, scan)).toMatchObject({ end: at.length, count: 1, bad: null });
  });

  it("FrameReader reassembles frames split anywhere, and counts without a listener", () => {
    const payloads = [Buffer.alloc(0), ...sample(50), Buffer.alloc(1000, 7)];
    for (const f of [">I", "<H", ">Q"]) {
      const fmt = parseLengthFormat(f);
      const wire = framed(f, payloads);
      for (const step of [1, 2, 3, 5, 64, wire.length]) {
        const got: Buffer[] = [];
        const reader = new FrameReader(fmt, (p) => got.push(Buffer.from(p)));
        const counter = new FrameReader(fmt);
        let n = 0;
        let m = 0;
        for (let i = 0; i < wire.length; i += step) {
          n += reader.push(wire.subarray(i, i + step));
          m += counter.push(wire.subarray(i, i + step));
        }
        expect(n).toBe(payloads.length);
        expect(m).toBe(payloads.length);
        expect(got).toEqual(payloads);
      }
    }
  });

  it("FrameReader throws on a negative length", () => {
    const fmt = parseLengthFormat(">h");
    const bad = Buffer.alloc(2);
    fmt.write(bad, 0, -1);
    expect(() => new FrameReader(fmt).push(bad)).toThrow(/negative length \(-1\)/);
  });
});
