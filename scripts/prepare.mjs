#!/usr/bin/env node
// `npm install` runs `prepare` in a git clone and in a directory given to
// `npm install /path/to/clone`, where devDependencies (typescript) may be missing:
// build dist/ when tsc is installed, otherwise keep the dist/ that is there (a
// packed or previously built copy) and say so; fail only when there is neither.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
let tsc;
try {
  tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
} catch {
  tsc = undefined;
}
if (tsc !== undefined) {
  const r = spawnSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: root, stdio: "inherit" });
  process.exit(r.status ?? 1);
}
if (existsSync(new URL("../dist/index.js", import.meta.url))) {
  console.error("wallaroo prepare: typescript is not installed; using the dist/ that is there");
  process.exit(0);
}
console.error(
  "wallaroo prepare: dist/ is missing and typescript is not installed to build it; " +
    "run `npm install` inside the clone first (it installs the devDependencies and builds), or install a tarball made with `npm pack`",
);
process.exit(1);
