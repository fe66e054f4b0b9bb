/**
 * Runs the application in-process with wallaroo/testing: the sources and sinks
 * are replaced by in-memory ones, the steps and the state are the real ones.
 */
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { createTestDriver, type TestDriver } from "wallaroo/testing";
import type { WordCount } from "../src/app.js";

const APP = fileURLToPath(new URL("../src/app.ts", import.meta.url));
const ARGS = ["--in", "127.0.0.1:0", "--out", "127.0.0.1:7002"];

describe("word counts", () => {
  let driver: TestDriver | undefined;
  afterEach(async () => {
    await driver?.close();
    driver = undefined;
  });

  it("counts each word, whichever worker owns it", async () => {
    driver = await createTestDriver({ module: APP, args: ARGS, workers: 2 });
    await driver.pipeInput("count words", "The cat", "the dog");
    const out = driver.readOutput(0).map((b) => b.toString("utf8"));
    // Different words may be counted on different workers: compare as a set.
    expect(out.sort()).toEqual(["cat 1\n", "dog 1\n", "the 1\n", "the 2\n"]);
    expect((await driver.state<WordCount>("word counts", "the"))?.count).toBe(2);
  });

  it("keeps counts across a checkpoint and a restore", async () => {
    driver = await createTestDriver({ module: APP, args: ARGS });
    await driver.pipeInput("count words", "a a b");
    const snapshot = await driver.checkpoint();
    await driver.close();
    driver = await createTestDriver({ module: APP, args: ARGS, restore: snapshot });
    await driver.pipeInput("count words", "a");
    expect(driver.readOutput(0).map((b) => b.toString("utf8"))).toEqual(["a 3\n"]);
  });
});
