/**
 * word_count through the test driver on data.txt, checked against the
 * single-threaded reference (reference.ts, written independently of app.ts) and
 * the committed expected.txt.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { expected, finalCounts } from "./reference.js";

const app = new URL("./app.ts", import.meta.url);
const args = ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"];
const input = readFileSync(new URL("./data.txt", import.meta.url), "utf8")
  .split("\n")
  .filter((l, i, a) => i < a.length - 1 || l !== "")
  .map((l) => Buffer.from(l));

describe.each([1, 3])("word_count on %i simulated worker(s)", (workers) => {
  it("equals the reference (exactly on one worker; per word in order on more)", async () => {
    const driver = await createTestDriver({ module: app, args, workers });
    await driver.pipeInput("Split and Count", ...input);
    const got = driver.readOutput().map(String);
    const want = expected(input);
    if (workers === 1) {
      expect(got).toEqual(want);
      expect(got.join("")).toBe(readFileSync(new URL("./expected.txt", import.meta.url), "utf8"));
    }
    expect([...got].sort()).toEqual([...want].sort());
    for (const [word, n] of finalCounts(input)) {
      const key = word[0] >= "a" && word[0] <= "z" ? word[0] : "!";
      const totals = await driver.state<{ wordTotals: Map<string, number> }>("word totals", key);
      expect(totals?.wordTotals.get(word), word).toBe(n);
    }
    await driver.close();
  });
});
