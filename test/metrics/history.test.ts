/**
 * The dashboard's histories (src/metrics/history.ts) stay bounded whatever the application
 * throws, count what they do not list, and the configuration view never shows a secret.
 */
import { describe, expect, it } from "vitest";
import {
  CheckpointHistory,
  ERROR_STACK_LINES,
  ERROR_VALUE_CHARS,
  ErrorBatch,
  ErrorHistory,
  valuePreview,
} from "../../src/metrics/history.js";
import { ENGINE_FLAGS, engineConfiguration, type EngineFlag } from "../../src/runtime/options.js";

describe("exception history", () => {
  it("a worker's batch counts repeats of one step + message, keeps the stack and the value, cut to size", () => {
    const b = new ErrorBatch(3, 2);
    // More frames than V8's default 10, so that the cut shows.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 50;
    const deep = (n: number): Error => (n === 0 ? new Error("boom") : deep(n - 1));
    const deepErr = deep(40);
    Error.stackTraceLimit = limit;
    const big = Buffer.alloc(1_000_000, "x");
    b.add("step a", deepErr, "boom", big);
    b.add("step a", deepErr, "boom", undefined, { n: 1 });
    b.add("step b", "not an Error", "not an Error");
    b.add("step c", new Error("third kind"), "third kind"); // beyond the batch's 2 kinds
    const got = b.take()!;
    expect(got.unlisted).toBe(1);
    expect(got.errors.map((e) => [e.where, e.count, e.worker])).toEqual([
      ["step a", 2, 3],
      ["step b", 1, 3],
    ]);
    const a = got.errors[0];
    expect(a.stack.split("\n").length).toBe(ERROR_STACK_LINES);
    expect(a.stack).toMatch(/^Error: boom\n/);
    expect(a.value).toMatch(/^x{200}… \(\d+ more characters\) \(\+\d+ bytes\)$/); // the first occurrence's
    expect(got.errors[1].stack).toBe("");
    expect(b.take()).toBeUndefined();
    // A megabyte payload: its preview is cut, and says how much was left out.
    b.add("step a", new Error("x"), "x", big);
    const v = b.take()!.errors[0].value!;
    expect(v.length).toBeLessThan(ERROR_VALUE_CHARS + 100);
    expect(v).toMatch(/more characters\) \(\+\d+ bytes\)$/);
  });

  it("a value that JSON cannot hold still previews, and a bigint shows", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(valuePreview(undefined, cyclic)).toBe("[object Object]");
    expect(valuePreview(undefined, { big: 10n })).toBe('{"big":"10n"}');
    expect(valuePreview(undefined, undefined)).toBeNull();
  });

  it("keeps the last N kinds, the last seen first, with counts and workers; evicted counts are not lost", () => {
    const h = new ErrorHistory(3);
    const e = (where: string, message: string, worker: number, count: number, at: number) => ({
      at,
      worker,
      where,
      message,
      stack: "",
      value: null,
      count,
    });
    h.add([e("s", "m1", 0, 2, 1), e("s", "m2", 0, 1, 2)]);
    h.add([e("s", "m1", 1, 5, 3)], 4);
    h.add([e("s", "m3", 0, 1, 4), e("s", "m4", 0, 1, 5)]); // m2 (least recently seen) goes
    expect(h.list().map((r) => [r.message, r.count, r.workers, r.firstAt, r.lastAt])).toEqual([
      ["m4", 1, [0], 5, 5],
      ["m3", 1, [0], 4, 4],
      ["m1", 7, [0, 1], 1, 3],
    ]);
    expect(h.unlisted).toBe(4 + 1);
  });
});

describe("checkpoint history", () => {
  it("keeps the last N, the newest first, merges a run of unchanged ones, and says why one failed", () => {
    const h = new CheckpointHistory(3);
    const st = (id: number) => ({ checkpoint: id, instances: 5, removed: 1, bytes: 100, pauseMs: 2, compacted: false });
    h.add("committed", st(1), 4, undefined, 10);
    h.add("unchanged", null, 1, undefined, 11);
    h.add("unchanged", null, 1, undefined, 12);
    h.add("abandoned", null, 50, "a source could not pause within 50 ms", 13);
    h.add("committed", st(2), 3, undefined, 14);
    expect(h.list().map((r) => [r.outcome, r.id, r.count, r.at, r.reason])).toEqual([
      ["committed", 2, 1, 14, null],
      ["abandoned", null, 1, 13, "a source could not pause within 50 ms"],
      ["unchanged", null, 2, 12, null],
    ]);
  });
});

describe("configuration view", () => {
  it("lists every engine option in effect, default or set", () => {
    const c = engineConfiguration({ checkpointInterval: 0.5, failFast: false, ringBytes: 65536 }, { workers: 2 });
    expect(c.map((o) => o.flag)).toEqual(ENGINE_FLAGS.map((f) => f.flag));
    const by = new Map(c.map((o) => [o.flag, o]));
    expect(by.get("--workers")).toEqual({ flag: "--workers", value: "2", isDefault: true });
    expect(by.get("--checkpoint-interval")).toEqual({
      flag: "--checkpoint-interval",
      value: "0.5 s",
      isDefault: false,
    });
    expect(by.get("--fail-fast")).toEqual({ flag: "--fail-fast", value: "off", isDefault: true });
    expect(by.get("--ring-bytes")!.value).toBe("65536");
  });

  it("never shows a flag marked secret, neither its value nor that it was given", () => {
    const flags: EngineFlag[] = [
      ...(ENGINE_FLAGS as readonly EngineFlag[]),
      {
        flag: "--kafka-sasl-password",
        key: "kafkaSaslPassword",
        type: "string",
        defaultText: "none",
        help: "a future secret",
        secret: true,
      },
    ];
    const c = engineConfiguration({ kafkaSaslPassword: "hunter2" } as never, {}, flags);
    expect(JSON.stringify(c)).not.toContain("hunter2");
    expect(c.some((o) => o.flag === "--kafka-sasl-password")).toBe(false);
    expect(c.length).toBe(ENGINE_FLAGS.length);
  });
});
