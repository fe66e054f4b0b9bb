import { describe, expect, it } from "vitest";
import {
  announce,
  type InputMark,
  newMark,
  observe,
  summarize,
  WatermarkClock,
  watermarkOf,
} from "../../src/windows/watermark.js";

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
  it("an announced input (a Kafka partition assigned, not fetched yet) holds it back until it speaks or goes idle", () => {
    const a = newMark();
    const p = newMark();
    observe(a, 100, 0);
    announce(p, 0);
    expect(watermarkOf([a, p], 0, 10, 5000)).toBe(-Infinity);
    observe(p, 40, 20);
    expect(watermarkOf([a, p], 0, 20, 5000)).toBe(40);
    const q = newMark();
    announce(q, 0);
    expect(watermarkOf([a, q], 0, 4999, 5000)).toBe(-Infinity);
    observe(a, 200, 5000);
    expect(watermarkOf([a, q], 0, 5000, 5000)).toBe(200); // q idle: it holds nothing back
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
  it("a summary of a worker's inputs gives the watermark the inputs themselves give, and keeps only live inputs", () => {
    // Inputs (connections, partitions) on two workers; the watermark over the two summaries must
    // equal the watermark over all four inputs, whichever are live, at every moment.
    const idle = 1000;
    const w1 = new Map<number, InputMark>([
      [0, newMark()],
      [1, newMark()],
    ]);
    const w2 = new Map<number, InputMark>([
      [0, newMark()],
      [1, newMark()],
    ]);
    const all = [w1.get(0)!, w1.get(1)!, w2.get(0)!, w2.get(1)!];
    const r1 = newMark();
    const r2 = newMark();
    const s1 = newMark();
    const s2 = newMark();
    observe(w1.get(0)!, 100, 0); // slow
    observe(w1.get(1)!, 5000, 0); // fast, same worker
    observe(w2.get(0)!, 3000, 500);
    observe(w2.get(1)!, 4000, 700);
    // the slow connection holds it back while live: 100 - 10, not 3000 - 10
    summarize(w1, r1, 0, idle, s1);
    summarize(w2, r2, 0, idle, s2);
    expect(watermarkOf([s1, s2], 10, 0, idle)).toBe(90);
    for (const now of [0, 600, 999, 1000, 1499, 1500, 1699, 1700, 2500]) {
      summarize(w1, r1, now, idle, s1);
      summarize(w2, r2, now, idle, s2);
      expect([now, watermarkOf([s1, s2], 10, now, idle)]).toEqual([now, watermarkOf(all, 10, now, idle)]);
    }
    // idle inputs were folded into the retired marks
    summarize(w1, r1, 2500, idle, s1);
    expect(w1.size).toBe(0);
    expect(r1).toEqual({ maxEventTime: 5000, lastSeen: 0 });
  });
});
