// examples/word_count/app.test.ts — run with `npx vitest run examples/word_count`
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTestDriver, type TestDriver } from "wallaroo/testing";
import type { WordTotals } from "./app.js";

const app = new URL("./app.ts", import.meta.url);
// applicationSetup parses these; the driver opens no socket
const args = ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"];

describe("word count", () => {
  let driver: TestDriver;
  beforeEach(async () => {
    driver = await createTestDriver({ module: app, args, workers: 2 });
  });
  afterEach(() => driver.close());

  it("counts every word, whichever worker owns it", async () => {
    await driver.pipeInput("Split and Count", "The cat", "the dog!");
    const out = driver.readOutput().map((b) => b.toString());
    // two workers: words owned by different workers may come out in any order
    expect(out.sort()).toEqual(["cat => 1\n", "dog => 1\n", "the => 1\n", "the => 2\n"]);
    // the state partition holding the words that start with "t"
    const totals = await driver.state<WordTotals>("word totals", "t");
    expect(totals?.wordTotals.get("the")).toBe(2);
  });

  it("keeps its counts across a restart with another worker count", async () => {
    await driver.pipeInput("Split and Count", "one two two");
    const snapshot = await driver.checkpoint();
    const restarted = await createTestDriver({ module: app, args, workers: 3, restore: snapshot });
    await restarted.pipeInput("Split and Count", "two");
    expect(restarted.readOutput().map(String)).toEqual(["two => 3\n"]);
    await restarted.close();
  });
});
