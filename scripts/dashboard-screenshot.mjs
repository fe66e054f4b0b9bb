#!/usr/bin/env node
// Takes the screenshot in docs/operations.md of the dashboard: word_count on 2 workers under steady
// load (wallaroo send --repeat --rate), with resilience on (a checkpoint every 2 s, in a
// fresh temporary directory) so that the checkpoint history fills; Debian's chromium
// driven by puppeteer-core.
//   npm run build && node scripts/dashboard-screenshot.mjs [out.png] [seconds]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const out = process.argv[2] ?? "docs/dashboard.png";
const seconds = Number(process.argv[3] ?? 20);
const chromium = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
const children = [];
const run = (args) => {
  const c = spawn(process.execPath, ["bin/wallaroo.js", ...args], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  children.push(c);
  return c;
};
const store = mkdtempSync(join(tmpdir(), "wallaroo-screenshot-"));
process.on("exit", () => {
  children.forEach((c) => c.kill("SIGKILL"));
  rmSync(store, { recursive: true, force: true });
});

const [inPort, outPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
run(["receive", "--port", String(outPort), "--count-only"]);
const engine = run([
  "run",
  "examples/word_count/app.ts",
  "--in",
  `127.0.0.1:${inPort}`,
  "--out",
  `127.0.0.1:${outPort}`,
  "--workers",
  "2",
  "--metrics-port",
  String(metricsPort),
  "--stats-interval",
  "0",
  "--resilience-dir",
  store,
  "--checkpoint-interval",
  "2",
]);
await new Promise((resolve, reject) => {
  let err = "";
  engine.stderr.on("data", (d) => {
    err += d;
    if (err.includes("dashboard")) resolve();
  });
  engine.on("exit", (code) => reject(new Error(`engine exited (${code}): ${err.slice(-2000)}`)));
});
run([
  "send",
  "--port",
  String(inPort),
  "--file",
  "examples/word_count/data.txt",
  "--repeat",
  "--rate",
  "20000",
  "--connections",
  "2",
]);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu"],
});
const page = await browser.newPage();
await page.setViewport({ width: 1400, height: 1000 });
await page.goto(`http://127.0.0.1:${metricsPort}/`, { waitUntil: "load" });
await new Promise((r) => setTimeout(r, seconds * 1000));
await page.screenshot({ path: out, fullPage: true });
await browser.close();
console.log(`wrote ${out}`);
process.exit(0);
