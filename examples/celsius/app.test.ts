/** celsius through the test driver on celsius.bin, checked against the reference and expected.txt. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { expected } from "./reference.js";

it("celsius equals the reference on two simulated workers", async () => {
  const driver = await createTestDriver({
    module: new URL("./app.ts", import.meta.url),
    args: ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"],
    workers: 2,
  });
  const bin = readFileSync(new URL("./celsius.bin", import.meta.url));
  const input = Array.from({ length: bin.length / 4 }, (_, i) => bin.subarray(i * 4, i * 4 + 4));
  await driver.pipeInput("Celsius Conversion", ...input);
  const got = driver.readOutput().map(String);
  expect(got).toEqual(expected(input));
  expect(got.join("")).toBe(readFileSync(new URL("./expected.txt", import.meta.url), "utf8"));
  await driver.close();
});
