/**
 * The test driver honours the two ways state ends (test/fixtures/ttl-app.ts): a state
 * computation's wallaroo.DELETE (single and multi form, partitioned and toStateful)
 * removes the instance, from checkpoints too, and the next message starts fresh; a
 * state's ttl removes instances no message touched for that long, on the driver's
 * processing-time clock, which only advanceTime() moves.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { createTestDriver, UserCodeError, type TestDriver } from "wallaroo/testing";

const APP = fileURLToPath(new URL("../fixtures/ttl-app.ts", import.meta.url));
const text = (bs: Buffer[]) => bs.map((b) => b.toString("utf8").trimEnd());
type Session = { n: number };

async function withDriver(workers: number, args: string[], body: (d: TestDriver) => Promise<void>): Promise<void> {
  const d = await createTestDriver({ module: APP, workers, args });
  try {
    await body(d);
  } finally {
    await d.close();
  }
}

describe.each([1, 3])("%i simulated worker(s)", (workers) => {
  it("DELETE: the instance is gone after the message, its output still goes out, the next message starts fresh", async () => {
    await withDriver(workers, [], async (d) => {
      await d.pipeInput("sessions", "a x", "a x", "a end");
      await d.pipeInput("sessions", "b x");
      expect(text(d.readOutput(0))).toEqual(["a 1", "a 2", "a 3 end", "b 1"]);
      expect(await d.state("sessions", "a")).toBeUndefined();
      expect((await d.state<Session>("sessions", "b"))?.n).toBe(1);
      await d.pipeInput("sessions", "a x");
      await d.pipeInput("sessions", "vip end", "vip x");
      expect(text(d.readOutput(0))).toEqual(["a 1", "vip 1 end", "vip 1"]);
    });
  });

  it("DELETE: a checkpoint after it does not hold the instance; one before it does", async () => {
    await withDriver(workers, [], async (d) => {
      await d.pipeInput("sessions", "a x", "b x", "a x");
      const before = await d.checkpoint();
      await d.pipeInput("sessions", "a end");
      const after = await d.checkpoint();
      const fromAfter = await createTestDriver({ module: APP, workers: 2, restore: after });
      expect(await fromAfter.state("sessions", "a")).toBeUndefined();
      expect((await fromAfter.state<Session>("sessions", "b"))?.n).toBe(1);
      await fromAfter.pipeInput("sessions", "a x");
      expect(text(fromAfter.readOutput(0))).toEqual(["a 1"]);
      // and a checkpoint of the restored driver does not bring it back either
      await fromAfter.pipeInput("sessions", "a end");
      const again = await createTestDriver({ module: APP, restore: await fromAfter.checkpoint() });
      expect(await again.state("sessions", "a")).toBeUndefined();
      const fromBefore = await createTestDriver({ module: APP, restore: before });
      expect((await fromBefore.state<Session>("sessions", "a"))?.n).toBe(2);
    });
  });

  it("a third element that is not DELETE is an error naming the fix; the instance is kept", async () => {
    await withDriver(workers, [], async (d) => {
      await d.pipeInput("sessions", "a x");
      const err = await d.pipeInput("sessions", "a bad", "a x").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserCodeError);
      expect((err as UserCodeError).where).toBe('computation "count" of pipeline "sessions"');
      expect((err as Error).message).toContain(
        "a state computation returns [output, saveState] or [output, saveState, wallaroo.DELETE], got string not DELETE as the third element",
      );
      expect(text(d.readOutput(0))).toEqual(["a 1", "a 3"]);
      expect((await d.state<Session>("sessions", "a"))?.n).toBe(3);
    });
  });

  it("DELETE from a multi computation on a toStateful state: both outputs go out, then the one instance starts fresh", async () => {
    await withDriver(workers, [], async (d) => {
      await d.pipeInput("bursts", "x", "reset");
      expect(await d.state("bursts")).toBeUndefined();
      const snap = await d.checkpoint();
      await d.pipeInput("bursts", "x");
      expect(text(d.readOutput(1))).toEqual(["all 1", "all 1 again", "all 2", "all 2 again", "all 1", "all 1 again"]);
      expect((await d.state<Session>("bursts"))?.n).toBe(1);
      const restored = await createTestDriver({ module: APP, restore: snap });
      expect(await restored.state("bursts")).toBeUndefined();
    });
  });

  it("ttl: untouched instances expire when the clock reaches last touch + ttl, touched ones stay, declared keys too", async () => {
    await withDriver(workers, ["--ttl-ms", "1000"], async (d) => {
      await d.pipeInput("sessions", "a x", "b x", "vip x"); // t = 0
      await d.advanceTime(600);
      await d.pipeInput("sessions", "b x"); // t = 600
      await d.advanceTime(399); // t = 999: nothing has been untouched for 1000 ms
      expect((await d.state<Session>("sessions", "a"))?.n).toBe(1);
      await d.advanceTime(1); // t = 1000
      expect(await d.state("sessions", "a")).toBeUndefined();
      expect(await d.state("sessions", "vip")).toBeUndefined();
      expect((await d.state<Session>("sessions", "b"))?.n).toBe(2);
      const snap = await d.checkpoint();
      await d.pipeInput("sessions", "a x", "b x", "vip x");
      // (sorted: on several workers, the outputs of different keys interleave in any order)
      expect(text(d.readOutput(0)).sort()).toEqual(["a 1", "a 1", "b 1", "b 2", "b 3", "vip 1", "vip 1"]);
      await d.advanceTime(1000); // t = 2000: everything was last touched at 1000
      for (const k of ["a", "b", "vip"]) expect(await d.state("sessions", k)).toBeUndefined();
      // The checkpoint taken after the expiry does not hold a or vip; b is back after a restore.
      const restored = await createTestDriver({ module: APP, args: ["--ttl-ms", "1000"], restore: snap });
      expect(await restored.state("sessions", "a")).toBeUndefined();
      expect((await restored.state<Session>("sessions", "b"))?.n).toBe(2);
      // A restored instance counts as touched when it is restored (the restored driver's clock is at 0).
      await restored.advanceTime(999);
      expect((await restored.state<Session>("sessions", "b"))?.n).toBe(2);
      await restored.advanceTime(1);
      expect(await restored.state("sessions", "b")).toBeUndefined();
    });
  });
});

describe("advanceTime", () => {
  it("refuses what is not a duration, and without a ttl removes nothing", async () => {
    await withDriver(1, [], async (d) => {
      await expect(d.advanceTime(-1)).rejects.toThrow("advanceTime(ms): ms must be a finite number >= 0, got -1");
      await expect(d.advanceTime(Number.NaN)).rejects.toThrow("got NaN");
      await d.pipeInput("sessions", "a x");
      await d.advanceTime(1e12);
      expect((await d.state<Session>("sessions", "a"))?.n).toBe(1);
    });
  });
});
