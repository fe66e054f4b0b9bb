/** reverse through the test driver on data.txt, checked against the reference and expected.txt. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { expected } from "./reference.js";

it("reverse equals the reference, in input order, on two simulated workers", async () => {
  const driver = await createTestDriver({
    module: new URL("./app.ts", import.meta.url),
    args: ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"],
    workers: 2,
  });
  const text = readFileSync(new URL("./data.txt", import.meta.url), "utf8");
  const input = text
    .split("\n")
    .slice(0, -1)
    .map((l) => Buffer.from(l));
  await driver.pipeInput("reverse", ...input);
  const got = driver.readOutput().map(String);
  // a stateless pipeline keeps one connection's order, however many workers
  expect(got).toEqual(expected(input));
  expect(got.join("")).toBe(readFileSync(new URL("./expected.txt", import.meta.url), "utf8"));
  await driver.close();
});
