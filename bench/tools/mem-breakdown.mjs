// Where a process's RSS is: samples /proc/<pid>/smaps every 200 ms while the process lives
// (or until --seconds), keeps the sample with the highest RSS, and prints it by kind of
// mapping. Memory debugging aid for bench/ANALYSIS.md ("Memory under full load").
//   node bench/tools/mem-breakdown.mjs <pid> [--seconds 30]
// Kinds: file-backed (the node binary, libraries), [heap] (glibc's brk heap), [stack], and
// anonymous mappings by their size (V8's heap pages are 256 KiB-aligned chunks inside large
// reservations; glibc's per-thread malloc arenas are 64 MiB reservations, mostly not
// resident; a SharedArrayBuffer of N MiB is an N MiB mapping; thread stacks are 8 MiB
// anonymous mappings next to a guard page).
import { readFileSync } from "node:fs";

const pid = Number(process.argv[2]);
const i = process.argv.indexOf("--seconds");
const until = Date.now() + (i > 0 ? Number(process.argv[i + 1]) : 600) * 1000;

function parse(text) {
  const maps = [];
  let cur = null;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (head) {
      cur = {
        size: (Number.parseInt(head[2], 16) - Number.parseInt(head[1], 16)) / 1024,
        perms: head[3],
        name: head[4],
        rss: 0,
        anon: 0,
      };
      maps.push(cur);
      continue;
    }
    const kv = /^(Rss|Anonymous):\s+(\d+) kB/.exec(line);
    if (kv && cur) cur[kv[1] === "Rss" ? "rss" : "anon"] = Number(kv[2]);
  }
  return maps;
}

function kindOf(m) {
  if (m.name === "[heap]") return "[heap] (brk)";
  if (m.name.startsWith("[stack")) return "[stack]";
  if (m.name.startsWith("/"))
    return m.anon > 0 ? "file-backed, written (relocations, .data)" : "file-backed (binary, libraries)";
  if (m.name.startsWith("[")) return m.name;
  const mib = m.size / 1024;
  if (mib >= 64) return "anon >= 64 MiB";
  if (mib >= 8) return "anon 8-64 MiB";
  if (mib >= 2) return "anon 2-8 MiB";
  if (mib >= 1) return "anon 1-2 MiB";
  if (mib >= 0.25) return "anon 256 KiB-1 MiB";
  return "anon < 256 KiB";
}

let best = null;
const tick = () => {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  } catch {
    return false;
  }
  const maps = parse(text);
  const rss = maps.reduce((a, m) => a + m.rss, 0);
  if (!best || rss > best.rss) best = { rss, maps, at: new Date().toISOString() };
  return true;
};
while (Date.now() < until && tick()) await new Promise((r) => setTimeout(r, 200));
if (!best) {
  console.error(`no /proc/${pid}/smaps`);
  process.exit(1);
}
const kinds = new Map();
for (const m of best.maps) {
  const k = kindOf(m);
  const e = kinds.get(k) ?? { rss: 0, n: 0, vsz: 0 };
  e.rss += m.rss;
  e.vsz += m.size;
  if (m.rss > 0) e.n++;
  kinds.set(k, e);
}
console.log(`peak RSS ${(best.rss / 1024).toFixed(1)} MB at ${best.at}`);
for (const [k, e] of [...kinds].sort((a, b) => b[1].rss - a[1].rss))
  console.log(
    `  ${k.padEnd(44)} ${(e.rss / 1024).toFixed(1).padStart(7)} MB RSS in ${e.n} mappings (${(e.vsz / 1024).toFixed(0)} MB mapped)`,
  );
const big = best.maps.filter((m) => !m.name && m.rss >= 1024).sort((a, b) => b.rss - a.rss);
console.log("  largest anonymous mappings (RSS / size, MB):");
console.log(
  `    ${big
    .slice(0, 40)
    .map((m) => `${(m.rss / 1024).toFixed(1)}/${(m.size / 1024).toFixed(1)}`)
    .join("  ")}`,
);
