/**
 * wallaroo/testing: every method of the test driver, on one and several
 * simulated workers, with the fixture test/fixtures/driver-app.ts (TCP and Kafka
 * pipelines, partitioned, u64 and toStateful states, a class the module does not
 * export).
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createTestDriver, UserCodeError, type KafkaOutput, type TestDriver } from "wallaroo/testing";
import { hashKey } from "../../dist/core/hash.js";

const APP = fileURLToPath(new URL("../fixtures/driver-app.ts", import.meta.url));
const text = (bs: Buffer[]) => bs.map((b) => b.toString("utf8"));
/** the words of "WORD N of T" outputs, with their per-word count N, per word in order */
const perWord = (lines: string[]) => {
  const m = new Map<string, number[]>();
  for (const l of lines) {
    const [w, n] = l.split(" ");
    if (!m.has(w)) m.set(w, []);
    m.get(w)!.push(Number(n));
  }
  return m;
};

async function withDriver(workers: number, body: (d: TestDriver) => Promise<void>): Promise<void> {
  const d = await createTestDriver({ module: APP, workers });
  try {
    await body(d);
  } finally {
    await d.close();
  }
}

describe("one worker", () => {
  it("pipeInput runs every step; readOutput returns each output once, in order, as a Buffer", async () => {
    await withDriver(1, async (d) => {
      expect(d.name).toBe("driver test app");
      expect(d.workers).toBe(1);
      await d.pipeInput("words", "a b a", Buffer.from("c a"));
      const out = d.readOutput();
      expect(out.every((b) => Buffer.isBuffer(b))).toBe(true);
      expect(text(out)).toEqual(["a 1 of 1\n", "b 1 of 2\n", "a 2 of 3\n", "c 1 of 4\n", "a 3 of 5\n"]);
      expect(d.readOutput()).toEqual([]); // taken
      expect(d.readOutput(0)).toEqual([]);
      await d.pipeInput("words", "b");
      expect(text(d.readOutput(0))).toEqual(["b 2 of 6\n"]);
    });
  });

  it("state() returns the live instance, with its class; undefined when never created", async () => {
    await withDriver(1, async (d) => {
      expect(await d.state("word counts", "a")).toBeUndefined();
      expect(await d.state("total")).toBeUndefined();
      await d.pipeInput("words", "a b a");
      const a = await d.state<{ n: number; add(): number }>("word counts", "a");
      expect(a?.n).toBe(2);
      expect(a?.constructor.name).toBe("WordCount");
      expect(await d.state("word counts", "zzz")).toBeUndefined();
      const total = await d.state<{ words: number }>("total");
      expect(total).toMatchObject({ words: 3 });
      // live: the next message updates the same object
      await d.pipeInput("words", "a");
      expect(a?.n).toBe(3);
      expect(total?.words).toBe(4);
    });
  });

  it("state() of a u64-partitioned state takes a number or a bigint", async () => {
    await withDriver(1, async (d) => {
      await d.pipeInput("events", "1:5", "7:2", "1:1");
      expect(await d.state("sums", 1)).toMatchObject({ total: 6 });
      expect(await d.state("sums", 1n)).toMatchObject({ total: 6 });
      expect(await d.state("sums", 7n)).toMatchObject({ total: 2 });
      expect(await d.state("sums", 3)).toBeUndefined();
    });
  });

  it("Kafka source and sink: Buffer, string or { key, value } in; { key, value } out, key null when the encoder gives none", async () => {
    await withDriver(1, async (d) => {
      await d.pipeInput(
        "events",
        { key: "id-1", value: Buffer.from("1:5") },
        "0:3",
        { value: "2:4" },
        { key: null, value: "1:1" },
      );
      const out = d.readOutput<KafkaOutput>(2);
      expect(out.map((r) => [r.key === null ? null : r.key.toString(), r.value.toString()])).toEqual([
        ["1", "5"],
        [null, "3"],
        ["2", "4"],
        ["1", "6"],
      ]);
      expect(Buffer.isBuffer(out[0].value)).toBe(true);
      expect(d.readOutput(2)).toEqual([]);
    });
  });

  it('loads a .js application outside the package: `import "wallaroo"` resolves wherever the file lives', async () => {
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-driver-"));
    try {
      writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
      writeFileSync(
        join(dir, "app.js"),
        [
          'import * as wallaroo from "wallaroo";',
          "const decoder = wallaroo.decoder((b) => b.toString());",
          'const up = wallaroo.computation("up", (s) => s.toUpperCase());',
          "const encoder = wallaroo.encoder((s) => s);",
          "export function applicationSetup(args) {",
          '  const ab = new wallaroo.ApplicationBuilder("js app " + args.join(" "));',
          '  ab.newPipeline("up", new wallaroo.TCPSourceConfig("127.0.0.1", 7010, decoder)).to(up)',
          '    .toSink(new wallaroo.TCPSinkConfig("127.0.0.1", 7002, encoder));',
          "  return ab.build();",
          "}",
        ].join("\n"),
      );
      const d = await createTestDriver({ module: join(dir, "app.js"), args: ["x", "y"] });
      expect(d.name).toBe("js app x y");
      await d.pipeInput("up", "abc", "d");
      expect(text(d.readOutput())).toEqual(["ABC", "D"]);
      await d.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the module may be given as a file URL, and args reach applicationSetup", async () => {
    const d = await createTestDriver({ module: pathToFileURL(APP), args: ["--anything"] });
    await d.pipeInput("words", "x");
    expect(text(d.readOutput())).toEqual(["x 1 of 1\n"]);
    await d.close();
  });
});

describe("several simulated workers", () => {
  // Words whose instances the engine places on each of 3 workers (undeclared keys: hash % workers).
  const words = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
  const owners = new Set(words.map((w) => hashKey(w) % 3));

  it("keys owned by different workers: the same per-key results as one worker, state found on its owner", async () => {
    expect(owners.size).toBe(3); // the test spreads over every worker
    const input = Array.from(
      { length: 60 },
      (_, i) => `${words[i % 10]} ${words[(i * 7) % 10]} ${words[(i * 3) % 10]}`,
    );
    let one: string[] = [];
    await withDriver(1, async (d) => {
      await d.pipeInput("words", ...input);
      one = text(d.readOutput());
    });
    await withDriver(3, async (d) => {
      // two calls: two connections, which the sources give to different workers
      await d.pipeInput("words", ...input.slice(0, 30));
      await d.pipeInput("words", ...input.slice(30));
      const three = text(d.readOutput());
      expect(three.length).toBe(one.length);
      // per word, the counts arrive in order 1..n as on one worker
      const strip = (ls: string[]) => ls.map((l) => l.replace(/ of \d+\n$/, ""));
      expect([...strip(three)].sort()).toEqual([...strip(one)].sort());
      for (const [w, ns] of perWord(three)) expect(ns, w).toEqual(ns.map((_, i) => i + 1));
      // the running total counted every word once
      expect(three.map((l) => Number(/ of (\d+)\n$/.exec(l)![1])).sort((x, y) => x - y)).toEqual(
        three.map((_, i) => i + 1),
      );
      for (const w of words)
        expect((await d.state<{ n: number }>("word counts", w))?.n, w).toBe(perWord(one).get(w)!.length);
      expect(await d.state("total")).toMatchObject({ words: one.length });
    });
  });

  it("a message of a class the module does not export fails where it crosses workers, with the user's error", async () => {
    const lines = words;
    // one worker: nothing crosses, the method is there
    await withDriver(1, async (d) => {
      await d.pipeInput("hidden", ...lines);
      expect(text(d.readOutput(1))).toEqual(lines.map((l) => `${l}!\n`));
    });
    // three workers: the lines owned by another worker would arrive without their prototype, so they are refused
    await withDriver(3, async (d) => {
      const err = await d.pipeInput("hidden", ...lines).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UserCodeError);
      const e = err as UserCodeError;
      expect(e.where).toBe('computation "shout" of pipeline "hidden"');
      // refused where it would cross to the other worker, naming the class and the fix
      expect(e.message).toMatch(
        /^computation "shout" of pipeline "hidden": cannot serialize the value: an instance of class Hidden, which the engine cannot restore; export class Hidden/,
      );
      expect((e.cause as Error).name).toBe("SerializationError");
      // the first call's connection went to worker 1 (source 1 of 3 workers): lines owned elsewhere failed
      const local = lines.filter((l) => hashKey(l) % 3 === 1);
      expect(e.errors.length).toBe(lines.length - local.length);
      expect(text(d.readOutput(1))).toEqual(local.map((l) => `${l}!\n`));
    });
  });

  it("Kafka messages with a key stay on one worker and in order; state of u64 keys is found on its owner", async () => {
    await withDriver(2, async (d) => {
      const input = Array.from({ length: 40 }, (_, i) => ({ key: `p${i % 4}`, value: `${i % 5}:${i}` }));
      await d.pipeInput("events", ...input);
      const out = d.readOutput<KafkaOutput>(2);
      expect(out.length).toBe(40);
      const sums = new Map<number, number>();
      for (let id = 0; id < 5; id++) {
        const want = input
          .filter((m) => Number(m.value.split(":")[0]) === id)
          .reduce((s, m) => s + Number(m.value.split(":")[1]), 0);
        sums.set(id, want);
        expect(await d.state("sums", id)).toMatchObject({ total: want });
      }
      // the last output of each id is its total
      const last = new Map<string, string>();
      for (const r of out) last.set(r.key === null ? "0" : r.key.toString(), r.value.toString());
      for (const [id, want] of sums) expect(last.get(String(id))).toBe(String(want));
    });
  });
});

describe("two applications in one process", () => {
  it("each keeps its classes' prototypes across workers (msgpackr's registry is per thread)", async () => {
    // the same file under another URL is another module instance: other classes, registered separately
    const a = await createTestDriver({ module: APP, workers: 3 });
    const b = await createTestDriver({ module: `${pathToFileURL(APP).href}?second-instance`, workers: 3 });
    const input = ["a b c d e f g h i j", "j i h g f e d c b a"];
    for (const d of [a, b, a, b]) {
      await d.pipeInput("words", ...input); // Word.text() is called on the owner of each word
      expect(d.readOutput().length).toBe(20);
    }
    expect(await b.state("word counts", "e")).toMatchObject({ n: 4 });
    await a.close();
    await b.close();
  });
});

describe("checkpoint and restore", () => {
  it("restores the saved instances into another worker count; an instance never marked saveState is not saved", async () => {
    const d = await createTestDriver({ module: APP, workers: 2 });
    await d.pipeInput("words", "a b c tmp a", "d e f g a tmp");
    const first = await d.checkpoint();
    expect(first.checkpoint).toBe(1);
    await d.pipeInput("words", "tmp b", "z"); // tmp: counted but not marked saveState
    const snap = await d.checkpoint();
    expect(snap.checkpoint).toBe(2);
    d.readOutput();
    await d.close();

    for (const workers of [1, 3]) {
      const r = await createTestDriver({ module: APP, workers, restore: snap });
      expect((await r.state<{ n: number }>("word counts", "a"))?.n).toBe(3);
      expect((await r.state<{ n: number }>("word counts", "b"))?.n).toBe(2);
      expect((await r.state<{ n: number }>("word counts", "z"))?.n).toBe(1);
      // "tmp" was counted three times but never marked saveState: no checkpoint holds it
      expect(await r.state("word counts", "tmp")).toBeUndefined();
      expect(await r.state("total")).toMatchObject({ words: 14 });
      expect((await r.state("word counts", "a"))?.constructor.name).toBe("WordCount");
      await r.pipeInput("words", "a z q");
      const out = text(r.readOutput());
      if (workers === 1) expect(out).toEqual(["a 4 of 15\n", "z 2 of 16\n", "q 1 of 17\n"]);
      // on 3 workers the words reach "total" through different workers: any order
      expect(out.map((l) => l.replace(/ of \d+\n$/, "")).sort()).toEqual(["a 4", "q 1", "z 2"]);
      expect(out.map((l) => l.replace(/^.* of /, "")).sort()).toEqual(["15\n", "16\n", "17\n"]);
      // a checkpoint after a restore keeps what was restored and not changed since
      const again = await r.checkpoint();
      expect(again.checkpoint).toBe(3);
      const r2 = await createTestDriver({ module: APP, workers: 2, restore: again });
      expect((await r2.state<{ n: number }>("word counts", "b"))?.n).toBe(2);
      expect((await r2.state<{ n: number }>("word counts", "q"))?.n).toBe(1);
      await r2.close();
      await r.close();
    }
  });

  it("a state that cannot be serialized fails checkpoint(), naming the state and key", async () => {
    const d = await createTestDriver({ module: APP });
    await d.pipeInput("words", "a symbol");
    await expect(d.checkpoint()).rejects.toThrow(
      'state "word counts" (key "symbol") cannot be serialized for a checkpoint: cannot serialize field .tag: a Symbol',
    );
    await expect(d.checkpoint()).rejects.toThrow(/an earlier checkpoint failed \(state "word counts"/);
    await d.close();
  });

  it("a snapshot of another application is refused", async () => {
    const d = await createTestDriver({ module: APP });
    await d.pipeInput("words", "a");
    const snap = await d.checkpoint();
    await d.close();
    const other = fileURLToPath(new URL("../fixtures/alphabet-renamed.ts", import.meta.url));
    await expect(
      createTestDriver({ module: other, args: ["--in", "127.0.0.1:1", "--out", "127.0.0.1:2"], restore: snap }),
    ).rejects.toThrow(/the snapshot belongs to application "driver test app"/);
  });

  it("a corrupted snapshot is refused with where", async () => {
    const d = await createTestDriver({ module: APP });
    await d.pipeInput("words", "a");
    const snap = await d.checkpoint();
    const records = Uint8Array.from(snap.records);
    records[records.length - 1] ^= 0xff;
    await expect(createTestDriver({ module: APP, restore: { ...snap, records } })).rejects.toThrow(
      /the snapshot is corrupt at offset \d+: checksum mismatch/,
    );
    await d.close();
  });
});

describe("errors in user code", () => {
  it("a failing message is dropped, the others go through, then pipeInput rejects with a UserCodeError listing each failure", async () => {
    await withDriver(2, async (d) => {
      const err = await d.pipeInput("words", "a", "!throw this", "b boom c", "!nothing here", "mute d").then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UserCodeError);
      const e = err as UserCodeError;
      expect(e.errors.map((x) => x.where)).toEqual([
        'decoder of pipeline "words" (tcp 127.0.0.1:7010)',
        'computation "count" of pipeline "words"',
        'decoder of pipeline "words" (tcp 127.0.0.1:7010)',
        "encoder of sink words -> tcp 127.0.0.1:7002",
      ]);
      expect(e.errors.map((x) => (x.error as Error).message)).toEqual([
        "decoder refuses !throw this",
        "count refuses boom",
        "a decoder must return a value, got undefined; the message is dropped (to skip messages, return null from a computation)",
        "an encoder for a TCP sink must return a Buffer, Uint8Array or string, got undefined; the output is dropped",
      ]);
      expect(e.message).toBe(
        'decoder of pipeline "words" (tcp 127.0.0.1:7010): decoder refuses !throw this (and 3 more errors)',
      );
      // "c" after the failing "boom" of the same line went on; "mute" was counted, its output dropped
      const out = text(d.readOutput()).map((l) => l.replace(/ of \d+\n$/, ""));
      expect(out.sort()).toEqual(["a 1", "b 1", "c 1", "d 1"]);
      expect(await d.state("word counts", "mute")).toMatchObject({ n: 1 });
      // the driver goes on working
      await d.pipeInput("words", "a");
      expect(text(d.readOutput()).map((l) => l.replace(/ of \d+\n$/, ""))).toEqual(["a 2"]);
    });
  });

  it("bad calls say what is wrong", async () => {
    await withDriver(1, async (d) => {
      await expect(d.pipeInput("nope", "x")).rejects.toThrow(
        'no pipeline named "nope" in "driver test app"; pipelines: "words", "hidden", "events"',
      );
      await expect(d.pipeInput("words", { key: "k", value: "v" })).rejects.toThrow(
        /\{ key, value \} is for Kafka sources/,
      );
      await expect(d.pipeInput("words", 42 as unknown as string)).rejects.toThrow(
        /payload 0 must be a Buffer, Uint8Array or string, got number/,
      );
      // nothing of a call with a bad payload is processed
      expect(d.readOutput()).toEqual([]);
      expect(() => d.readOutput(3)).toThrow(/no sink 3: "driver test app" has 3 sink\(s\)/);
      await expect(d.state("nope")).rejects.toThrow(/no state named "nope".*"word counts", "total", "shouts", "sums"/);
      await expect(d.state("word counts")).rejects.toThrow(/is partitioned: pass the key/);
      await expect(d.state("total", "k")).rejects.toThrow(/is not partitioned/);
      await expect(createTestDriver({ module: APP, workers: 0 })).rejects.toThrow(/workers must be a positive integer/);
    });
  });

  it("close() ends the driver: every later call rejects", async () => {
    const d = await createTestDriver({ module: APP });
    await d.pipeInput("words", "a");
    await d.close();
    await expect(d.pipeInput("words", "a")).rejects.toThrow("this test driver is closed");
    expect(() => d.readOutput()).toThrow("this test driver is closed");
    await expect(d.state("total")).rejects.toThrow("this test driver is closed");
    await expect(d.checkpoint()).rejects.toThrow("this test driver is closed");
  });
});
