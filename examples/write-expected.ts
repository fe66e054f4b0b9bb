/**
 * Regenerates every example's expected output from its reference and its
 * committed data, so that expected.txt (and expected.bin) always agree with
 * reference.ts:
 *
 *   npx tsx examples/write-expected.ts
 *
 * Text inputs are read as the sender sends them: one message per line, the
 * "\n" not included, no trailing empty line. Binary inputs are cut into
 * fixed-size records.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as wordCount from "./word_count/reference.js";
import * as reverse from "./reverse/reference.js";
import * as celsius from "./celsius/reference.js";
import * as alphabet from "./alphabet/reference.js";
import * as marketSpread from "./market_spread/reference.js";
import * as sensorWindows from "./sensor_windows/reference.js";
import * as pageViewSessions from "./page_view_sessions/reference.js";

const dir = (name: string) => fileURLToPath(new URL(`./${name}/`, import.meta.url));

export function lines(file: string): Buffer[] {
  const text = readFileSync(file, "utf8");
  const parts = text.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts.map((l) => Buffer.from(l, "utf8"));
}

export function records(file: string, size: number): Buffer[] {
  const bytes = readFileSync(file);
  if (bytes.length % size !== 0) throw new Error(`${file}: ${bytes.length} bytes is not a multiple of ${size}`);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return out;
}

function main() {
  writeFileSync(dir("word_count") + "expected.txt", wordCount.expected(lines(dir("word_count") + "data.txt")).join(""));
  writeFileSync(dir("reverse") + "expected.txt", reverse.expected(lines(dir("reverse") + "data.txt")).join(""));
  writeFileSync(
    dir("sensor_windows") + "expected.txt",
    sensorWindows.expected(lines(dir("sensor_windows") + "data.txt")).join(""),
  );
  writeFileSync(
    dir("page_view_sessions") + "expected.txt",
    pageViewSessions.expected(lines(dir("page_view_sessions") + "data.txt")).join(""),
  );
  writeFileSync(dir("celsius") + "expected.txt", celsius.expected(records(dir("celsius") + "celsius.bin", 4)).join(""));

  const votes = alphabet.expected(records(dir("alphabet") + "votes.bin", 5));
  writeFileSync(dir("alphabet") + "expected.bin", Buffer.concat(votes));
  writeFileSync(dir("alphabet") + "expected.txt", votes.map((r) => alphabet.describe(r) + "\n").join(""));

  const nbbo = records(dir("market_spread") + "nbbo.bin", 42);
  const orders = records(dir("market_spread") + "orders.bin", 53);
  const rejected = marketSpread.expectedFor(nbbo, orders);
  writeFileSync(dir("market_spread") + "expected.bin", Buffer.concat(rejected));
  writeFileSync(dir("market_spread") + "expected.txt", rejected.map((r) => marketSpread.describe(r) + "\n").join(""));
}

// only when run as a script: importing lines()/records() has no side effect
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
