/**
 * How a worker gathers TCP sink output into frames for the sink's ring
 * (Executor.writeBytes): strings are concatenated and encoded in bulk, Buffers and
 * Uint8Arrays copied, big outputs sent alone. Whatever the mix, the byte stream
 * the sink gets must be exactly the outputs' bytes in order, each frame at most
 * 64 KiB unless it is one output on its own. Also: keys of a partitioned state
 * end up on the worker ownerOf names, with the instance found again there.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadAppModule, setupApplication } from "../../dist/runtime/loader.js";
import { compilePlan } from "../../dist/topology/plan.js";
import { createSerde } from "../../dist/transport/serde.js";
import { Executor } from "../../dist/runtime/executor.js";
import { MemoryOutbox } from "../../dist/engine/outbox.js";
import { SOURCE_FRAMED, tag } from "../../dist/transport/tags.js";
import { createTestDriver } from "../../dist/testing/index.js";
import { frame } from "../helpers/net.js";

const APP = fileURLToPath(new URL("../fixtures/output-kinds-app.ts", import.meta.url));
const FRAME_MAX = 64 * 1024;

async function gatheringExecutor() {
  const url = pathToFileURL(APP).href;
  const mod = await loadAppModule(url);
  const plan = compilePlan(setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"], url), 1);
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
  );
  const sink = new MemoryOutbox();
  const errors: string[] = [];
  const executor = new Executor(plan, 0, serde, [null], [sink], (where, err) =>
    errors.push(`${where}: ${(err as Error).message}`),
  );
  const encode = (mod as { encodeOutput: (s: string) => unknown }).encodeOutput;
  return { executor, handler: executor.handler(), sink, errors, encode };
}

/** A deterministic pseudo-random sequence of payloads of every kind. */
function payloads(n: number, seed: number): string[] {
  let x = seed;
  const rnd = (m: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % m;
  };
  const texts = ["word => 1\n", "é", "€uro", "😀 emoji", "lone \ud800 surrogate", "", "x".repeat(200), "ü".repeat(40)];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rnd(100);
    const t = texts[rnd(texts.length)];
    if (r < 55) out.push(`s ${t}${i}`);
    else if (r < 70) out.push(`b ${t}${i}`);
    else if (r < 80) out.push(`u ${t}`);
    else if (r < 83) out.push(`S ${rnd(30000)} ${["a", "é", "€", "😀"][rnd(4)]}`);
    else if (r < 85) out.push(`B ${rnd(70000)}`);
    else if (r < 86) out.push("n");
    else out.push(`s ${"y".repeat(rnd(5000))}\n`);
  }
  return out;
}

describe("gathered TCP sink output", () => {
  it("is the outputs' bytes, in order, for any mix of strings, Buffers, Uint8Arrays and big outputs", async () => {
    const { executor, handler, sink, errors, encode } = await gatheringExecutor();
    const input = payloads(3000, 7);
    const expected: Buffer[] = [];
    const sizes: number[] = [];
    let bad = 0;
    for (const p of input) {
      const e = encode(p);
      if (typeof e === "string") expected.push(Buffer.from(e, "utf8"));
      else if (e instanceof Uint8Array) expected.push(Buffer.from(e));
      else {
        bad++;
        continue;
      }
      sizes.push(expected[expected.length - 1].length);
    }
    // Runs of 1-40 messages, with flushes (what the worker does once per batch) now and then.
    const got: Buffer[] = [];
    const frames: number[] = [];
    const drain = () =>
      sink.drain((_t, bytes, off, len) => {
        got.push(Buffer.from(bytes.subarray(off, off + len)));
        frames.push(len);
      });
    for (let i = 0, r = 0; i < input.length; r++) {
      const n = 1 + ((r * 7) % 40);
      const run = frame(input.slice(i, i + n));
      handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
      i += n;
      if (r % 3 === 0) executor.flushSinks();
      drain();
    }
    executor.flushSinks();
    drain();
    expect(errors.length).toBe(bad);
    for (const e of errors)
      expect(e).toMatch(/encoder of sink .*must return a Buffer, Uint8Array or string, got number 42/);
    expect(executor.outCount[0]).toBe(expected.length);
    const stream = Buffer.concat(got);
    const want = Buffer.concat(expected);
    expect(stream.length).toBe(want.length);
    expect(stream.equals(want)).toBe(true);
    // A frame over 64 KiB is a single output sent alone.
    const big = new Set(sizes.filter((s) => s > FRAME_MAX));
    for (const f of frames) if (f > FRAME_MAX) expect(big.has(f)).toBe(true);
    // and the stream was gathered, not sent output by output
    expect(frames.length).toBeLessThan(expected.length / 10);
  });

  it("short string outputs are encoded in bulk, not one encode call each, also after the first buffer filled", async () => {
    const { executor, handler, sink } = await gatheringExecutor();
    // 20,000 outputs of ~12 bytes: ~240 KB, several gather buffers' worth.
    const input = Array.from({ length: 20000 }, (_, i) => `s word${i % 97} => ${i}\n`);
    const runs: Buffer[] = [];
    for (let i = 0; i < input.length; i += 500) runs.push(frame(input.slice(i, i + 500)));
    const got: Buffer[] = [];
    // Built before counting: Buffer.from(string) (frame) uses utf8Write too.
    const want = Buffer.from(input.map((p) => p.slice(2)).join(""), "utf8");
    const proto = Buffer.prototype as unknown as { utf8Write: (...a: unknown[]) => number };
    const original = proto.utf8Write;
    let calls = 0;
    proto.utf8Write = function (this: Buffer, ...a: unknown[]) {
      calls++;
      return original.apply(this, a);
    };
    try {
      for (const run of runs) handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
      executor.flushSinks();
    } finally {
      proto.utf8Write = original;
    }
    sink.drain((_t, bytes, off, len) => {
      got.push(Buffer.from(bytes.subarray(off, off + len)));
    });
    expect(Buffer.concat(got).equals(want)).toBe(true);
    // A 64 KiB buffer takes a handful of encode calls (each fills a third of what is
    // left, see writeBytes): ~4 buffers here. One call per output would be ~20,000.
    expect(calls).toBeGreaterThan(0);
    expect(calls).toBeLessThan(100);
  });

  it("a string output right after gathered Buffers (and the reverse) keeps its place", async () => {
    const { executor, handler, sink } = await gatheringExecutor();
    const input = ["s one,", "b two,", "s three,", "u four,", "s five,", "S 3 é", "b ,six"];
    const run = frame(input);
    handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    executor.flushSinks();
    const got: Buffer[] = [];
    sink.drain((_t, bytes, off, len) => {
      got.push(Buffer.from(bytes.subarray(off, off + len)));
    });
    expect(Buffer.concat(got).toString("utf8")).toBe("one,two,three,four,five,ééé,six");
  });

  it("on 3 workers, every key's instance is on the worker that owns it, and counts every message of that key", async () => {
    const driver = await createTestDriver({
      module: APP,
      args: ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"],
      workers: 3,
    });
    try {
      const keys = "sbuSBxyzqwertABC";
      const input: string[] = [];
      for (let i = 0; i < 400; i++) input.push(`${keys[(i * 5) % keys.length]} ${i}`);
      await driver.pipeInput("kinds", ...input.filter((p) => p[0] === "s" || p[0] === "b" || p[0] === "u"));
      for (const k of "sbu") {
        const n = input.filter((p) => p[0] === k).length;
        expect((await driver.state<{ n: number }>("seen", k))?.n).toBe(n);
      }
      expect(await driver.state("seen", "x")).toBeUndefined();
    } finally {
      await driver.close();
    }
  });
});

describe("payloads of a TCP source's run", () => {
  it("are Buffers to the decoder in every way user code can see, and serialize as Buffers", async () => {
    const driver = await createTestDriver({
      module: fileURLToPath(new URL("../fixtures/payload-app.ts", import.meta.url)),
      args: ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"],
      workers: 2,
    });
    try {
      const input = Array.from({ length: 50 }, (_, i) =>
        Buffer.from(Array.from({ length: i }, (_, j) => (i * 31 + j) & 0xff)),
      );
      await driver.pipeInput("payloads", ...input);
      const lines = Buffer.concat(driver.readOutput(0)).toString("utf8").trim().split("\n");
      expect(lines.length).toBe(input.length);
      // the order across the two workers' state instances may differ: compare as sets
      expect(lines.sort()).toEqual(input.map((b) => `ok ${b.toString("hex")} true`).sort());
    } finally {
      await driver.close();
    }
  });
});
