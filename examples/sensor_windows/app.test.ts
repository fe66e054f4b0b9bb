/** sensor_windows through the test driver on data.txt, checked against the reference and expected.txt. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { closedBy, expected } from "./reference.js";

const input = readFileSync(new URL("./data.txt", import.meta.url), "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => Buffer.from(l));
const sensorOf = (l: string) => l.slice(0, l.indexOf(" "));
const perSensor = (ls: string[]) => ["s1", "s2", "s3", "s4"].map((s) => ls.filter((l) => sensorOf(l) === s));

it("sensor_windows equals the reference on two simulated workers, the last windows closed by advanceTime", async () => {
  const driver = await createTestDriver({
    module: new URL("./app.ts", import.meta.url),
    args: ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"],
    workers: 2,
    idleTimeout: 5,
  });
  try {
    await driver.pipeInput("readings", ...input);
    const early = driver.readOutput().map(String);
    // what the data itself closes (watermark: the largest event time less the 2 s delay)
    expect([...early].sort()).toEqual([...closedBy(input)].sort());
    await driver.advanceTime(60_000); // the input is idle: event time follows the clock
    const got = [...early, ...driver.readOutput().map(String)];
    const want = expected(input);
    expect([...got].sort()).toEqual([...want].sort());
    expect(perSensor(got)).toEqual(perSensor(want)); // each sensor's windows in end order
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
