#!/usr/bin/env node
// Deterministic generator of page views, one line per view: "USER TS PAGE" (TS: event time
// in ms since the epoch), in time order. Each user browses in bursts (views 10 s to 5 min
// apart) separated by breaks of 35 min to 2 h, longer than the app's 30 min session gap.
//
//   node examples/page_view_sessions/gen.mjs --users 6 --hours 6 > examples/page_view_sessions/data.txt
const arg = (name, dflt) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const users = arg("--users", 6);
const hours = arg("--hours", 6);
const BASE = 1_700_000_000_000;
const PAGES = ["home", "search", "product", "cart", "checkout", "help", "blog", "about"];
let seed = 7;
const rand = () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  return seed / 4294967296;
};
const rows = [];
for (let u = 1; u <= users; u++) {
  let t = BASE + Math.floor(rand() * 20 * 60_000);
  while (t < BASE + hours * 3_600_000) {
    const views = 2 + Math.floor(rand() * 7);
    for (let v = 0; v < views; v++) {
      rows.push([`u${u}`, t, PAGES[Math.floor(rand() * PAGES.length)]]);
      t += 10_000 + Math.floor(rand() * 290_000);
    }
    t += 35 * 60_000 + Math.floor(rand() * 85 * 60_000);
  }
}
rows.sort((a, b) => a[1] - b[1]);
process.stdout.write(rows.map((r) => r.join(" ")).join("\n") + "\n");
