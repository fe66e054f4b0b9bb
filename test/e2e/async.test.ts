/**
 * Async steps end to end (engine as a CLI child process, real sockets on loopback, real
 * files): test/fixtures/async-app.ts, an async lookup then an async state computation per
 * key, with random latencies. Order and exact counts at concurrency 1, 8 and 64 on 1 and 2
 * workers, with the calls in flight per worker never above the limit (a counter in the
 * app, not timing); unordered mode; a stalled lookup stopping the input; a rejected or
 * timed-out call counted and dead-lettered, its message alone dropped;
 * kill -9 with --resilience-dir while calls are in flight, and the restored counts are a
 * consistent prefix of the input (a checkpoint waits for the calls in flight).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import { fixture, sleep, startEngine, type Engine } from "../helpers/engine.js";

const APP = fixture("async-app.ts");
const KEYS = ["a", "b", "c", "d", "e", "f", "g"];
const input = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `${from + i} ${KEYS[(from + i) % KEYS.length]}`);
const parse = (l: string) => {
  const [seq, key, n, max, rest] = l.trim().split(" ");
  return { seq: Number(seq), key, n: Number(n), max: Number(max), rest };
};

let engines: Engine[] = [];
let collectors: Collector[] = [];
let dirs: string[] = [];
afterEach(async () => {
  for (const e of engines) e.kill();
  for (const c of collectors) await c.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  engines = [];
  collectors = [];
  dirs = [];
});

async function start(inPort: number, outPort: number, args: string[]): Promise<Engine> {
  const e = await startEngine(APP, ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${outPort}`, ...args], {
    env: { WALLAROO_LOG_LEVEL: "info" },
  });
  engines.push(e);
  return e;
}

describe("async steps in the engine", () => {
  for (const workers of [1, 2])
    for (const concurrency of [1, 8, 64])
      it(`order per key and exact counts; in flight <= ${concurrency} per worker (${workers} worker(s))`, async () => {
        const out = await startCollector();
        collectors.push(out);
        const inPort = await freePort();
        const e = await start(inPort, out.port, ["--workers", String(workers), "--concurrency", String(concurrency)]);
        const msgs = input(0, 400);
        await sendBytes(inPort, frame(msgs));
        const lines = (await out.waitForLines(msgs.length, 60_000)).map(parse);
        expect(lines.length).toBe(msgs.length);
        for (const k of KEYS) {
          const mine = lines.filter((o) => o.key === k);
          expect(mine.map((o) => o.seq)).toEqual([...mine.map((o) => o.seq)].sort((x, y) => x - y));
          expect(mine.map((o) => o.n)).toEqual(mine.map((_, i) => i + 1));
        }
        // One connection on one worker: the whole output in input order.
        if (workers === 1) expect(lines.map((o) => o.seq)).toEqual(msgs.map((_, i) => i));
        const most = Math.max(...lines.map((o) => o.max));
        expect(most).toBeLessThanOrEqual(concurrency);
        // The limit was used (no accidental serialization), where latency let calls overlap.
        if (concurrency > 1) expect(most).toBeGreaterThan(1);
        expect((await e.stop()).code).toBe(0);
      }, 90_000);

  it("a stalled lookup stops the input: calls in flight stay at the limit, the worker decodes no more than its rings hold", async () => {
    const out = await startCollector();
    collectors.push(out);
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-async-gate-"));
    dirs.push(dir);
    const gate = join(dir, "open");
    const inPort = await freePort();
    const e = await start(inPort, out.port, [
      "--workers",
      "1",
      "--concurrency",
      "4",
      "--ring-bytes",
      "65536",
      "--gate",
      gate,
    ]);
    // 5000 messages of ~1 KB (5 MB): far more than the 64 KiB source ring and one run.
    const pad = "x".repeat(1000);
    const msgs = input(0, 5000).map((m) => `${m} ${pad}`);
    const sending = sendBytes(inPort, frame(msgs));
    // Time for a worker that kept reading to read all of it (if backpressure were broken).
    await sleep(1500);
    writeFileSync(gate, "");
    await sending;
    const lines = (await out.waitForLines(msgs.length, 60_000)).map(parse);
    expect(lines.length).toBe(msgs.length);
    expect(Math.max(...lines.map((o) => o.max))).toBe(4);
    // What the worker had decoded while the lookups stalled: the ring's worth and one run,
    // not the 5000 messages the sender was trying to send.
    const atOpen = Number(lines[lines.length - 1].rest);
    expect(atOpen).toBeGreaterThan(0);
    expect(atOpen).toBeLessThan(1000);
    expect((await e.stop()).code).toBe(0);
  }, 90_000);

  it("unordered on 2 workers: every message once, per-key order and counts exact", async () => {
    const out = await startCollector();
    collectors.push(out);
    const inPort = await freePort();
    const e = await start(inPort, out.port, ["--workers", "2", "--concurrency", "8", "--unordered"]);
    const msgs = input(0, 400);
    await sendBytes(inPort, frame(msgs));
    const lines = (await out.waitForLines(msgs.length, 60_000)).map(parse);
    expect(lines.map((o) => o.seq).sort((x, y) => x - y)).toEqual(msgs.map((_, i) => i));
    for (const k of KEYS) {
      const mine = lines.filter((o) => o.key === k);
      expect(mine.map((o) => o.n)).toEqual(mine.map((_, i) => i + 1));
    }
    expect(Math.max(...lines.map((o) => o.max))).toBeLessThanOrEqual(8);
    expect((await e.stop()).code).toBe(0);
  }, 90_000);

  it("a rejected call, or one past its timeout, is counted and dead-lettered; its message alone is dropped", async () => {
    const out = await startCollector();
    collectors.push(out);
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-async-dl-"));
    dirs.push(dir);
    const inPort = await freePort();
    const e = await start(inPort, out.port, ["--workers", "2", "--dead-letter", dir, "--timeout", "300"]);
    await sendBytes(inPort, frame(["0 a", "1 fail", "2 b", "3 fail", "4 a", "5 hang", "6 c"]));
    const lines = (await out.waitForLines(4, 30_000)).map(parse);
    expect(lines.map((o) => o.seq).sort()).toEqual([0, 2, 4, 6]);
    const exit = await e.stop();
    const records = readdirSync(dir)
      .filter((f) => f.endsWith(".jsonl"))
      .flatMap((f) =>
        readFileSync(join(dir, f), "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l)),
      );
    expect(records.length).toBe(3);
    for (const r of records) expect(r.step).toBe('computation "lookup"');
    expect(records.map((r) => r.error).sort()).toEqual([
      expect.stringMatching(/lookup refuses 1/),
      expect.stringMatching(/lookup refuses 3/),
      expect.stringMatching(/did not settle within its timeout of 300 ms/),
    ]);
    // counted: the stop says how many were dropped, and where they are (all of them written: exit 0)
    expect(exit, e.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
    expect(e.stderr()).toContain(`3 message(s) dropped on errors in user code; each is in ${dir}/worker-N.jsonl`);
  }, 60_000);

  it("kill -9 with calls in flight: the restart restores a consistent prefix, nothing counted twice", async () => {
    const out = await startCollector();
    collectors.push(out);
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-async-resil-"));
    dirs.push(dir);
    const inPort = await freePort();
    const args = [
      "--workers",
      "2",
      "--resilience-dir",
      dir,
      "--checkpoint-interval",
      "0.1",
      "--concurrency",
      "16",
      "--max-delay",
      "20",
    ];
    const isCommitted = (l: Record<string, unknown>) =>
      typeof l.msg === "string" && /^checkpoint \d+ committed/.test(l.msg);
    const e1 = await start(inPort, out.port, args);
    const first = input(0, 200);
    await sendBytes(inPort, frame(first));
    await out.waitForLines(first.length, 60_000);
    await e1.waitForLog(isCommitted, 20_000, e1.lines.length);
    // Slow calls in flight when it dies: some of the second batch's outputs arrived, not all.
    const second = input(first.length, 400);
    await sendBytes(inPort, frame(second));
    await out.waitForLines(first.length + 20, 60_000);
    await e1.kill9();
    const before = out.lines().length;
    expect(before).toBeLessThan(first.length + second.length);

    const e2 = await start(inPort, out.port, args);
    const probe = KEYS.map((k, i) => `${100000 + i} ${k}`);
    await sendBytes(inPort, frame(probe));
    const after = (await out.waitForLines(before + probe.length, 60_000)).slice(before).map(parse);
    const restored = new Map(after.map((o) => [o.key, o.n - 1]));
    // The restored counts are those of the first k messages, for one k at least the first
    // batch: a checkpoint holds every call it saw complete, none half done.
    const all = [...first, ...second].map((l) => l.split(" ")[1]);
    const counts = new Map<string, number>();
    let match = -1;
    for (let k = 0; k <= all.length; k++) {
      if (k > 0) counts.set(all[k - 1], (counts.get(all[k - 1]) ?? 0) + 1);
      if (k >= first.length && KEYS.every((key) => (counts.get(key) ?? 0) === restored.get(key))) {
        match = k;
        break;
      }
    }
    expect(match, `restored ${JSON.stringify([...restored])}`).toBeGreaterThanOrEqual(first.length);
    expect((await e2.stop()).code).toBe(0);
  }, 120_000);
});
