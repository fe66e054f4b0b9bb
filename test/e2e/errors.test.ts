/**
 * Error handling end to end (engine as a CLI child process, its pino log read
 * from stderr): oversized frames, partial frames, user code that throws,
 * --fail-fast, and a sink receiver that goes away or is not there yet.
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import {
  checkTaggedOrder,
  fixture,
  parseTagged,
  sleep,
  startEngine,
  taggedMessages,
  type Engine,
  type LogLine,
  type TaggedOut,
} from "../helpers/engine.js";

const APP = fixture("e2e-app.ts");
/** the sequence numbers of one connection's outputs, sorted */
const seqs = (outs: TaggedOut[], conn: string) =>
  outs
    .filter((o) => o.conn === conn)
    .map((o) => o.seq)
    .sort((a, b) => a - b);
const msgOf = (l: LogLine) => (typeof l.msg === "string" ? l.msg : "");

async function engineFor(
  mode: string,
  sinkPort: number,
  extra: string[] = [],
  workers = 2,
): Promise<{ engine: Engine; inPort: number }> {
  const inPort = await freePort();
  const engine = await startEngine(APP, [
    "--in",
    `127.0.0.1:${inPort}`,
    "--out",
    `127.0.0.1:${sinkPort}`,
    "--workers",
    String(workers),
    "--mode",
    mode,
    ...extra,
  ]);
  return { engine, inPort };
}

async function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => resolve(s));
    s.on("error", reject);
  });
}

const write = (s: net.Socket, b: Buffer) => new Promise<void>((r, j) => s.write(b, (e) => (e ? j(e) : r())));
const closed = (s: net.Socket) =>
  new Promise<void>((r) => {
    if (s.destroyed) r();
    else s.once("close", () => r());
  });

async function stopOk(engine: Engine): Promise<void> {
  const exit = await engine.stop("SIGTERM");
  expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
}

describe("frames", () => {
  it("(a) a header over --max-frame-bytes closes that connection with a logged error; another connection keeps working", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await engineFor("tagged", sink.port, ["--max-frame-bytes", "1000"]);
    try {
      const good = await connect(inPort);
      await write(good, frame(taggedMessages("good", 0, 100, 3)));
      await sink.waitForLines(100);

      const bad = await connect(inPort);
      bad.on("error", () => {});
      const header = Buffer.alloc(4);
      header.writeUInt32BE(1001);
      // one valid message first (exactly at the limit is fine), then a header one byte over it
      const atLimit = `bad 0 k0 ${"x".repeat(1000 - 9)}`;
      expect(Buffer.byteLength(atLimit)).toBe(1000);
      await write(bad, Buffer.concat([frame([atLimit]), header, Buffer.alloc(50, 0x78)]));
      const err = await engine.waitForLog((l) =>
        /announced a 1001-byte frame, over the 1000-byte limit/.test(msgOf(l)),
      );
      expect(err.level).toBe(50); // pino "error"
      await closed(bad); // the engine closed it

      // the other connection still works, as do new ones
      await write(good, frame(taggedMessages("good", 100, 200, 3)));
      await new Promise<void>((r) => good.end(r));
      await sendBytes(inPort, frame(taggedMessages("later", 0, 50, 3)));
      await sink.waitForLines(100 + 1 + 100 + 50);
      await stopOk(engine);
      const outs = sink.lines().map(parseTagged);
      expect(outs.length).toBe(251);
      expect(seqs(outs, "good")).toEqual(Array.from({ length: 200 }, (_, i) => i));
      expect(seqs(outs, "later")).toEqual(Array.from({ length: 50 }, (_, i) => i));
      expect(seqs(outs, "bad")).toEqual([0]);
      expect(checkTaggedOrder(outs)).toEqual([]);
    } finally {
      engine.kill();
      await sink.close();
    }
  });

  it("(b) a partial frame at disconnect is dropped with a warning; the complete frames before it arrive", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await engineFor("tagged", sink.port);
    try {
      const whole = frame(taggedMessages("p", 0, 500, 5));
      const last = frame(["p 500 k0 this one is cut"]);
      // the complete frames, then all of the last frame but its final 3 bytes, then close
      await sendBytes(inPort, Buffer.concat([whole, last.subarray(0, last.length - 3)]));
      const warn = await engine.waitForLog((l) => /closed in the middle of a frame/.test(msgOf(l)));
      expect(warn.level).toBe(40); // pino "warn"
      expect(msgOf(warn)).toContain(`dropped its last ${last.length - 3} bytes`);
      // a header cut in two is a partial frame as well
      await sendBytes(inPort, Buffer.concat([frame(taggedMessages("q", 0, 10, 5)), Buffer.from([0, 0])]));
      await engine.waitForLog((l) => /dropped its last 2 bytes/.test(msgOf(l)));
      await sink.waitForLines(510);
      await sleep(300);
      await stopOk(engine);
      const outs = sink.lines().map(parseTagged);
      // (keys live on different workers: the order is kept per key, not across keys)
      expect(seqs(outs, "p")).toEqual(Array.from({ length: 500 }, (_, i) => i));
      expect(seqs(outs, "q")).toEqual(Array.from({ length: 10 }, (_, i) => i));
      expect(outs.length).toBe(510);
      expect(checkTaggedOrder(outs)).toEqual([]);
    } finally {
      engine.kill();
      await sink.close();
    }
  });
});

describe("user code that throws", () => {
  // every 10th message is bad, in turn for the decoder, the computation, the partition function and the encoder
  const KINDS = ["bad-decode", "bad-compute", "bad-partition", "bad-encode"];
  const messages = Array.from({ length: 400 }, (_, i) =>
    i % 10 === 5 ? `${KINDS[((i / 10) | 0) % 4]} ${i} k${i % 3}` : `ok ${i} k${i % 3}`,
  );
  const goodOnes = messages.filter((m) => m.startsWith("ok"));

  it("(c) decoder, partition function, computation and encoder errors drop the message, log the step, the rest arrive", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await engineFor("faulty", sink.port);
    try {
      await sendBytes(inPort, frame(messages));
      await sink.waitForLines(goodOnes.length);
      // each kind of failure is logged (at once: the first of each kind is never rate-limited) with where it happened
      const wheres: [string, RegExp, string][] = [
        ["bad-decode", /^decoder of pipeline "faulty"/, "decoder refuses bad-decode 5 k2"],
        ["bad-compute", /^computation "faulty compute" of pipeline "faulty"/, "computation refuses bad-compute 15 k0"],
        [
          "bad-partition",
          /^partition function of state "key counts" \(pipeline "faulty"\)/,
          "partition function refuses bad-partition 25 k1",
        ],
        ["bad-encode", /^encoder of sink /, "encoder refuses bad-encode 35 k2 #11"],
      ];
      for (const [kind, where, text] of wheres) {
        const line = await engine.waitForLog((l) => typeof l.where === "string" && where.test(l.where), 10_000);
        expect(line.level, kind).toBe(50);
        expect(msgOf(line), kind).toBe(`error in ${line.where as string}: ${text}`);
      }
      await sleep(300);
      await stopOk(engine);
      // Expected, per key in input order: the decoder, computation and partition failures never reach the
      // state; an encoder failure happens after the state step, so its count is used up but not written.
      const want: string[] = [];
      const counts = new Map<string, number>();
      for (const m of messages) {
        if (/^bad-(decode|compute|partition)/.test(m)) continue;
        const key = m.split(" ")[2];
        const n = (counts.get(key) ?? 0) + 1;
        counts.set(key, n);
        if (!m.startsWith("bad-encode")) want.push(`${m} #${n}`);
      }
      expect(want.length).toBe(goodOnes.length);
      const got = sink.lines();
      expect([...got].sort()).toEqual([...want].sort());
      const perKey = (ls: string[], k: string) => ls.filter((l) => l.split(" ")[2] === k);
      for (const k of ["k0", "k1", "k2"]) expect(perKey(got, k), k).toEqual(perKey(want, k));
      // every error was counted
      expect(engine.stderr()).not.toContain("bad-decode 5 k2 #");
    } finally {
      engine.kill();
      await sink.close();
    }
  });

  it("(d) --fail-fast: the first error stops the engine with the error on stderr and a non-zero exit code", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await engineFor("faulty", sink.port, ["--fail-fast"]);
    try {
      await sendBytes(inPort, frame(["ok 0 k0", "ok 1 k1", "bad-compute 2 k2", "ok 3 k0"]));
      const exit = await Promise.race([engine.exited, sleep(20_000).then(() => null)]);
      expect(exit, "the engine did not stop on its own").not.toBeNull();
      expect(exit!.code).not.toBe(0);
      expect(exit!.code).not.toBeNull();
      expect(engine.stderr()).toContain("computation refuses bad-compute 2 k2");
      const fatal = engine.logs().find((l) => l.level === 60);
      expect(fatal, engine.stderr()).toBeDefined();
      expect(msgOf(fatal!)).toContain('computation "faulty compute" of pipeline "faulty"');
    } finally {
      engine.kill();
      await sink.close();
    }
  });
});

describe("sink receiver", () => {
  /** Each collector's complete lines (a chunk cut by the disconnect leaves a partial last line). */
  const completeLines = (c: Collector) => {
    const text = c.bytes().toString("utf8");
    const ls = text.split("\n");
    ls.pop(); // "" after the last "\n", or a partial line
    return ls;
  };

  /** Keeps the first occurrence of each line: re-sent in-flight output shows up twice. */
  const dedupe = (ls: string[]) => {
    const seen = new Set<string>();
    return ls.filter((l) => !seen.has(l) && seen.add(l));
  };

  /** One connection sending "s SEQ kSEQ%5" messages; returns a function sending [from, to). */
  async function sender(inPort: number) {
    const src = await connect(inPort);
    return {
      send: (from: number, to: number) => write(src, frame(taggedMessages("s", from, to, 5))),
      end: () => new Promise<void>((r) => src.end(r)),
    };
  }

  /** Every message 0..total-1 present once the duplicates are removed, in order per key, counts 1..n. */
  function expectComplete(parts: Collector[], total: number): void {
    const outs = dedupe(parts.flatMap(completeLines)).map(parseTagged);
    expect(outs.map((o) => o.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(outs.length).toBe(total);
    expect(checkTaggedOrder(outs)).toEqual([]);
  }

  const seen = (parts: Collector[]) => new Set(parts.flatMap(completeLines)).size;

  it("(e) goes away and comes back on the same port: the engine reconnects, what came in meanwhile is delivered", async () => {
    const first = await startCollector();
    const port = first.port;
    const { engine, inPort } = await engineFor("tagged", port);
    let second: Collector | null = null;
    try {
      const src = await sender(inPort);
      await src.send(0, 20_000);
      await first.waitForLines(20_000);
      await first.close();
      const lost = await engine.waitForLog((l) => /connection to .* lost; reconnecting/.test(msgOf(l)));
      expect(lost.level).toBe(40);
      // input while nobody listens: held by the engine
      await src.send(20_000, 40_000);
      await sleep(300);
      second = await startCollector(port);
      await engine.waitForLog((l) => /^connected to /.test(msgOf(l)));
      await src.send(40_000, 50_000);
      await src.end();
      await second.waitFor(() => seen([first, second!]) >= 50_000, 30_000);
      await sleep(300);
      await stopOk(engine);
      expectComplete([first, second], 50_000);
      expect(completeLines(second).length).toBeGreaterThanOrEqual(30_000);
    } finally {
      engine.kill();
      await first.close();
      await second?.close();
    }
  });

  // ENGINE BUG (lead to fix, see the report): the TCP sink forgets a chunk as soon as the kernel
  // accepted it, so output sitting in socket buffers when the receiver dies is lost for good
  // ("0 bytes to write again"). Made deterministic here: the receiver stops reading while output
  // flows (the kernel buffers fill), then dies.
  it("(e') dies while output is in flight (unread in socket buffers) and comes back: nothing is lost", async () => {
    const first = await startCollector();
    const port = first.port;
    const { engine, inPort } = await engineFor("tagged", port);
    let second: Collector | null = null;
    try {
      const src = await sender(inPort);
      await src.send(0, 2_000);
      await first.waitForLines(2_000);
      first.pause();
      await src.send(2_000, 60_000);
      await sleep(500); // the engine writes until the socket buffers are full
      await first.close();
      await engine.waitForLog((l) => /connection to .* lost; reconnecting/.test(msgOf(l)));
      second = await startCollector(port);
      await engine.waitForLog((l) => /^connected to /.test(msgOf(l)));
      await src.send(60_000, 61_000);
      await src.end();
      await second.waitFor(() => seen([first, second!]) >= 61_000, 3_000).catch(() => {});
      await stopOk(engine);
      expectComplete([first, second], 61_000);
    } finally {
      engine.kill();
      await first.close();
      await second?.close();
    }
  });

  it("(f) is not up at start: the engine retries and delivers once it is", async () => {
    const port = await freePort();
    const { engine, inPort } = await engineFor("tagged", port);
    let sink: Collector | null = null;
    try {
      await sendBytes(inPort, frame(taggedMessages("f", 0, 3000, 4)));
      const warn = await engine.waitForLog((l) => /cannot write to 127\.0\.0\.1:\d+ .*retrying/.test(msgOf(l)));
      expect(warn.level).toBe(40);
      await sleep(500);
      sink = await startCollector(port);
      await sink.waitForLines(3000);
      await sleep(200);
      await stopOk(engine);
      const outs = sink.lines().map(parseTagged);
      expect(outs.map((o) => o.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
      expect(checkTaggedOrder(outs)).toEqual([]);
    } finally {
      engine.kill();
      await sink?.close();
    }
  });

  // ENGINE BUG (lead to fix, see the report): with the receiver gone and NOTHING left to write, the
  // sink reports itself busy (setIdle(false) while disconnected), so a stop waits the whole drain
  // timeout and then logs that output was lost.
  it("(g) gone at shutdown with everything delivered: the stop does not wait for it nor report lost output", async () => {
    const sink = await startCollector();
    const { engine, inPort } = await engineFor("tagged", sink.port, ["--drain-timeout", "3"]);
    try {
      await sendBytes(inPort, frame(taggedMessages("g", 0, 1000, 3)));
      await sink.waitForLines(1000);
      await sink.close();
      await engine.waitForLog((l) => /connection to .* lost; reconnecting/.test(msgOf(l)));
      await sleep(1500); // past the sink's 1 s idle sleep: it has looked at its state since
      await stopOk(engine);
      expect(engine.stderr()).not.toContain("did not reach the sinks");
    } finally {
      engine.kill();
      await sink.close();
    }
  });
});
