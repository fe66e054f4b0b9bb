import { describe, expect, it } from "vitest";
import { newMark, observe, WatermarkClock, watermarkOf } from "../../src/windows/watermark.js";

describe("watermarks", () => {
  it("one input: the largest event time seen minus the delay", () => {
    const m = newMark();
    expect(watermarkOf([m], 2, 0, 5000)).toBe(-Infinity);
    observe(m, 100, 0);
    observe(m, 90, 1); // out of order: the mark stays
    expect(watermarkOf([m], 2, 1, 5000)).toBe(98);
  });
  it("several inputs: the minimum over the live ones; an input that never spoke holds nothing back", () => {
    const a = newMark();
    const b = newMark();
    const never = newMark();
    observe(a, 100, 0);
    observe(b, 40, 0);
    expect(watermarkOf([a, b, never], 0, 10, 5000)).toBe(40);
  });
  it("an idle input stops holding it back, and holds it again when it speaks", () => {
    const a = newMark();
    const b = newMark();
    observe(a, 100, 0);
    observe(b, 40, 0);
    observe(a, 200, 6000);
    expect(watermarkOf([a, b], 0, 6000, 5000)).toBe(200); // b idle since 0
    observe(b, 50, 6500);
    expect(watermarkOf([a, b], 0, 6500, 5000)).toBe(50);
  });
  it("all inputs idle: it follows the wall clock from the largest mark, from the moment the last went idle", () => {
    const a = newMark();
    const b = newMark();
    observe(a, 100, 0);
    observe(b, 300, 1000);
    expect(watermarkOf([a, b], 50, 5999, 5000)).toBe(250); // b live
    expect(watermarkOf([a, b], 50, 6000, 5000)).toBe(300);
    expect(watermarkOf([a, b], 50, 6700, 5000)).toBe(1000);
  });
  it("a clock keeps it monotone", () => {
    const c = new WatermarkClock();
    expect(c.advance(10)).toBe(true);
    expect(c.advance(5)).toBe(false);
    expect(c.value).toBe(10);
  });
});
