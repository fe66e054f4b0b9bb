/** page_view_sessions through the test driver on data.txt, checked against the reference and expected.txt. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { closedBy, expected } from "./reference.js";

const input = readFileSync(new URL("./data.txt", import.meta.url), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => Buffer.from(l));
const userOf = (l: string) => l.slice(0, l.indexOf(" "));
const perUser = (ls: string[]) => ["u1", "u2", "u3", "u4", "u5", "u6"].map((s) => ls.filter((l) => userOf(l) === s));

it("page_view_sessions equals the reference on two simulated workers, the last sessions closed by advanceTime", async () => {
  const driver = await createTestDriver({
    module: new URL("./app.ts", import.meta.url),
    args: ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"],
    workers: 2,
    idleTimeout: 5,
  });
  try {
    await driver.pipeInput("page views", ...input);
    const early = driver.readOutput().map(String);
    // what the data itself closes (watermark: the largest event time)
    expect([...early].sort()).toEqual([...closedBy(input)].sort());
    await driver.advanceTime(2 * 3_600_000); // the input is idle: event time follows the clock past every gap
    const got = [...early, ...driver.readOutput().map(String)];
    const want = expected(input);
    expect([...got].sort()).toEqual([...want].sort());
    expect(perUser(got)).toEqual(perUser(want)); // each user's sessions in end order
    expect([...want].sort().join("")).toBe(
      readFileSync(new URL("./expected.txt", import.meta.url), "utf8")
        .split(/(?<=\n)/)
        .sort()
        .join(""),
    );
  } finally {
    await driver.close();
  }
});
