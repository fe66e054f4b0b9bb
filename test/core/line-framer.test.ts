/**
 * LineFramer (core/framing.ts): lines become length-header frames whatever the read
 * boundaries are, `\r\n` and `\n` alike, and a line over the limit is refused alone.
 */
import { describe, expect, it } from "vitest";
import { FrameScan, LineFramer, frameEnd, scanFrames } from "../../src/core/framing.js";
import { parseLengthFormat } from "../../src/core/struct.js";

const fmt = parseLengthFormat(">I");

/** Every payload of a run of frames (checked by scanFrames as the workers' sources do). */
function payloads(run: Buffer): string[] {
  const scan = scanFrames(fmt, run, 0, run.length, 1 << 30, new FrameScan());
  expect(scan.end).toBe(run.length);
  const out: string[] = [];
  for (let p = 0; p < run.length; ) {
    const next = frameEnd(fmt, run, p);
    out.push(run.subarray(p + 4, next).toString("latin1"));
    p = next;
  }
  return out;
}

function feed(framer: LineFramer, chunks: Buffer[], end = true): string[] {
  const out: string[] = [];
  for (const c of chunks) {
    const run = framer.push(c);
    if (run) out.push(...payloads(run));
    expect(out.length).toBeGreaterThanOrEqual(0);
  }
  if (end) {
    const last = framer.end();
    if (last) out.push(...payloads(last));
  }
  return out;
}

describe("LineFramer", () => {
  const input = Buffer.from("alpha\r\nbeta\n\ngamma\r\r\nx".padEnd(0), "latin1");
  const expected = ["alpha", "beta", "", "gamma\r", "x"];

  it("frames the same lines at every split point, and at every pair of split points", () => {
    for (let i = 0; i <= input.length; i++) {
      for (let j = i; j <= input.length; j++) {
        const f = new LineFramer(fmt, 100, () => {
          throw new Error("no line is too long here");
        });
        const got = feed(f, [input.subarray(0, i), input.subarray(i, j), input.subarray(j)]);
        expect(got, `split at ${i}, ${j}`).toEqual(expected);
        expect(f.held).toBe(0);
      }
    }
  });

  it("refuses a line over the limit once, alone, at every split point, and keeps its neighbours", () => {
    const long = "L".repeat(25);
    const text = Buffer.from(`ok1\n${long}\r\nok2\nexactly10c\n${"M".repeat(11)}\nok3\n`, "latin1");
    for (let i = 0; i <= text.length; i++) {
      const tooLong: number[] = [];
      const f = new LineFramer(fmt, 10, (n) => tooLong.push(n));
      const got = feed(f, [text.subarray(0, i), text.subarray(i)]);
      expect(got, `split at ${i}`).toEqual(["ok1", "ok2", "exactly10c", "ok3"]);
      expect(tooLong.length, `split at ${i}`).toBe(2);
      expect(f.held).toBeLessThanOrEqual(11);
    }
  });

  it("holds at most the limit + 1 bytes of an unfinished line, and reports pending bytes for positions", () => {
    const f = new LineFramer(fmt, 10, () => {});
    expect(f.push(Buffer.from("0123456789\r"))).toBeNull();
    expect(f.held).toBe(11);
    expect(f.pending).toBe(11);
    expect(payloads(f.push(Buffer.from("\nab"))!)).toEqual(["0123456789"]);
    expect(f.pending).toBe(2);
    f.push(Buffer.from("c".repeat(20)));
    // skipping an over-long line: nothing held, but its bytes are still pending (a position is its start)
    expect(f.held).toBe(0);
    expect(f.pending).toBe(22);
    expect(payloads(f.push(Buffer.from("cc\nz\n"))!)).toEqual(["z"]);
    expect(f.pending).toBe(0);
  });

  it("a header format too small for the limit lowers it", () => {
    const f = new LineFramer(parseLengthFormat(">B"), 1000, () => {});
    expect(f.maxLine).toBe(255);
  });
});
