/**
 * State that ends, end to end with real processes, sockets and files
 * (test/fixtures/ttl-app.ts on 2 workers):
 * - DELETE (single and multi form, partitioned and toStateful) removes the instance:
 *   the next message starts fresh, the checkpoint drops it, and kill -9 plus a restart
 *   with the same --resilience-dir does not bring it back.
 * - a ttl removes the instances no message touched for that long and keeps the touched
 *   ones; /metrics and the stats line count what was deleted and expired per state.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fixture, sleep, startEngine, type Engine, type LogLine } from "../helpers/engine.js";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";

const APP = fixture("ttl-app.ts");
const isCommitted = (l: LogLine) => typeof l.msg === "string" && /^checkpoint \d+ committed/.test(l.msg);

let dir: string;
let engines: Engine[] = [];
let collectors: Collector[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-state-end-"));
});
afterEach(async () => {
  for (const e of engines) if (e.child.exitCode === null && e.child.signalCode === null) await e.kill9();
  for (const c of collectors) await c.close();
  engines = [];
  collectors = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Setup {
  ins: [number, number];
  outs: [Collector, Collector];
}

async function setup(): Promise<Setup> {
  const outs: [Collector, Collector] = [await startCollector(), await startCollector()];
  collectors.push(...outs);
  return { ins: [await freePort(), await freePort()], outs };
}

async function run(s: Setup, extra: string[], env: Record<string, string> = {}): Promise<Engine> {
  const e = await startEngine(
    APP,
    [
      "--in",
      `127.0.0.1:${s.ins[0]},127.0.0.1:${s.ins[1]}`,
      "--out",
      `127.0.0.1:${s.outs[0].port},127.0.0.1:${s.outs[1].port}`,
      "--workers",
      "2",
      ...extra,
    ],
    { waitRunning: false, env: { WALLAROO_LOG_LEVEL: "info", ...env } },
  );
  engines.push(e);
  await e.waitForLog((l) => /running on/.test(l.msg ?? ""), 20_000);
  return e;
}

/** `KEY N` outputs per key, in order */
const byKey = (lines: string[]) => {
  const m = new Map<string, string[]>();
  for (const l of lines) {
    const k = l.split(" ")[0];
    m.set(k, [...(m.get(k) ?? []), l]);
  }
  return Object.fromEntries(m);
};

describe("DELETE", () => {
  it("the instance is gone: the next message starts fresh, and kill -9 + restart does not bring it back", async () => {
    const s = await setup();
    const resilience = ["--resilience-dir", dir, "--checkpoint-interval", "0.2"];
    const e1 = await run(s, resilience);
    // First every instance is saved by a checkpoint, then most of them end: without the
    // removals in the store, the restart would bring them back.
    await sendBytes(s.ins[0], frame(["a x", "b x", "a x", "c x", "vip x"]));
    await sendBytes(s.ins[1], frame(["x"]));
    await s.outs[0].waitForLines(5);
    await s.outs[1].waitForLines(2);
    await e1.waitForLog(isCommitted, 10_000, e1.lines.length);
    const mark = e1.lines.length;
    await sendBytes(s.ins[0], frame(["a end", "c end", "vip end"]));
    await sendBytes(s.ins[1], frame(["reset"]));
    await s.outs[0].waitForLines(8);
    await s.outs[1].waitForLines(4);
    expect(byKey(s.outs[0].lines())).toEqual({
      a: ["a 1", "a 2", "a 3 end"],
      b: ["b 1"],
      c: ["c 1", "c 2 end"],
      vip: ["vip 1", "vip 2 end"],
    });
    expect(s.outs[1].lines()).toEqual(["all 1", "all 1 again", "all 2", "all 2 again"]);
    // A checkpoint taken after every output arrived holds every removal: 4 in all (a, c, vip, bursts).
    const last = await e1.waitForLog(isCommitted, 10_000, e1.lines.length);
    const removed = e1.lines
      .slice(mark, e1.lines.indexOf(last) + 1)
      .filter(isCommitted)
      .reduce((n, l) => n + Number(l.removed ?? 0), 0);
    expect(removed).toBe(4);
    await e1.kill9();

    const e2 = await run(s, resilience);
    // Only b's instance is left in the store.
    const restored = await e2.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? ""), 1000);
    expect(restored.instances).toBe(1);
    await sendBytes(s.ins[0], frame(["a x", "b x", "c x", "vip x"]));
    await sendBytes(s.ins[1], frame(["x"]));
    await s.outs[0].waitForLines(12);
    await s.outs[1].waitForLines(6);
    expect(byKey(s.outs[0].lines().slice(8))).toEqual({ a: ["a 1"], b: ["b 2"], c: ["c 1"], vip: ["vip 1"] });
    expect(s.outs[1].lines().slice(4)).toEqual(["all 1", "all 1 again"]);
    expect((await e2.stop()).code).toBe(0);
  }, 90_000);
});

/** `name{labels} value` lines of the Prometheus text format */
async function scrape(base: string): Promise<Map<string, number>> {
  const m = new Map<string, number>();
  for (const l of (await (await fetch(`${base}metrics`)).text()).split("\n")) {
    if (l.startsWith("#") || l.trim() === "") continue;
    const at = l.lastIndexOf(" ");
    m.set(l.slice(0, at), Number(l.slice(at + 1)));
  }
  return m;
}

describe("ttl", () => {
  it("expires untouched instances, keeps touched ones, and counts them in /metrics and the stats line", async () => {
    const s = await setup();
    const ttlMs = 2000;
    const e = await run(s, ["--ttl-ms", String(ttlMs), "--metrics-port", "0", "--stats-interval", "0.3"]);
    const base = String((await e.waitForLog((l) => typeof l.dashboard === "string", 10_000)).dashboard);
    await sendBytes(s.ins[0], frame(["a x", "c x", "b x", "d end"]));
    await s.outs[0].waitForLines(4);
    // b is touched every 100 ms (a twentieth of its ttl: it would take a stall of the engine or
    // of this test of nearly 2 s to expire it) until a and c have expired.
    const keeper = net.connect(s.ins[0], "127.0.0.1");
    await new Promise((r) => keeper.once("connect", r));
    const expired = 'wallaroo_state_instances_expired_total{state="sessions"}';
    let touches = 0;
    let m = await scrape(base);
    const deadline = Date.now() + 30_000;
    while ((m.get(expired) ?? 0) < 2 && Date.now() < deadline) {
      keeper.write(frame(["b x"]));
      touches++;
      await sleep(100);
      m = await scrape(base);
    }
    keeper.end();
    expect(m.get(expired)).toBe(2);
    expect(m.get('wallaroo_state_instances_deleted_total{state="sessions"}')).toBe(1);
    expect(m.get('wallaroo_state_instances_expired_total{state="bursts"}')).toBe(0);
    await s.outs[0].waitForLines(4 + touches);
    // a starts fresh; b kept counting through every touch.
    await sendBytes(s.ins[0], frame(["a x", "b x"]));
    await s.outs[0].waitForLines(6 + touches);
    const got = byKey(s.outs[0].lines());
    expect(got.a).toEqual(["a 1", "a 1"]);
    expect(got.c).toEqual(["c 1"]);
    expect(got.b.at(-1)).toBe(`b ${touches + 2}`);
    const line = await e.waitForLog(
      (l) => l.stats !== undefined && /state "sessions": 1 deleted, 2 expired \(total\)/.test(String(l.msg)),
      10_000,
    );
    expect((line.stats as { states: unknown }).states).toEqual({ sessions: { deleted: 1, expired: 2 } });
    expect((await e.stop()).code).toBe(0);
  }, 90_000);
});
