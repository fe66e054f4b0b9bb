// Input data for the scenarios, made once by the examples' deterministic generators and cached
// in $TMPDIR/wallaroo-bench-data (the same bytes every run).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const DATA_DIR = process.env.WR_BENCH_DATA ?? join(tmpdir(), "wallaroo-bench-data");

/** Runs examples/EXAMPLE/gen.mjs with args (OUT in them is replaced by the output paths) unless the files exist. */
export function generate(example, outs, args) {
  mkdirSync(DATA_DIR, { recursive: true });
  const paths = outs.map((o) => join(DATA_DIR, o));
  if (paths.every(existsSync)) return paths;
  const tmp = paths.map((p) => `${p}.tmp${process.pid}`);
  const argv = args.map((a) => (typeof a === "number" ? tmp[a] : a));
  execFileSync(process.execPath, [join(ROOT, "examples", example, "gen.mjs"), ...argv], { stdio: "inherit" });
  paths.forEach((p, i) => renameSync(tmp[i], p));
  return paths;
}
