/**
 * market_spread through the test driver: the two pipelines share the
 * "symbol-data" state. Market data and orders are interleaved one message per
 * call (each call is settled when it returns), so the output must equal the
 * single-threaded reference exactly, on any number of simulated workers.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { expected, expectedFor } from "./reference.js";

const app = new URL("./app.ts", import.meta.url);
const args = ["--in", "127.0.0.1:7010,127.0.0.1:7011", "--out", "127.0.0.1:7002", "--zero-timestamps"];
const records = (file: string, size: number) => {
  const b = readFileSync(new URL(file, import.meta.url));
  return Array.from({ length: b.length / size }, (_, i) => b.subarray(i * size, i * size + size));
};
const nbbo = records("./nbbo.bin", 42);
const orders = records("./orders.bin", 53);

describe.each([1, 3])("market_spread on %i simulated worker(s)", (workers) => {
  it("market data first, then orders: the committed expected.bin", async () => {
    const driver = await createTestDriver({ module: app, args, workers });
    await driver.pipeInput("Market Data", ...nbbo);
    expect(driver.readOutput()).toEqual([]); // that pipeline has no sink
    await driver.pipeInput("Orders", ...orders);
    const got = driver.readOutput();
    expect(got.length).toBe(expectedFor(nbbo, orders).length);
    if (workers === 1) expect(Buffer.concat(got)).toEqual(readFileSync(new URL("./expected.bin", import.meta.url)));
    const hex = (bs: Buffer[]) => bs.map((b) => b.toString("hex")).sort();
    expect(hex(got)).toEqual(hex(expectedFor(nbbo, orders)));
    await driver.close();
  });

  it("interleaved one message at a time: exactly the reference", async () => {
    const driver = await createTestDriver({ module: app, args, workers });
    const mixed: Buffer[] = [];
    const got: Buffer[] = [];
    for (let i = 0; i < Math.max(nbbo.length, orders.length); i++) {
      if (i < nbbo.length) {
        mixed.push(nbbo[i]);
        await driver.pipeInput("Market Data", nbbo[i]);
      }
      if (i < orders.length) {
        mixed.push(orders[i]);
        await driver.pipeInput("Orders", orders[i]);
        got.push(...driver.readOutput());
      }
    }
    expect(got).toEqual(expected(mixed));
    await driver.close();
  });
});
