/**
 * Resilience end to end with real processes, sockets and files (the alphabet
 * application: one partitioned state instance per letter, saveState true):
 * totals continue from the last checkpoint after kill -9 (with another worker
 * count), a corrupt or truncated store and another application's store are
 * refused at start, and a checkpoint during a stalled TCP sink is abandoned
 * cleanly with bounded memory, then succeeds once the sink drains.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";
import { ROOT as REPO, sleep, startEngine, type Engine } from "../helpers/engine.js";
import { canMount, mountSmallFs } from "../helpers/small-fs.js";

const ALPHABET = path.join(REPO, "examples/alphabet/app.ts");
const RENAMED = path.join(REPO, "test/fixtures/alphabet-renamed.ts");
const WORD_COUNT = path.join(REPO, "examples/word_count/app.ts");

/** framed alphabet votes: [u32 BE 5][letter][u32 BE votes] */
function votes(list: [string, number][]): Buffer {
  return Buffer.concat(
    list.map(([l, n]) => {
      const b = Buffer.alloc(9);
      b.writeUInt32BE(5, 0);
      b.write(l, 4, "latin1");
      b.writeUInt32BE(n, 5);
      return b;
    }),
  );
}

/** the (letter, total) outputs: [u32 BE 9][letter][u64 BE total] */
function totals(bytes: Buffer): [string, number][] {
  const out: [string, number][] = [];
  for (let i = 0; i + 13 <= bytes.length; i += 13)
    out.push([bytes.toString("latin1", i + 4, i + 5), Number(bytes.readBigUInt64BE(i + 5))]);
  return out;
}

function randomVotes(n: number, seed: number): [string, number][] {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    return x;
  };
  return Array.from(
    { length: n },
    () => [String.fromCharCode(97 + ((rnd() >>> 8) % 26)), 1 + ((rnd() >>> 8) % 9)] as [string, number],
  );
}

function sum(list: [string, number][], into = new Map<string, number>()): Map<string, number> {
  for (const [l, n] of list) into.set(l, (into.get(l) ?? 0) + n);
  return into;
}

const isCommitted = (l: Record<string, any>) => typeof l.msg === "string" && /^checkpoint \d+ committed/.test(l.msg);

let dir: string;
let engines: Engine[] = [];
let collectors: Collector[] = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "wallaroo-resil-"));
});
afterEach(async () => {
  for (const e of engines) if (e.child.exitCode === null && e.child.signalCode === null) await e.kill9();
  for (const c of collectors) await c.close();
  engines = [];
  collectors = [];
  fs.rmSync(dir, { recursive: true, force: true });
});

async function run(app: string, inPort: number, outPort: number, extra: string[] = []): Promise<Engine> {
  const e = await startEngine(
    app,
    [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${outPort}`,
      "--workers",
      "2",
      "--resilience-dir",
      dir,
      "--checkpoint-interval",
      "0.2",
      ...extra,
    ],
    { waitRunning: false, env: { WALLAROO_LOG_LEVEL: "info" } },
  );
  engines.push(e);
  await e.waitForLog((l) => /running on/.test(l.msg ?? ""), 20_000);
  return e;
}

/** Starts an engine expected to refuse to start; its exit code and error line. */
async function refused(app: string, inPort: number, outPort: number): Promise<{ code: number | null; error: string }> {
  const e = await startEngine(
    app,
    ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${outPort}`, "--workers", "2", "--resilience-dir", dir],
    { waitRunning: false, env: { WALLAROO_LOG_LEVEL: "info" } },
  );
  engines.push(e);
  const exit = await Promise.race([e.exited, sleep(20_000).then(() => "timeout" as const)]);
  if (exit === "timeout") throw new Error("the engine started instead of refusing");
  return { code: exit.code, error: e.lines.map((l) => String(l.err ?? "")).join("\n") };
}

describe("resilience (TCP, alphabet)", () => {
  it("totals continue exactly from the last checkpoint after kill -9, with another worker count", async () => {
    const out = await startCollector();
    collectors.push(out);
    const inPort = await freePort();
    const first = randomVotes(3000, 1);
    const e1 = await run(ALPHABET, inPort, out.port);
    await sendBytes(inPort, votes(first));
    await out.waitFor((b) => b.length >= first.length * 13, 20_000);
    const mark = e1.lines.length;
    await e1.waitForLog(isCommitted, 10_000, mark); // a checkpoint taken after every output arrived holds every vote
    await e1.kill9();
    const expectFirst = sum(first);
    const last = new Map(totals(out.bytes()));
    expect(last).toEqual(expectFirst);

    const before = out.bytes().length;
    const second = randomVotes(2000, 2);
    const e2 = await run(ALPHABET, inPort, out.port, ["--workers", "3"]);
    await e2.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? "") && l.instances === expectFirst.size, 1000);
    await sendBytes(inPort, votes(second));
    await out.waitFor((b) => b.length - before >= second.length * 13, 20_000);
    // Every output of the second run continues the totals of the first.
    const running = new Map(expectFirst);
    const got = totals(out.bytes().subarray(before));
    expect(got.length).toBe(second.length);
    const byLetter = new Map<string, number[]>();
    for (const [l, t] of got) byLetter.set(l, [...(byLetter.get(l) ?? []), t]);
    const want = new Map<string, number[]>();
    for (const [l, n] of second) {
      running.set(l, (running.get(l) ?? 0) + n);
      want.set(l, [...(want.get(l) ?? []), running.get(l)!]);
    }
    expect(byLetter).toEqual(want);
    expect((await e2.stop()).code).toBe(0);
  }, 90_000);

  it("refuses a store with a corrupt byte, a truncated log or no MANIFEST, naming the file", async () => {
    const out = await startCollector();
    collectors.push(out);
    const inPort = await freePort();
    const e = await run(ALPHABET, inPort, out.port);
    const sent = randomVotes(500, 3);
    await sendBytes(inPort, votes(sent));
    await out.waitFor((b) => b.length >= 500 * 13, 20_000);
    expect((await e.stop()).code).toBe(0); // the final checkpoint
    const log = path.join(dir, fs.readdirSync(dir).find((f) => f.startsWith("log-"))!);
    const good = fs.readFileSync(log);
    expect(good.length).toBeGreaterThan(100);

    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length / 2)] ^= 0x01;
    fs.writeFileSync(log, flipped);
    const r1 = await refused(ALPHABET, inPort, out.port);
    expect(r1.code).toBe(1);
    expect(r1.error).toMatch(
      new RegExp(`checkpoint store ${log} is corrupt at offset \\d+: checksum mismatch; move it away to start empty`),
    );

    fs.writeFileSync(log, good.subarray(0, good.length - 5));
    const r2 = await refused(ALPHABET, inPort, out.port);
    expect(r2.code).toBe(1);
    expect(r2.error).toContain(`checkpoint store ${log} is corrupt at offset ${good.length - 5}: truncated`);

    // Without its MANIFEST the store is refused (exit 1), naming the files and the choice; the log is untouched.
    fs.writeFileSync(log, good);
    const manifest = path.join(dir, "MANIFEST");
    fs.renameSync(manifest, `${manifest}.aside`);
    const r3 = await refused(ALPHABET, inPort, out.port);
    expect(r3.code).toBe(1);
    expect(r3.error).toContain(
      `checkpoint store ${dir} has no ${manifest}, but holds ${log} (${good.length} bytes): without the MANIFEST there is no telling`,
    );
    expect(r3.error).toContain(`restore the MANIFEST (from a backup of ${dir}), or move ${dir} away`);
    expect(fs.readFileSync(log)).toEqual(good);
    fs.renameSync(`${manifest}.aside`, manifest);

    const ok = await run(ALPHABET, inPort, out.port);
    await ok.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? "") && l.instances === sum(sent).size, 1000);
    expect((await ok.stop()).code).toBe(0);
  }, 90_000);

  it("refuses the store of another application or of other state names", async () => {
    const out = await startCollector();
    collectors.push(out);
    const inPort = await freePort();
    const e = await run(ALPHABET, inPort, out.port);
    expect((await e.stop()).code).toBe(0);
    const r1 = await refused(RENAMED, inPort, out.port);
    expect(r1.code).toBe(1);
    expect(r1.error).toContain(
      `checkpoint store ${dir} belongs to application "alphabet" with states ["letter state" (TotalVotes, partitioned)], not to application "alphabet" with states ["letter totals" (TotalVotes, partitioned)]`,
    );
    const r2 = await refused(WORD_COUNT, inPort, out.port);
    expect(r2.code).toBe(1);
    expect(r2.error).toMatch(/belongs to application "alphabet" .* not to application "Word Count Application"/);
  }, 60_000);

  it("a checkpoint while the TCP sink is stalled is abandoned with a log line, memory stays bounded, and the next one succeeds", async () => {
    // A receiver that accepts the sink's connection but does not read.
    const sockets: net.Socket[] = [];
    let received = 0;
    const stalled = net.createServer((s) => {
      sockets.push(s);
      s.pause();
      s.on("data", (d) => {
        received += d.length;
      });
    });
    const outPort = await new Promise<number>((r) =>
      stalled.listen(0, "127.0.0.1", () => r((stalled.address() as net.AddressInfo).port)),
    );
    const inPort = await freePort();
    try {
      const e = await run(ALPHABET, inPort, outPort, ["--checkpoint-timeout", "1", "--ring-bytes", "65536"]);
      const n = 1_500_000; // 13.5 MB in, 19.5 MB out: more than the rings and socket buffers hold
      const sender = net.connect(inPort, "127.0.0.1");
      sender.on("error", () => {});
      sender.write(votes(randomVotes(n, 4)));
      const abandoned = await e.waitForLog((l) => /^checkpoint abandoned/.test(l.msg ?? ""), 30_000);
      expect(abandoned.level).toBe(40);
      const rss = e.rssBytes();
      expect(rss).toBeLessThan(600 * 1024 * 1024);
      // Let the receiver read: the backlog drains, and a checkpoint commits again.
      for (const s of sockets) s.resume();
      const mark = e.lines.length;
      await e.waitForLog(isCommitted, 60_000, mark);
      sender.end();
      await new Promise<void>((r) => {
        const t = setInterval(() => {
          if (received >= n * 13) {
            clearInterval(t);
            r();
          }
        }, 100);
      });
      expect(received).toBe(n * 13);
      expect((await e.stop()).code).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      stalled.close();
    }
  }, 120_000);
  it.skipIf(!canMount)(
    "a checkpoint that fails on a full disk while a stop waits for it: the final checkpoint does not claim success (exit 4, LOST), the restart restores the checkpoint before",
    async () => {
      fs.rmSync(dir, { recursive: true, force: true });
      const small = mountSmallFs(1024);
      dir = path.join(small.dir, "store");
      try {
        let out = await startCollector();
        collectors.push(out);
        const outPort = out.port;
        const inPort = await freePort();
        const e = await startEngine(
          ALPHABET,
          [
            "--in",
            `127.0.0.1:${inPort}`,
            "--out",
            `127.0.0.1:${outPort}`,
            "--workers",
            "2",
            "--resilience-dir",
            dir,
            "--checkpoint-interval",
            "0.2",
            "--checkpoint-timeout",
            "60",
          ],
          { waitRunning: false, env: { WALLAROO_LOG_LEVEL: "debug" } },
        );
        engines.push(e);
        await e.waitForLog((l) => /running on/.test(l.msg ?? ""), 20_000);
        await sendBytes(inPort, votes(randomVotes(300, 6)));
        await out.waitFor((b) => b.length >= 300 * 13, 20_000);
        await e.waitForLog(isCommitted, 20_000);

        // The receiver goes away: the sink keeps its outputs in its ring, so the next checkpoint
        // that has new state to write waits for a drain that cannot happen yet.
        await out.close();
        await e.waitForLog((l) => /^connection to .* lost/.test(l.msg ?? ""), 20_000);
        await sendBytes(inPort, votes(randomVotes(100, 7)));
        const started = () => e.lines.filter((l) => /^checkpoint: pausing/.test(l.msg ?? "")).length;
        await sleep(2000);
        const n = started();
        await sleep(1000);
        expect(started(), "a checkpoint is waiting for the drain: no new one starts").toBe(n);
        let before = 0;
        for (const l of e.lines) if (isCommitted(l)) before = l.checkpoint;
        expect(before).toBeGreaterThan(0);

        // The disk fills, the stop comes, then the receiver is back: the waiting checkpoint drains,
        // takes the workers' state and fails to write it.
        small.fill(0);
        const mark = e.lines.length;
        const stopped = e.stop("SIGTERM", 60_000);
        await e.waitForLog((l) => /^stopping: sources stop reading/.test(l.msg ?? ""), 10_000, mark);
        out = await startCollector(outPort);
        collectors.push(out);
        const exit = await stopped;
        const tail = e.stderr().slice(-4000);
        expect(exit, tail).toEqual({ code: 4, signal: null });
        const after = e.lines.slice(mark);
        expect(
          after.some((l) =>
            /^checkpoint failed during the stop \(.*ENOSPC.*the final checkpoint will write its \d+ state instance/.test(
              l.msg ?? "",
            ),
          ),
          tail,
        ).toBe(true);
        expect(
          after.some((l) => /^final checkpoint failed: .*ENOSPC/.test(l.msg ?? "")),
          tail,
        ).toBe(true);
        const last = after.find((l) => /^stopped; LOST:/.test(l.msg ?? ""));
        expect(last, tail).toBeDefined();
        expect(last!.report).toMatchObject({ lost: true, finalCheckpoint: "failed" });
        // the lock could not be marked released: said, not swallowed
        expect(
          after.some((l) => l.level === 40 && /could not mark .*LOCK\.\d+ released .*ENOSPC/.test(l.msg ?? "")),
        ).toBe(true);

        small.unfill();
        const again = await run(ALPHABET, inPort, outPort);
        const restored = await again.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? ""), 1000);
        expect(restored.checkpoint).toBe(before);
        expect((await again.stop()).code).toBe(0);
      } finally {
        for (const e of engines) if (e.child.exitCode === null && e.child.signalCode === null) await e.kill9();
        small.unmount();
      }
    },
    90_000,
  );
  it.skipIf(!canMount)(
    "a periodic checkpoint that cannot be written (full disk) stops the engine (exit 3) naming the file; the restart restores the checkpoint before",
    async () => {
      fs.rmSync(dir, { recursive: true, force: true });
      const small = mountSmallFs(1024);
      dir = path.join(small.dir, "store");
      try {
        const out = await startCollector();
        collectors.push(out);
        const inPort = await freePort();
        const e = await run(ALPHABET, inPort, out.port);
        await sendBytes(inPort, votes(randomVotes(300, 8)));
        await out.waitFor((b) => b.length >= 300 * 13, 20_000);
        await e.waitForLog(isCommitted, 20_000);
        small.fill(0); // not a page left: no MANIFEST can be written from here on
        await sendBytes(inPort, votes(randomVotes(100, 9)));
        const exit = await Promise.race([e.exited, sleep(30_000).then(() => "timeout" as const)]);
        const tail = e.stderr().slice(-4000);
        expect(exit, tail).toEqual({ code: 3, signal: null });
        const fatal = e.lines.find((l) => l.level === 60);
        expect(fatal?.msg, tail).toMatch(
          new RegExp(
            `^stopping: checkpoint could not be written \\(checkpoint store: cannot .* ${dir}/(log-1|MANIFEST\\.tmp): ENOSPC`,
          ),
        );
        let before = 0;
        for (const l of e.lines) if (isCommitted(l)) before = l.checkpoint;
        expect(before).toBeGreaterThan(0);
        small.unfill();
        const again = await run(ALPHABET, inPort, out.port);
        const restored = await again.waitForLog((l) => /^restored checkpoint/.test(l.msg ?? ""), 1000);
        expect(restored.checkpoint).toBe(before);
        expect((await again.stop()).code).toBe(0);
      } finally {
        for (const e of engines) if (e.child.exitCode === null && e.child.signalCode === null) await e.kill9();
        small.unmount();
      }
    },
    60_000,
  );
});
