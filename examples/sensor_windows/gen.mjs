#!/usr/bin/env node
// Deterministic generator of sensor readings, one line per reading: "SENSOR TS TENTHS"
// (TS: event time in ms since the epoch; TENTHS: temperature in tenths of a degree, an
// integer, so that sums are exact). Readings come about once a second per sensor, and
// neighbouring lines are swapped now and then (out of order by at most ~1.5 s, within the
// app's 2 s delay, so none is late).
//
//   node examples/sensor_windows/gen.mjs --sensors 4 --seconds 60 > examples/sensor_windows/data.txt
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const sensors = arg("--sensors", 4);
const seconds = arg("--seconds", 60);
const BASE = 1_700_000_000_000; // 2023-11-14T22:13:20Z, a multiple of 10 s
let seed = 42;
const rand = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};
const rows = [];
for (let i = 0; i < seconds; i++) {
  for (let s = 1; s <= sensors; s++) {
    const ts = BASE + i * 1000 + Math.floor(rand() * 1000);
    const tenths = 180 + s * 15 + Math.round(25 * Math.sin(i / 7 + s)) + Math.floor(rand() * 5);
    rows.push([`s${s}`, ts, tenths]);
  }
}
rows.sort((a, b) => a[1] - b[1]);
for (let i = 0; i + 1 < rows.length; i++) {
  if (rand() < 0.2) [rows[i], rows[i + 1]] = [rows[i + 1], rows[i]];
}
process.stdout.write(rows.map((r) => r.join(" ")).join("\n") + "\n");
