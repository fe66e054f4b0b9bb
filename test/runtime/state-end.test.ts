/**
 * The step runner's side of state that ends (test/fixtures/ttl-app.ts), with the
 * engine's own tick arithmetic (not the test driver's exact clock): DELETE and ttl
 * remove instances and count them per state, a removal reaches the next checkpoint as
 * a removal (takeDirty hands null), an instance never expires before its ttl and at
 * most a tick after it when a pass runs, and expiry is incremental: a call looks at no
 * more entries than its budget, and a new pass waits for a sixteenth of the ttl.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadAppModule, setupApplication } from "../../dist/runtime/loader.js";
import { compilePlan } from "../../dist/topology/plan.js";
import { createSerde } from "../../dist/transport/serde.js";
import { Executor } from "../../dist/runtime/executor.js";
import { MemoryOutbox } from "../../dist/engine/outbox.js";
import { SOURCE_FRAMED, tag } from "../../dist/transport/tags.js";
import { frame } from "../helpers/net.js";

const APP = fileURLToPath(new URL("../fixtures/ttl-app.ts", import.meta.url));
const TTL = 6400; // a tick of ttl / 64 = 100 ms

async function executor(args: string[]) {
  const url = pathToFileURL(APP).href;
  const mod = await loadAppModule(url);
  const plan = compilePlan(setupApplication(mod, args, url), 1);
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
  );
  const errors: string[] = [];
  const sinks = [new MemoryOutbox(), new MemoryOutbox()];
  const e = new Executor(plan, 0, serde, [null], sinks, (where, err) => errors.push(`${where}: ${String(err)}`));
  e.trackDirty();
  const handler = e.handler();
  const send = (source: number, ...lines: string[]) => {
    const run = frame(lines);
    handler(tag(SOURCE_FRAMED, source), run, 0, run.length);
  };
  const live = (key: string) => e.peekInstance(0, key) !== undefined;
  const dirty = () => {
    const out: string[] = [];
    e.takeDirty((state, key, inst) => out.push(`${state}:${String(key)}:${inst === null ? "removed" : "saved"}`));
    return out.sort();
  };
  return { e, send, live, dirty, errors };
}

describe("DELETE", () => {
  it("removes the instance, counts it, and hands the removal to the next checkpoint", async () => {
    const { e, send, live, dirty, errors } = await executor([]);
    send(0, "a x", "b x", "a end");
    send(1, "x", "reset");
    expect(errors).toEqual([]);
    expect(live("a")).toBe(false);
    expect(live("b")).toBe(true);
    expect(e.peekInstance(1, 0)).toBeUndefined();
    expect(Array.from(e.deletedCount)).toEqual([1, 1]);
    expect(Array.from(e.expiredCount)).toEqual([0, 0]);
    expect(dirty()).toEqual(["0:a:removed", "0:b:saved", "1:0:removed"]);
    send(0, "a x");
    expect(dirty()).toEqual(["0:a:saved"]); // a fresh instance, saved
    expect(e.hasTtl).toBe(false);
  });
});

describe("ttl (engine ticks)", () => {
  it("never removes an instance before its ttl; a full pass removes it within a tick after", async () => {
    const { e, send, live, dirty } = await executor(["--ttl-ms", String(TTL)]);
    expect(e.hasTtl).toBe(true);
    e.setTime(1050); // tick 10: a touch now is stamped as "before 1100"
    send(0, "a x", "b x");
    e.setTime(3000);
    send(0, "b x");
    dirty();
    expect(e.expire(1050 + TTL + 49, Number.POSITIVE_INFINITY, true)).toBe(0); // a could have been touched at 1099
    expect(live("a")).toBe(true);
    expect(e.expire(1100 + TTL, Number.POSITIVE_INFINITY, true)).toBe(1);
    expect(live("a")).toBe(false);
    expect(live("b")).toBe(true);
    expect(Array.from(e.expiredCount)).toEqual([1, 0]);
    expect(dirty()).toEqual(["0:a:removed"]);
    expect(e.expire(3100 + TTL, Number.POSITIVE_INFINITY, true)).toBe(1);
    expect(live("b")).toBe(false);
    send(0, "a x", "vip x"); // fresh instances, touched at the clock's latest reading
    expect(e.expire(3100 + TTL + 1, Number.POSITIVE_INFINITY, true)).toBe(0);
    expect(live("vip")).toBe(true);
  });

  it("random touches: every removal is at least a ttl after the last touch, every keeper less than a ttl plus two ticks", async () => {
    const { e, send, live } = await executor(["--ttl-ms", String(TTL)]);
    let seed = 7;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const last = new Map<string, number>();
    let now = 0;
    for (let round = 0; round < 400; round++) {
      now += rnd(700);
      e.setTime(now);
      const k = `k${rnd(40)}`;
      send(0, `${k} x`);
      last.set(k, now);
      if (round % 7 === 0) {
        e.expire(now, Number.POSITIVE_INFINITY, true);
        for (const [key, t] of last) {
          if (live(key)) expect(now - t).toBeLessThan(TTL + 200);
          else {
            expect(now - t).toBeGreaterThanOrEqual(TTL);
            last.delete(key);
          }
        }
      }
    }
    expect(e.expiredCount[0]).toBeGreaterThan(0);
  });

  it("incremental: a call looks at no more entries than its budget; a new pass waits ttl / 16", async () => {
    const { e, send, live } = await executor(["--ttl-ms", String(TTL)]);
    e.setTime(0);
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    send(0, ...keys.map((k) => `${k} x`));
    const now = 2 * TTL;
    let calls = 0;
    let removed = 0;
    do {
      const r = e.expire(now, 10);
      expect(r).toBeLessThanOrEqual(10);
      removed += r;
      calls++;
    } while (e.expiring);
    expect(removed).toBe(100);
    expect(calls).toBeGreaterThanOrEqual(10);
    // The next pass starts only ttl / 16 after the last one started (seen with a budget of
    // one entry: a pass that started is still going after the call).
    e.setTime(now);
    send(0, "late1 x", "late2 x");
    expect(e.expire(now + TTL / 16 - 1, 1)).toBe(0);
    expect(e.expiring).toBe(false);
    expect(e.expire(now + TTL / 16, 1)).toBe(0);
    expect(e.expiring).toBe(true);
    while (e.expiring) expect(e.expire(now + TTL / 16, 1)).toBe(0); // not due yet
    expect(live("late1")).toBe(true);
    expect(e.expire(now + TTL + 200, 1000)).toBe(2);
    expect(live("late1") || live("late2")).toBe(false);
  });

  it("a restored instance of a ttl state counts as touched when it is restored", async () => {
    const { e, live } = await executor(["--ttl-ms", String(TTL)]);
    e.setTime(5000);
    e.restore([[0, "r", { n: 3 }]]);
    expect(e.expire(5000 + TTL - 1, Number.POSITIVE_INFINITY, true)).toBe(0);
    expect(live("r")).toBe(true);
    expect(e.expire(5100 + TTL, Number.POSITIVE_INFINITY, true)).toBe(1);
  });
});
