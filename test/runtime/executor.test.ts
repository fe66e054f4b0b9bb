/**
 * The step runner on its own, fed frames as a worker's rings would feed it, its
 * outputs written to in-memory outboxes: what --fail-fast relies on (halt()
 * stops the rest of the batch, which an engine-level test cannot show without a
 * race against the coordinator's kill), and that a TCP source's run of messages
 * is decoded message by message.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadAppModule, setupApplication } from "../../dist/runtime/loader.js";
import { compilePlan, ownerOf } from "../../dist/topology/plan.js";
import { createSerde } from "../../dist/transport/serde.js";
import { Executor } from "../../dist/runtime/executor.js";
import { MemoryOutbox } from "../../dist/engine/outbox.js";
import { kindOf, SOURCE_FRAMED, STEP, STEP_BATCH, tag } from "../../dist/transport/tags.js";
import { frame } from "../helpers/net.js";

const APP = fileURLToPath(new URL("../fixtures/e2e-app.ts", import.meta.url));

async function faultyExecutor(onError: (e: Executor, where: string, err: unknown) => void) {
  const url = pathToFileURL(APP).href;
  const mod = await loadAppModule(url);
  const plan = compilePlan(
    setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2", "--mode", "faulty"], url),
    1,
  );
  const serde = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
  );
  const sink = new MemoryOutbox();
  const executor: Executor = new Executor(plan, 0, serde, [null], [sink], (where, err) =>
    onError(executor, where, err),
  );
  const outputs = () => {
    executor.flushSinks();
    const out: string[] = [];
    sink.drain((_t, bytes, off, len) => {
      out.push(
        ...Buffer.from(bytes.subarray(off, off + len))
          .toString("utf8")
          .split("\n")
          .filter(Boolean),
      );
    });
    return out;
  };
  return { executor, handler: executor.handler(), outputs };
}

describe("Executor", () => {
  const run = frame(["ok 0 k0", "ok 1 k1", "bad-compute 2 k2", "ok 3 k0", "ok 4 k1"]);

  it("without --fail-fast: the failing message is dropped and reported, the rest of the run goes on", async () => {
    const errors: string[] = [];
    const { executor, handler, outputs } = await faultyExecutor((_e, where, err) =>
      errors.push(`${where}: ${(err as Error).message}`),
    );
    handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    expect(outputs()).toEqual(["ok 0 k0 #1", "ok 1 k1 #1", "ok 3 k0 #2", "ok 4 k1 #2"]);
    expect(errors).toEqual(['computation "faulty compute" of pipeline "faulty": computation refuses bad-compute 2 k2']);
    expect(executor.errorCount).toBe(1);
  });

  it("halt() from the error report (what the worker does under --fail-fast): nothing after the failing message is processed", async () => {
    const { executor, handler, outputs } = await faultyExecutor((e) => e.halt());
    handler(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    // a later frame of the same batch is not processed either
    const more = frame(["ok 5 k0"]);
    handler(tag(SOURCE_FRAMED, 0), more, 0, more.length);
    expect(outputs()).toEqual(["ok 0 k0 #1", "ok 1 k1 #1"]);
    expect(executor.halted).toBe(true);
  });
});

/**
 * Two executors of a 2-worker plan wired through in-memory outboxes, with output
 * gathering on (what the engine does): messages whose key lives on the other worker
 * travel in STEP_BATCH frames, one per batch, flushed by flushPeers().
 */
describe("Executor: messages to another worker are batched", () => {
  async function twoWorkers() {
    const url = pathToFileURL(APP).href;
    const mod = await loadAppModule(url);
    const plan = compilePlan(
      setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2", "--mode", "faulty"], url),
      2,
    );
    const serde = createSerde(
      mod,
      plan.states.map((s) => s.spec.stateClass),
    );
    const errors: string[] = [];
    const peerOut = [new MemoryOutbox(), new MemoryOutbox()]; // [from 0 to 1, from 1 to 0]
    const sinks = [new MemoryOutbox(), new MemoryOutbox()];
    const executors = [0, 1].map(
      (w) =>
        new Executor(
          plan,
          w,
          serde,
          w === 0 ? [null, peerOut[0]] : [peerOut[1], null],
          [sinks[w]],
          (where, err) => errors.push(`${where}: ${(err as Error).message}`),
          undefined,
          true,
        ),
    );
    const state = plan.states[0];
    const ownerOfKey = (k: string) => ownerOf(state, k, 2);
    const outputs = (w: number) => {
      executors[w].flushSinks();
      const out: string[] = [];
      sinks[w].drain((_t, bytes, off, len) => {
        out.push(
          ...Buffer.from(bytes.subarray(off, off + len))
            .toString("utf8")
            .split("\n")
            .filter(Boolean),
        );
      });
      return out;
    };
    return { plan, executors, peerOut, errors, ownerOfKey, outputs };
  }

  it("one frame per batch; the owner runs them in order, a failing message is dropped alone, a large one keeps its place", async () => {
    const { executors, peerOut, errors, ownerOfKey, outputs } = await twoWorkers();
    const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
    const remote = keys.filter((k) => ownerOfKey(k) === 1);
    expect(remote.length).toBeGreaterThan(0);
    const big = `big 99 ${remote[0]} ${"x".repeat(70_000)}`; // over the 64 KiB batch: a frame of its own
    const lines: string[] = [];
    for (let i = 0; i < 200; i++) lines.push(`${i === 50 ? "bad-encode" : "ok"} ${i} ${keys[i % keys.length]}`);
    lines.splice(120, 0, big);
    const run = frame(lines);
    executors[0].handler()(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    executors[0].flushPeers();
    const frames: { t: number; kind: number; bytes: Buffer }[] = [];
    peerOut[0].drain((t, bytes, off, len) =>
      frames.push({ t, kind: kindOf(t), bytes: Buffer.from(bytes.subarray(off, off + len)) }),
    );
    // what was gathered before the large message, the large message, what came after it
    expect(frames.map((f) => f.kind)).toEqual([STEP_BATCH, STEP, STEP_BATCH]);
    const toOne = executors[1].handler();
    for (const f of frames) toOne(f.t, f.bytes, 0, f.bytes.length);
    expect(peerOut[1].size).toBe(0); // worker 1 sends nothing back: every key it got is its own
    // each worker's outputs: its own keys' messages in input order, counted per key
    const expected = (w: number) => {
      const n = new Map<string, number>();
      const out: string[] = [];
      for (const l of lines) {
        const key = l.split(" ")[2];
        if (ownerOfKey(key) !== w) continue;
        n.set(key, (n.get(key) ?? 0) + 1);
        if (!l.startsWith("bad-encode")) out.push(`${l} #${n.get(key)}`);
      }
      return out;
    };
    expect(outputs(0)).toEqual(expected(0));
    expect(outputs(1)).toEqual(expected(1));
    expect(errors).toEqual([
      `encoder of sink faulty -> tcp 127.0.0.1:2: encoder refuses bad-encode 50 ${keys[50 % 8]} #7`,
    ]);
  });

  it("flushPeers() with nothing gathered sends nothing", async () => {
    const { executors, peerOut } = await twoWorkers();
    executors[0].flushPeers();
    expect(peerOut[0].size).toBe(0);
  });
});

describe("Executor: a declared partition key crossing to its owner", () => {
  it("lands in the instance of that key (examples/word_count: keys a-z and '!', dealt to 2 workers)", async () => {
    const appPath = fileURLToPath(new URL("../../examples/word_count/app.ts", import.meta.url));
    const url = pathToFileURL(appPath).href;
    const mod = await loadAppModule(url);
    const plan = compilePlan(setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"], url), 2);
    const serde = createSerde(
      mod,
      plan.states.map((s) => s.spec.stateClass),
    );
    const peerOut = [new MemoryOutbox(), new MemoryOutbox()];
    const sinks = [new MemoryOutbox(), new MemoryOutbox()];
    const errors: unknown[] = [];
    const ex = [0, 1].map(
      (w) =>
        new Executor(
          plan,
          w,
          serde,
          w === 0 ? [null, peerOut[0]] : [peerOut[1], null],
          [sinks[w]],
          (_where, err) => errors.push(err),
          undefined,
          true,
        ),
    );
    const words = ["apple", "banana", "cherry", "date", "zebra", "yak", "42", "bee", "bob", "avocado"];
    const lines = Array.from({ length: 30 }, (_, i) => `${words[i % words.length]} ${words[(i * 7) % words.length]}`);
    const run = frame(lines);
    ex[0].handler()(tag(SOURCE_FRAMED, 0), run, 0, run.length);
    ex[0].flushPeers();
    const toOne = ex[1].handler();
    peerOut[0].drain((t, bytes, off, len) => toOne(t, bytes, off, len));
    expect(errors).toEqual([]);
    // every word is counted in the instance of its own first letter ("!" for the rest), on the worker that owns it
    const counts = new Map<string, number>();
    for (const l of lines) for (const w of l.split(" ")) counts.set(w, (counts.get(w) ?? 0) + 1);
    const state = plan.states[0];
    for (const [word, n] of counts) {
      const key = /^[a-z]/.test(word) ? word[0] : "!";
      const owner = ownerOf(state, key, 2);
      const inst = ex[owner].peekInstance(0, key) as { wordTotals: Map<string, number> } | undefined;
      expect(inst?.wordTotals.get(word)).toBe(n);
      expect(ex[1 - owner].peekInstance(0, key)).toBeUndefined();
    }
    expect(new Set([...counts.keys()].map((w) => ownerOf(state, /^[a-z]/.test(w) ? w[0] : "!", 2)))).toEqual(
      new Set([0, 1]),
    );
  });
});

/**
 * What crosses in STEP_BATCH frames arrives as a frame per message would deliver it (the
 * test driver's path: no gathering), in order across batch boundaries: short strings travel
 * in the batch's text, longer ones as UTF-8 of their own, raw payloads are decoded again on
 * the owner from a copy of the batch that outlives the ring's bytes.
 */
describe("Executor: what crosses in a batch", () => {
  const PEER_APP = fileURLToPath(new URL("../fixtures/peer-hop-app.ts", import.meta.url));

  async function pair(mode: string, gather: boolean) {
    const url = pathToFileURL(PEER_APP).href;
    const mod = await loadAppModule(url);
    const plan = compilePlan(
      setupApplication(mod, ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2", "--mode", mode], url),
      2,
    );
    const serde = createSerde(
      mod,
      plan.states.map((s) => s.spec.stateClass),
    );
    const errors: string[] = [];
    const peerOut = [new MemoryOutbox(), new MemoryOutbox()]; // [from 0 to 1, from 1 to 0]
    const sinks = [new MemoryOutbox(), new MemoryOutbox()];
    const ex = [0, 1].map(
      (w) =>
        new Executor(
          plan,
          w,
          serde,
          w === 0 ? [null, peerOut[0]] : [peerOut[1], null],
          [sinks[w]],
          (where, err) => errors.push(`${where}: ${(err as Error).message}`),
          undefined,
          gather,
        ),
    );
    expect(ownerOf(plan.states[0], "a", 2)).toBe(0);
    expect(ownerOf(plan.states[0], "b", 2)).toBe(1);
    /**
     * Feeds `payloads` to worker 1 as one source run and hands what it sent to worker 0, each
     * frame copied into a scratch buffer standing for the ring, which is overwritten after the
     * call (as a ring's bytes are reused). Returns the kinds of the frames that crossed.
     */
    const cross = (payloads: (string | Buffer)[]) => {
      const run = frame(payloads);
      ex[1].handler()(tag(SOURCE_FRAMED, 0), run, 0, run.length);
      ex[1].flushPeers();
      const kinds: number[] = [];
      const ring = Buffer.alloc(1 << 20);
      const toZero = ex[0].handler();
      peerOut[1].drain((t, bytes, off, len) => {
        kinds.push(kindOf(t));
        ring.set(bytes.subarray(off, off + len), 8);
        toZero(t, ring, 8, len);
        ring.fill(0xee);
      });
      return kinds;
    };
    const outputs = (w: number) => {
      ex[w].flushSinks();
      const out: string[] = [];
      sinks[w].drain((_t, bytes, off, len) => {
        out.push(
          ...Buffer.from(bytes.subarray(off, off + len))
            .toString("utf8")
            .split("\n")
            .filter(Boolean),
        );
      });
      return out;
    };
    const kept = (w: number, key: string) => ex[w].peekInstance(0, key) as { strings: string[]; payloads: Buffer[] };
    return { ex, errors, cross, outputs, kept };
  }

  it("strings: order kept across batches, non-ASCII and lone surrogates as a frame per message gives them", async () => {
    const special = [
      "plain",
      "",
      "über",
      "日本語",
      "😀",
      "a\ud83d", // ends with a high surrogate...
      "\ude00b", // ...and the next starts with a low one: each alone is U+FFFD, not a pair
      "\ud83d",
      "\ude00",
      "\ud83d\ude00",
      "x".repeat(12),
      "y".repeat(13),
      "ab\ud83d",
      "\ude00\ude00",
      "é".repeat(12),
    ];
    const strings: string[] = [...special];
    for (let i = 0; i < 9000; i++) {
      if (i % 3000 === 1500)
        strings.push("h".repeat(70_000)); // larger than a batch: a frame of its own
      else if (i % 5 === 0)
        strings.push(`long-${i}-${"l".repeat(i % 20)}`); // 13+ units: UTF-8 of its own
      else strings.push(i % 7 === 0 ? `ü${i}` : `w${i}`);
      if (i % 1000 === 0) strings.push(...special);
    }
    const lines: string[] = [];
    for (let i = 0; i < strings.length; i += 40) lines.push(JSON.stringify(strings.slice(i, i + 40)));

    const batched = await pair("text", true);
    const kinds = batched.cross(lines);
    expect(batched.errors).toEqual([]);
    expect(kinds.filter((k) => k === STEP_BATCH).length).toBeGreaterThan(3);
    expect(kinds.filter((k) => k === STEP).length).toBe(3);
    const roundTrip = strings.map((s) => Buffer.from(s, "utf8").toString("utf8"));
    expect(batched.kept(0, "a").strings).toEqual(roundTrip);
    expect(batched.kept(0, "a").strings.slice(5, 9)).toEqual(["a\ufffd", "\ufffdb", "\ufffd", "\ufffd"]);
    expect(batched.outputs(0)).toEqual(roundTrip.map((s) => JSON.stringify(s)));

    // the same as a frame per message (no gathering: the test driver's path)
    const single = await pair("text", false);
    expect(single.cross(lines).every((k) => k === STEP)).toBe(true);
    expect(single.kept(0, "a").strings).toEqual(batched.kept(0, "a").strings);
  });

  it("raw payloads: decoded again from a copy that outlives the ring, in order, a Buffer to the decoder", async () => {
    const payloads: Buffer[] = [];
    for (let i = 0; i < 4000; i++) {
      const b = Buffer.alloc(1 + (i % 97) * 3, i & 0xff);
      b[0] = i % 3 === 0 ? 0x62 : 0x61; // "b" stays on worker 1, "a" crosses to worker 0
      payloads.push(b);
    }
    const { errors, cross, outputs, kept } = await pair("raw", true);
    const kinds = cross(payloads);
    expect(errors).toEqual([]);
    expect(kinds.filter((k) => k === STEP_BATCH).length).toBeGreaterThan(1);
    const crossed = payloads.filter((b) => b[0] === 0x61);
    const got = kept(0, "a").payloads;
    // the scratch "ring" was overwritten after every frame: what the decoder kept is a copy
    expect(got.map((b) => b.toString("hex"))).toEqual(crossed.map((b) => b.toString("hex")));
    expect(got.every((b) => Buffer.isBuffer(b) && b.constructor === Buffer)).toBe(true);
    expect(outputs(0)).toEqual(crossed.map((b) => b.toString("hex")));
    expect(kept(1, "b").payloads.length).toBe(payloads.length - crossed.length);
  });
});
