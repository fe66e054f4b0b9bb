/**
 * Metrics and dashboard, end to end: the engine run through the CLI with
 * --metrics-port 0, real traffic through examples/word_count, /metrics scraped over
 * HTTP, and the dashboard loaded in a real (headless) Chromium.
 */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { example, fixture, startEngine, send, taggedMessages, type Engine } from "../helpers/engine.js";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import * as wordCount from "../../examples/word_count/reference.js";
import { withInitialState } from "../../src/metrics/server.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const HAVE_CHROMIUM = existsSync(CHROMIUM);
if (!HAVE_CHROMIUM && process.env.CI !== "true") {
  console.warn(
    `metrics.test.ts: ${CHROMIUM} not found, skipping the browser test (apt-get install -y chromium; CI installs it)`,
  );
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DATA = example("word_count", "data.txt");
const dataLines = () =>
  readFileSync(DATA, "utf8")
    .split("\n")
    .filter((l) => l.length > 0);

async function withMetricsEngine(
  workers: number,
  body: (e: Engine, base: string, sink: Collector, inPort: number) => Promise<void>,
  app = example("word_count"),
  extra: string[] = [],
): Promise<void> {
  const sink = await startCollector(0, { keep: true });
  const inPort = await freePort();
  const engine = await startEngine(
    app,
    [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      String(workers),
      "--metrics-port",
      "0",
      ...extra,
    ],
    { env: { WALLAROO_METRICS_SAMPLE_EVERY: "64" } },
  ); // small runs: time more than the default 1 in 1024
  try {
    const line = await engine.waitForLog((l) => typeof l.dashboard === "string", 10_000);
    const base = String(line.dashboard);
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    await body(engine, base, sink, inPort);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
  } finally {
    engine.kill();
    await sink.close();
  }
}

/** `name{labels} value` lines of the Prometheus text format, as [name+labels, value]. */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const l of text.split("\n")) {
    if (l.startsWith("#") || l.trim() === "") continue;
    const at = l.lastIndexOf(" ");
    m.set(l.slice(0, at), Number(l.slice(at + 1)));
  }
  return m;
}

/**
 * Scrapes `url` until `ready` holds for the parsed metrics (or 30 s pass), and returns the last scrape: the
 * test's exact assertions then run on it. Some values are not final the moment the last output reaches the
 * receiver (the instance gauge and the dashboard's errors come with the workers' stats reports, every second,
 * later under load), so a fixed sleep before the scrape was a race.
 */
async function scrapeWhen(url: string, ready: (m: Map<string, number>) => boolean): Promise<Map<string, number>> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = parseMetrics(await (await fetch(url)).text());
    if (ready(m) || Date.now() > deadline) return m;
    await sleep(100);
  }
}

describe("metrics", () => {
  it("the page's embedded state cannot close its script element, and reads back as given", () => {
    const state = { errors: [{ message: "</script><script>alert(1)</script> <!-- x" }] };
    const html = withInitialState("<body><!-- initial-state --></body>", state);
    const inner = /<script id="initial-state" type="application\/json">(.*)<\/script><\/body>$/s.exec(html)?.[1];
    expect(inner).toBeDefined();
    expect(inner).not.toContain("<");
    expect(JSON.parse(inner!)).toEqual(state);
  });

  it("/metrics counts exactly the messages sent and the outputs received", async () => {
    const started = Date.now();
    await withMetricsEngine(
      2,
      async (_e, base, sink, inPort) => {
        const input = dataLines();
        const want = wordCount.expected(input.map((l) => Buffer.from(l))).length;
        expect(want).toBe(5590);
        // Three passes over the data set, on three connections.
        for (let i = 0; i < 3; i++) {
          const s = await send(["--port", String(inPort), "--file", DATA]);
          expect(s.code, s.stderr).toBe(0);
        }
        await sink.waitForLines(3 * want);
        const res = await fetch(`${base}metrics`);
        expect(res.status).toBe(200);
        expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
        await res.text();
        const p = 'pipeline="Split and Count"';
        // The instance gauge is updated by each worker's stats report; a checkpoint may still be on its way.
        const m = await scrapeWhen(
          `${base}metrics`,
          (mm) =>
            (mm.get('wallaroo_state_instances{state="word totals"}') ?? 0) > 0 &&
            (mm.get("wallaroo_checkpoints_total") ?? 0) > 0 &&
            [...mm].every(([k, v]) => !k.startsWith("wallaroo_ring_occupancy_ratio") || v === 0),
        );
        expect(m.get(`wallaroo_source_messages_total{${p}}`)).toBe(3 * input.length);
        expect(m.get(`wallaroo_sink_messages_total{${p},sink="tcp 127.0.0.1:${sink.port}"}`)).toBe(sink.lines().length);
        expect(sink.lines().length).toBe(3 * want);
        expect(m.get(`wallaroo_step_messages_total{${p},step="split into words"}`)).toBe(3 * input.length);
        expect(m.get(`wallaroo_step_messages_total{${p},step="Count Word"}`)).toBe(3 * want);
        expect(m.get(`wallaroo_step_errors_total{${p},step="Count Word"}`)).toBe(0);
        // One instance per partition key seen: at most the 26 letters and "!".
        const instances = m.get('wallaroo_state_instances{state="word totals"}')!;
        expect(instances).toBeGreaterThan(0);
        expect(instances).toBeLessThanOrEqual(27);
        // Sampled histograms: some samples, never more than the messages.
        const stepSamples = m.get(`wallaroo_step_processing_seconds_count{${p},step="Count Word"}`)!;
        expect(stepSamples).toBeGreaterThan(0);
        expect(stepSamples).toBeLessThanOrEqual(3 * want);
        expect(m.get(`wallaroo_latency_seconds_count{${p}}`)).toBeGreaterThan(0);
        expect(m.get(`wallaroo_latency_seconds_bucket{${p},le="+Inf"}`)).toBe(
          m.get(`wallaroo_latency_seconds_count{${p}}`),
        );
        // Every ring is reported; nothing is in flight any more.
        const rings = [...m.keys()].filter((k) => k.startsWith("wallaroo_ring_occupancy_ratio"));
        expect(rings.length).toBe(2 + 2 + 2); // source->2 workers, 2 peer rings, 2 workers->sink
        for (const r of rings) expect(m.get(r)).toBe(0);
        expect(m.has('wallaroo_worker_busy_seconds_total{worker="1"}')).toBe(true);
        // Resilience is on in this run: periodic checkpoints are counted and timed.
        expect(m.get("wallaroo_checkpoints_total")).toBeGreaterThan(0);
        expect(m.get("wallaroo_checkpoint_failures_total")).toBe(0);
        expect(m.get("wallaroo_checkpoint_duration_seconds_count")).toBe(m.get("wallaroo_checkpoints_total"));
        expect(m.get("wallaroo_checkpoint_last_success_timestamp_seconds")! * 1000).toBeGreaterThan(started);
        expect(m.get("wallaroo_checkpoint_bytes")).toBeGreaterThanOrEqual(0);
      },
      example("word_count"),
      ["--resilience-dir", mkdtempSync(join(tmpdir(), "wallaroo-metrics-")), "--checkpoint-interval", "0.2"],
    );
  });

  it("errors are counted where they happen, and the latest reach the dashboard's data", async () => {
    await withMetricsEngine(
      2,
      async (_e, base, sink, inPort) => {
        const bad = (what: string, n: number) =>
          Array.from({ length: n }, (_, i) => `bad-${what} ${1000 + i} k${i % 3}`);
        const msgs = [
          ...taggedMessages("c", 0, 40, 3),
          ...bad("decode", 2),
          ...bad("compute", 3),
          ...bad("partition", 4),
          ...bad("encode", 5),
        ];
        await sendBytes(inPort, frame(msgs));
        await sink.waitForLines(40);
        const p = 'pipeline="faulty"';
        // The bad messages come after the 40 good ones: their errors may still be counted after the 40th line.
        const m = await scrapeWhen(
          `${base}metrics`,
          (mm) =>
            mm.get(`wallaroo_step_errors_total{${p},step="(decoder)"}`) === 2 &&
            mm.get(`wallaroo_step_errors_total{${p},step="faulty compute"}`) === 3 &&
            mm.get(`wallaroo_step_errors_total{${p},step="count per key"}`) === 4 &&
            mm.get(`wallaroo_step_errors_total{${p},step="(encoder tcp 127.0.0.1:${sink.port})"}`) === 5,
        );
        expect(m.get(`wallaroo_source_messages_total{${p}}`)).toBe(msgs.length - 2); // a message that fails to decode never entered
        expect(m.get(`wallaroo_step_errors_total{${p},step="(decoder)"}`)).toBe(2);
        expect(m.get(`wallaroo_step_errors_total{${p},step="faulty compute"}`)).toBe(3);
        expect(m.get(`wallaroo_step_errors_total{${p},step="count per key"}`)).toBe(4); // its partition function
        expect(m.get(`wallaroo_step_errors_total{${p},step="(encoder tcp 127.0.0.1:${sink.port})"}`)).toBe(5);
        expect(m.get(`wallaroo_sink_messages_total{${p},sink="tcp 127.0.0.1:${sink.port}"}`)).toBe(40);
        expect(sink.lines().length).toBe(40);
        // The latest errors reach the dashboard with the workers' stats reports (every second; later under load).
        const snapshot = async () =>
          (await (await fetch(`${base}api/snapshot`)).json()) as { errors: { where: string; message: string }[] };
        let snap = await snapshot();
        for (const deadline = Date.now() + 30_000; snap.errors.length === 0 && Date.now() < deadline; ) {
          await sleep(100);
          snap = await snapshot();
        }
        expect(snap.errors.length).toBeGreaterThan(0);
        expect(snap.errors.map((e) => e.message).join("\n")).toMatch(/refuses bad-/);
      },
      fixture("e2e-app.ts"),
      ["--mode", "faulty"],
    );
  });

  it("a stalled receiver shows as full rings and blocked time, sink first, then back to the source; counts stay exact", async () => {
    await withMetricsEngine(
      2,
      async (_e, base, sink, inPort) => {
        sink.pause(); // accepts the engine's connection, never reads
        const socket = net.connect(inPort, "127.0.0.1");
        await new Promise((r) => socket.once("connect", r));
        const m = async () => parseMetrics(await (await fetch(`${base}metrics`)).text());
        const sumOf = (mm: Map<string, number>, prefix: string) =>
          [...mm].filter(([k]) => k.startsWith(prefix)).reduce((n, [, v]) => n + v, 0);
        const sinkFill = (mm: Map<string, number>) =>
          Math.max(
            ...[...mm].filter(([k]) => k.startsWith('wallaroo_ring_occupancy_ratio{channel="sink"')).map(([, v]) => v),
          );
        // Write 16 KiB messages until TCP stops taking them for a second: the receiver's kernel
        // buffers, the sink thread's, its rings, the workers' and the source's rings are full.
        const msg = frame([Buffer.alloc(16 * 1024, 7)]);
        let sent = 0;
        for (let blocked = false; !blocked && sent < 20_000; ) {
          sent++;
          if (!socket.write(msg)) {
            blocked = !(await Promise.race([
              new Promise<boolean>((r) => socket.once("drain", () => r(true))),
              sleep(1000).then(() => false),
            ]));
          }
        }
        expect(sent, "the sender never blocked").toBeLessThan(20_000);
        const stalled = await m();
        expect(sinkFill(stalled), JSON.stringify([...stalled].filter(([k]) => k.includes("ring")))).toBeGreaterThan(
          0.5,
        );
        expect(sumOf(stalled, 'wallaroo_ring_blocked_seconds_total{channel="sink"')).toBeGreaterThan(0);
        expect(sumOf(stalled, 'wallaroo_ring_blocked_seconds_total{channel="source"')).toBeGreaterThan(0);
        // The source holds what it read and could not hand on: its backlog (sampled 4 times a second).
        const backlog = await scrapeWhen(`${base}metrics`, (mm) => sumOf(mm, "wallaroo_source_backlog_bytes{") > 0);
        expect(backlog.get('wallaroo_source_backlog_bytes{pipeline="passthrough"}')).toBeGreaterThan(0);
        const snap = (await (await fetch(`${base}api/snapshot`)).json()) as {
          channels: { channel: string; occupancy: number }[];
        };
        expect(snap.channels.some((c) => c.channel === "sink" && c.occupancy > 0.5)).toBe(true);
        // Let it all through: every message sent is counted once, every byte received once.
        sink.resume();
        await new Promise<void>((r) => socket.end(r));
        await sink.waitForBytes(sent * 16 * 1024, 60_000);
        const end = await m();
        expect(end.get('wallaroo_source_messages_total{pipeline="passthrough"}')).toBe(sent);
        expect(sumOf(end, "wallaroo_sink_messages_total{")).toBe(sent);
        expect(sink.received()).toBe(sent * 16 * 1024);
        const drained = await scrapeWhen(`${base}metrics`, (mm) => sumOf(mm, "wallaroo_source_backlog_bytes{") === 0);
        expect(drained.get('wallaroo_source_backlog_bytes{pipeline="passthrough"}')).toBe(0);
      },
      fixture("e2e-app.ts"),
      ["--mode", "passthrough", "--ring-bytes", "65536"],
    );
  });

  it("a metrics port already taken stops the start with exit code 1 and says why", async () => {
    const taken = net.createServer();
    await new Promise<void>((r) => taken.listen(0, "127.0.0.1", r));
    const port = (taken.address() as net.AddressInfo).port;
    const sink = await startCollector();
    const engine = await startEngine(
      example("word_count"),
      [
        "--in",
        `127.0.0.1:${await freePort()}`,
        "--out",
        `127.0.0.1:${sink.port}`,
        "--workers",
        "1",
        "--metrics-port",
        String(port),
      ],
      { waitRunning: false },
    );
    try {
      expect(await engine.exited).toEqual({ code: 1, signal: null });
      expect(engine.stderr()).toContain(`cannot start the metrics server on 127.0.0.1:${port}`);
      expect(engine.stderr()).toContain("EADDRINUSE");
    } finally {
      engine.kill();
      taken.close();
      await sink.close();
    }
  });

  it("dashboard: checkpoint history, exception history with stacks and values, configuration, source backlog; all at load", {
    skip: !HAVE_CHROMIUM && process.env.CI !== "true",
    timeout: 90_000,
  }, async () => {
    if (!HAVE_CHROMIUM) throw new Error(`CI=true but ${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
    const { default: puppeteer } = await import("puppeteer-core");
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    try {
      await withMetricsEngine(
        2,
        async (_e, base, sink, inPort) => {
          // Errors in the computation, one value that tries to break the page out of its table.
          const evil = "bad-compute <img src=x onerror=window.__pwned=1> </script>";
          const msgs = [...taggedMessages("c", 0, 20, 3), evil, evil, "bad-compute 7 k1"];
          await sendBytes(inPort, frame(msgs));
          await sink.waitForLines(20);
          type Snap = {
            errors: { where: string; count: number }[];
            checkpoints: { outcome: string }[];
            backlog: { unit: string; value: number | null }[];
          };
          const snapshot = async () => (await (await fetch(`${base}api/snapshot`)).json()) as Snap;
          // The errors come with the workers' stats reports, the checkpoints every 0.2 s.
          let snap = await snapshot();
          const ready = (x: Snap) =>
            x.errors.filter((e) => e.where.includes('"faulty compute"')).reduce((n, e) => n + e.count, 0) === 3 &&
            x.checkpoints.some((c) => c.outcome === "committed");
          for (const deadline = Date.now() + 30_000; !ready(snap) && Date.now() < deadline; ) {
            await sleep(100);
            snap = await snapshot();
          }
          expect(ready(snap), JSON.stringify(snap)).toBe(true);

          // A page whose event stream is refused: everything below comes from the page itself.
          const page = await browser.newPage();
          await page.setViewport({ width: 1400, height: 1000 });
          const pageErrors: string[] = [];
          page.on("pageerror", (err) => pageErrors.push(String(err)));
          await page.setRequestInterception(true);
          page.on("request", (r) => (new URL(r.url()).pathname === "/events" ? r.abort() : r.continue()));
          await page.goto(base, { waitUntil: "load" });
          const shown = await page.evaluate(() => {
            const cells = (sel: string) =>
              [...document.querySelectorAll(`${sel} tbody tr`)]
                .filter((tr) => !(tr as HTMLElement).hidden)
                .map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent ?? ""));
            return {
              checkpoints: cells("#checkpoints"),
              exceptions: cells("#exceptions"),
              app: cells("#config-app"),
              options: cells("#config-options"),
              backlog: cells("#backlog"),
              backlogUnits: [...document.querySelectorAll("#backlog tbody tr")].map(
                (tr) => (tr as HTMLElement).dataset.unit,
              ),
              backlogChart: document.querySelectorAll("#chart-backlog canvas").length,
              pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
              imgs: document.querySelectorAll("#exceptions img").length,
            };
          });
          const dump = JSON.stringify(shown);
          // Checkpoint history: rows, the newest first, with the committed ones numbered.
          expect(shown.checkpoints.length, dump).toBeGreaterThan(0);
          expect(
            shown.checkpoints.some((r) => r[2] === "committed" && /^#\d+$/.test(r[1]!)),
            dump,
          ).toBe(true);
          // Exception history: the step, the count (the two identical errors are one row of 2).
          const compute = shown.exceptions.filter((r) => r[1]!.includes('"faulty compute"'));
          expect(
            compute.map((r) => Number(r[2])).reduce((a, b) => a + b, 0),
            dump,
          ).toBe(3);
          const evilRow = compute.find((r) => r[4]!.includes("<img"));
          expect(evilRow?.[2], dump).toBe("2");
          expect(shown.pwned, dump).toBeNull();
          expect(shown.imgs, dump).toBe(0);
          // A click opens the stack and the value.
          const rows = await page.$$("#exceptions tr.exception");
          const texts = await Promise.all(rows.map((r) => r.evaluate((tr) => tr.textContent ?? "")));
          const i = texts.findIndex((t) => t.includes("<img"));
          expect(i, dump).toBeGreaterThanOrEqual(0);
          await rows[i]!.click();
          const detail = await rows[i]!.evaluate((tr) => {
            const d = tr.nextElementSibling as HTMLElement;
            return { hidden: d.hidden, text: d.textContent ?? "" };
          });
          expect(detail.hidden).toBe(false);
          expect(detail.text).toContain(evil); // the value
          expect(detail.text).toMatch(/Error: computation refuses bad-compute[\s\S]*e2e-app/); // the stack, into the app's file
          // Configuration: the application and the options in effect, set ones marked.
          expect(shown.app.find((r) => r[0] === "workers")?.[1], dump).toBe("2");
          expect(
            shown.app.some((r) => r[0] === "pipeline faulty"),
            dump,
          ).toBe(true);
          expect(
            shown.options.find((r) => r[0] === "--checkpoint-interval"),
            dump,
          ).toEqual(["--checkpoint-interval", "0.2 s", "set"]);
          expect(
            shown.options.find((r) => r[0] === "--fail-fast"),
            dump,
          ).toEqual(["--fail-fast", "off", "default"]);
          // Backlog: the TCP source's bytes pending, now and over time.
          expect(shown.backlogUnits, dump).toEqual(["bytes"]);
          expect(shown.backlog[0]![1], dump).toMatch(/^\d+(\.\d)? (B|KiB|MiB|GiB)$/);
          expect(shown.backlogChart, dump).toBeGreaterThan(0);
          expect(snap.backlog, dump).toEqual([{ unit: "bytes", value: expect.any(Number), partitions: 0 }]);

          // A live page: events that leave out the histories (unchanged) leave the tables as they are.
          const live = await browser.newPage();
          live.on("pageerror", (err) => pageErrors.push(String(err)));
          await live.goto(base, { waitUntil: "load" });
          const counts = () =>
            live.evaluate(() => ({
              uptime: document.getElementById("uptime")!.textContent,
              exceptions: document.querySelectorAll("#exceptions tr.exception").length,
              checkpoints: document.querySelectorAll("#checkpoints tbody tr[data-outcome]").length,
            }));
          const atLoad = await counts();
          // Three events rendered (each moves the uptime on by a second).
          for (let n = 0; n < 3; n++) {
            const before = (await counts()).uptime;
            await live.waitForFunction((u) => document.getElementById("uptime")!.textContent !== u, {}, before);
          }
          const later = await counts();
          expect(later.exceptions, JSON.stringify({ atLoad, later })).toBe(atLoad.exceptions);
          expect(later.checkpoints, JSON.stringify({ atLoad, later })).toBeGreaterThan(0);
          expect(pageErrors).toEqual([]);
        },
        fixture("e2e-app.ts"),
        [
          "--mode",
          "faulty",
          "--resilience-dir",
          mkdtempSync(join(tmpdir(), "wallaroo-dash-")),
          "--checkpoint-interval",
          "0.2",
        ],
      );
    } finally {
      await browser.close();
    }
  });

  it("dashboard: every step of the graph, throughput that moves while traffic flows, the last known state on load", {
    skip: !HAVE_CHROMIUM && process.env.CI !== "true",
    timeout: 90_000,
  }, async () => {
    if (!HAVE_CHROMIUM) throw new Error(`CI=true but ${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
    const { default: puppeteer } = await import("puppeteer-core");
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
    try {
      await withMetricsEngine(2, async (_e, base, sink, inPort) => {
        const page = await browser.newPage();
        await page.setViewport({ width: 1400, height: 1000 });
        const pageErrors: string[] = [];
        page.on("pageerror", (err) => pageErrors.push(String(err)));
        await page.goto(base, { waitUntil: "load" });
        await page.waitForSelector("[data-step]", { timeout: 10_000 });
        const steps = await page.$$eval("[data-step]", (els) => els.map((n) => (n as HTMLElement).dataset.step));
        expect(steps).toEqual(["split into words", "Count Word"]);
        expect(await page.$$eval(".node.source", (els) => els.length)).toBe(1);
        expect(await page.$$eval("[data-sink]", (els) => els.map((n) => (n as HTMLElement).dataset.sink))).toEqual([
          `tcp 127.0.0.1:${sink.port}`,
        ]);
        expect(await page.$eval("#app", (n) => n.textContent)).toBe("Word Count Application");

        const read = () =>
          page.$$eval("[data-step]", (els) =>
            els.map((n) => {
              const r = n.querySelector(".rate") as HTMLElement;
              return { text: r.textContent ?? "", total: Number(r.title.split(" ")[0]) };
            }),
          );
        // Before any traffic: no rate above zero.
        await sleep(2200);
        const idle = await read();
        for (const x of idle) expect(x.text, JSON.stringify(idle)).toMatch(/^(–|0)$/);
        // Traffic for a few seconds on one connection, sampling what the page shows.
        const socket = net.connect(inPort, "127.0.0.1");
        await new Promise((r) => socket.once("connect", r));
        const payload = frame(dataLines());
        let sending = true;
        let sent = 0;
        const pump = (async () => {
          while (sending) {
            if (!socket.write(payload)) await new Promise((r) => socket.once("drain", r));
            sent++;
            await sleep(20);
          }
        })();
        // Sampled until every step's total grew and its rate showed a number, or 30 s passed (the page
        // refreshes every second; under load the engine's first outputs can take longer than a fixed few).
        const samples: { text: string; total: number }[][] = [];
        const shown = (t: string) => /^[1-9][\d.]*[kM]?$/.test(t) || /^\d+\.\d+[kM]$/.test(t);
        const moved = () =>
          samples.length >= 2 &&
          steps.every(
            (_, s) =>
              samples[samples.length - 1][s].total > samples[0][s].total && samples.some((x) => shown(x[s].text)),
          );
        for (const deadline = Date.now() + 30_000; !moved() && Date.now() < deadline; ) {
          await sleep(1100);
          samples.push(await read());
        }
        sending = false;
        await pump;
        socket.end();
        if (process.env.WALLAROO_DASHBOARD_SCREENSHOT) {
          await page.screenshot({ path: process.env.WALLAROO_DASHBOARD_SCREENSHOT, fullPage: true });
        }
        expect(sent).toBeGreaterThan(10);
        for (let s = 0; s < steps.length; s++) {
          const totals = samples.map((x) => x[s].total);
          // The totals behind each step's rate grow while traffic flows...
          expect(totals[totals.length - 1], JSON.stringify(samples)).toBeGreaterThan(totals[0]);
          // ...and the rate shown went from nothing to a number above zero.
          const rates = samples.map((x) => x[s].text);
          expect(rates.some(shown), JSON.stringify(rates)).toBe(true);
          expect(
            rates.some((t) => t !== idle[s].text),
            JSON.stringify({ idle, rates }),
          ).toBe(true);
        }
        expect(pageErrors).toEqual([]);

        // A page opened now shows the last known state on load, before (here: without) any
        // event from /events, which is refused: the graph, the uptime, the state instances
        // the traffic made, the counts behind the rates, and no bare "connecting…".
        const fresh = await browser.newPage();
        await fresh.setRequestInterception(true);
        fresh.on("request", (r) => (new URL(r.url()).pathname === "/events" ? r.abort() : r.continue()));
        fresh.on("pageerror", (err) => pageErrors.push(String(err)));
        await fresh.goto(base, { waitUntil: "load" });
        const shownAtLoad = await fresh.evaluate(() => ({
          app: document.getElementById("app")!.textContent,
          steps: [...document.querySelectorAll("[data-step]")].map((n) => (n as HTMLElement).dataset.step),
          uptime: document.getElementById("uptime")!.textContent,
          states: [...document.querySelectorAll("#states tbody tr")].map((tr) =>
            [...tr.querySelectorAll("td")].map((td) => td.textContent),
          ),
          totals: [...document.querySelectorAll("[data-step] .rate")].map((r) =>
            Number((r as HTMLElement).title.split(" ")[0]),
          ),
          conn: document.getElementById("conn")!.textContent,
        }));
        expect(shownAtLoad.app).toBe("Word Count Application");
        expect(shownAtLoad.steps).toEqual(steps);
        expect(shownAtLoad.uptime, JSON.stringify(shownAtLoad)).toMatch(/^\d+[smh]/);
        expect(shownAtLoad.states.length, JSON.stringify(shownAtLoad)).toBeGreaterThan(0);
        expect(Number(shownAtLoad.states[0]![1]), JSON.stringify(shownAtLoad)).toBeGreaterThan(0);
        for (const [s, total] of shownAtLoad.totals.entries()) {
          expect(total, JSON.stringify(shownAtLoad)).toBeGreaterThanOrEqual(samples[samples.length - 1]![s]!.total);
        }
        expect(shownAtLoad.conn).toMatch(/^as of /);
        expect(pageErrors).toEqual([]);
      });
    } finally {
      await browser.close();
    }
  });
});
