/**
 * wallaroo/testing and windows: advanceTime closes windows deterministically (the last
 * window of a quiet stream, session windows, ingest time), on 1 and 2 simulated workers,
 * and open windows survive a checkpoint and restore (into another worker count).
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { createTestDriver } from "wallaroo/testing";

const APP = fileURLToPath(new URL("../fixtures/windows-app.ts", import.meta.url));
const args = (...more: string[]) => ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002", ...more];
const read = (bs: Buffer[]) => bs.map((b) => b.toString().trimEnd()).sort();

describe.each([1, 2])("on %i simulated worker(s)", (workers) => {
  it("event time moves the watermark; advanceTime closes the last window of a quiet stream", async () => {
    const d = await createTestDriver({ module: APP, args: args(), workers, idleTimeout: 5 });
    try {
      await d.pipeInput("events", "a 100 1", "b 200 2", "a 900 3", "a 1500 4", "b 1700 5");
      // the watermark is 1700 (no delay): [0, 1000) closed, [1000, 2000) open
      expect(read(d.readOutput())).toEqual(["a 0 1000 1,3", "b 0 1000 2"]);
      await d.advanceTime(4999); // the input is not idle yet
      expect(d.readOutput()).toEqual([]);
      await d.advanceTime(1); // idle: event time follows the clock from 1700
      expect(d.readOutput()).toEqual([]);
      await d.advanceTime(300);
      expect(read(d.readOutput())).toEqual(["a 1000 2000 4", "b 1000 2000 5"]);
    } finally {
      await d.close();
    }
  });

  it("session windows close when their gap has passed", async () => {
    const d = await createTestDriver({ module: APP, args: args("--mode", "session"), workers, idleTimeout: 1 });
    try {
      await d.pipeInput("events", "u 0 1", "u 200 2", "u 450 3", "v 100 4");
      // the watermark is 450: v's session [100, 400) has closed, u's [0, 750) has not
      expect(read(d.readOutput())).toEqual(["v 100 400 4"]);
      await d.advanceTime(1000); // idle from now on: event time follows the clock from 450
      expect(d.readOutput()).toEqual([]);
      await d.advanceTime(300);
      expect(read(d.readOutput())).toEqual(["u 0 750 1,2,3"]);
    } finally {
      await d.close();
    }
  });
});

it("an event keeps its event time when it crosses workers for a step before its window step", async () => {
  const d = await createTestDriver({ module: APP, args: args("--mode", "chained"), workers: 3, idleTimeout: 1 });
  try {
    const events = Array.from({ length: 30 }, (_, i) => `${"abc"[i % 3]} ${i * 100} ${i}`);
    await d.pipeInput("events", ...events);
    await d.advanceTime(5000);
    const want = ["a", "b", "c"].flatMap((k, j) =>
      [0, 1000, 2000].map((start) => {
        const vs = Array.from({ length: 30 }, (_, i) => i).filter(
          (i) => i % 3 === j && i * 100 >= start && i * 100 < start + 1000,
        );
        return `${k} ${start} ${start + 1000} ${vs.join(",")}`;
      }),
    );
    // values come in arrival order, which crossing workers may change: compared as sets
    const sortValues = (l: string) => {
      const [k, a, b, vs] = l.split(" ");
      return `${k} ${a} ${b} ${vs!
        .split(",")
        .map(Number)
        .sort((x, y) => x - y)
        .join(",")}`;
    };
    expect(read(d.readOutput()).map(sortValues)).toEqual(want.sort());
  } finally {
    await d.close();
  }
});

it("without eventTime, an event's time is the driver's clock (ingest time)", async () => {
  const d = await createTestDriver({ module: APP, args: args("--ingest-time"), idleTimeout: 10 });
  try {
    await d.pipeInput("events", "a 0 1");
    await d.advanceTime(1200);
    await d.pipeInput("events", "a 0 2");
    // the clock was 1200 when "2" came in: [0, 1000) is closed by it
    expect(read(d.readOutput())).toEqual(["a 0 1000 1"]);
  } finally {
    await d.close();
  }
});

it("open windows survive a checkpoint, restored into another worker count", async () => {
  const d = await createTestDriver({ module: APP, args: args(), workers: 1, idleTimeout: 1 });
  await d.pipeInput("events", "a 100 1", "b 150 2");
  const snapshot = await d.checkpoint();
  await d.close();
  const r = await createTestDriver({ module: APP, args: args(), workers: 3, restore: snapshot, idleTimeout: 1 });
  try {
    await r.pipeInput("events", "a 300 3", "c 400 4");
    await r.advanceTime(2000);
    expect(read(r.readOutput())).toEqual(["a 0 1000 1,3", "b 0 1000 2", "c 0 1000 4"]);
  } finally {
    await r.close();
  }
});
