/**
 * alphabet through the test driver on votes.bin, checked against the
 * single-threaded reference and the committed expected.bin.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createTestDriver } from "wallaroo/testing";
import { expected } from "./reference.js";

const app = new URL("./app.ts", import.meta.url);
const args = ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"];
const bin = readFileSync(new URL("./votes.bin", import.meta.url));
const votes = Array.from({ length: bin.length / 5 }, (_, i) => bin.subarray(i * 5, i * 5 + 5));

describe.each([1, 2])("alphabet on %i simulated worker(s)", (workers) => {
  it("equals the reference: exact bytes on one worker, per letter in order on more", async () => {
    const driver = await createTestDriver({ module: app, args, workers });
    await driver.pipeInput("alphabet", ...votes);
    const got = driver.readOutput();
    const want = expected(votes);
    if (workers === 1) expect(Buffer.concat(got)).toEqual(readFileSync(new URL("./expected.bin", import.meta.url)));
    const byLetter = (rs: Buffer[], letter: number) => rs.filter((r) => r[4] === letter).map((r) => r.toString("hex"));
    for (const letter of new Set(want.map((r) => r[4]))) expect(byLetter(got, letter)).toEqual(byLetter(want, letter));
    expect(got.length).toBe(want.length);
    await driver.close();
  });

  it("a payload of the wrong size is refused by the decoder and reported", async () => {
    const driver = await createTestDriver({ module: app, args, workers });
    await expect(driver.pipeInput("alphabet", votes[0], Buffer.from("abc"), votes[1])).rejects.toThrow(
      /expected a 5-byte payload/,
    );
    expect(driver.readOutput().length).toBe(2);
    await driver.close();
  });
});

// The snippet in examples/README.md.
it("two votes for a: running totals 3 and 6", async () => {
  const driver = await createTestDriver({
    module: new URL("./app.ts", import.meta.url),
    args: ["--in", "127.0.0.1:7010", "--out", "127.0.0.1:7002"], // parsed by applicationSetup; nothing listens
    workers: 2,
  });
  const vote = Buffer.from([0x61, 0, 0, 0, 3]); // what the decoder receives: letter "a", 3 votes (u32 BE)
  await driver.pipeInput("alphabet", vote, vote);
  expect(driver.readOutput().map((b) => b.toString("hex"))).toEqual([
    "00000009" + "61" + "0000000000000003",
    "00000009" + "61" + "0000000000000006",
  ]);
  expect(await driver.state("letter state", "a")).toMatchObject({ letter: "a", votes: 6 });
  await driver.close();
});
