/**
 * --dead-letter DIR end to end (engine as a CLI child process, 2 workers, real
 * sockets on loopback, real files): every message dropped because user code threw
 * is in DIR/worker-N.jsonl exactly once, with its pipeline and step; every other
 * message reaches the sink. The faulty mode of e2e-app throws in the decoder, the
 * computation, the partition function and the encoder (the encoder runs on the
 * state's owner, often after the message crossed to the other worker, where the
 * record carries the value instead of the raw bytes).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { fixture, sleep, startEngine } from "../helpers/engine.js";

const KINDS = ["bad-decode", "bad-compute", "bad-partition", "bad-encode"] as const;
const STEP: globalThis.Record<(typeof KINDS)[number], RegExp> = {
  "bad-decode": /^decoder$/,
  "bad-compute": /^computation "faulty compute"$/,
  "bad-partition": /^partition function of state "key counts"$/,
  "bad-encode": /^encoder of sink "faulty -> tcp 127\.0\.0\.1:\d+"$/,
};

interface DL {
  worker: number;
  pipeline: string | null;
  step: string | null;
  where: string;
  error: string;
  stack: string[];
  payload?: string;
  value?: { text?: string } | string;
}

function readRecords(dir: string): { file: string; rec: DL }[] {
  return readdirSync(dir)
    .filter((f) => /^worker-\d+\.jsonl(\.1)?$/.test(f))
    .flatMap((file) =>
      readFileSync(join(dir, file), "utf8")
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => ({ file, rec: JSON.parse(l) as DL })),
    );
}

/** The message a record is about: the raw payload, or the text of the value that crossed workers. */
function messageOf(rec: DL): string {
  if (rec.payload !== undefined) return Buffer.from(rec.payload, "base64").toString("utf8");
  const v = rec.value;
  if (typeof v === "object" && v !== null && typeof v.text === "string") return v.text;
  if (typeof v === "string") return v.trim();
  throw new Error(`record without payload or value: ${JSON.stringify(rec)}`);
}

async function run(messages: string[], extra: string[], dir: string) {
  const sink = await startCollector();
  const inPort = await freePort();
  const engine = await startEngine(fixture("e2e-app.ts"), [
    "--in",
    `127.0.0.1:${inPort}`,
    "--out",
    `127.0.0.1:${sink.port}`,
    "--workers",
    "2",
    "--mode",
    "faulty",
    "--dead-letter",
    dir,
    ...extra,
  ]);
  try {
    // two connections, so that both workers take source input
    const half = messages.length >> 1;
    await Promise.all([
      sendBytes(inPort, frame(messages.slice(0, half))),
      sendBytes(inPort, frame(messages.slice(half))),
    ]);
    const good = messages.filter((m) => m.startsWith("ok")).length;
    await sink.waitForLines(good);
    await sleep(300);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
    return { lines: sink.lines(), engine };
  } finally {
    engine.kill();
    await sink.close();
  }
}

it("every message dropped by user code is in the dead-letter files exactly once, with its pipeline and step; the rest reach the sink", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wallaroo-dl-"));
  try {
    const messages = Array.from({ length: 4000 }, (_, i) =>
      i % 10 === 5 ? `${KINDS[((i / 10) | 0) % 4]} ${i} k${i % 7}` : `ok ${i} k${i % 7}`,
    );
    const bad = messages.filter((m) => !m.startsWith("ok"));
    const { lines, engine } = await run(messages, [], dir);

    // the sink got every good message once (the state counts per key; only the text before " #" matters here)
    const got = lines.map((l) => l.slice(0, l.lastIndexOf(" #")));
    expect([...got].sort()).toEqual(messages.filter((m) => m.startsWith("ok")).sort());

    const recs = readRecords(dir);
    const byMessage = new Map<string, DL[]>();
    for (const { rec } of recs) {
      const m = messageOf(rec);
      byMessage.set(m, [...(byMessage.get(m) ?? []), rec]);
    }
    expect(recs.length).toBe(bad.length);
    expect([...byMessage.keys()].sort()).toEqual([...bad].sort());
    for (const m of bad) {
      const [rec] = byMessage.get(m)!;
      expect(byMessage.get(m)!.length, m).toBe(1);
      const kind = m.split(" ")[0] as (typeof KINDS)[number];
      expect(rec.pipeline, m).toBe("faulty");
      expect(rec.step, m).toMatch(STEP[kind]);
      expect(rec.error, m).toContain("refuses");
      expect(rec.stack[0], m).toMatch(/^Error: /);
      expect(rec.stack.length, m).toBeGreaterThan(1);
    }
    // both workers wrote (each to its own file), and the encoder failures on the state's owner
    // include messages that crossed workers, recorded by value
    expect(new Set(recs.map((r) => r.file))).toEqual(new Set(["worker-0.jsonl", "worker-1.jsonl"]));
    expect(recs.some((r) => r.rec.value !== undefined)).toBe(true);
    // the stop says where the drops went
    expect(engine.stderr()).toContain(
      `${bad.length} message(s) dropped on errors in user code; each is in ${dir}/worker-N.jsonl`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

it("--dead-letter-max-bytes: a full file moves to .1 (logged), the disk use stays under twice the limit", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wallaroo-dl-"));
  try {
    const limit = 20_000;
    const messages = Array.from({ length: 2000 }, (_, i) =>
      i % 2 === 0 ? `bad-compute ${i} k${i % 5}` : `ok ${i} k${i % 5}`,
    );
    const { engine } = await run(messages, ["--dead-letter-max-bytes", String(limit)], dir);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).size, f).toBeLessThanOrEqual(limit);
    expect(existsSync(join(dir, "worker-0.jsonl.1")) || existsSync(join(dir, "worker-1.jsonl.1"))).toBe(true);
    const warn = engine
      .logs()
      .find((l) => typeof l.msg === "string" && /dead-letter file .* reached 20000 bytes: moved to .*\.1/.test(l.msg));
    expect(warn, engine.stderr().slice(-3000)).toBeDefined();
    // what is kept is the newest drops: the last bad message of each worker's input is there
    const kept = new Set(readRecords(dir).map((r) => messageOf(r.rec)));
    expect(kept.has("bad-compute 998 k3") || kept.has("bad-compute 1998 k3")).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

it("dead letters that cannot be written (file-size limit: short writes, then EFBIG) are counted: the stop says how many were written and not, exit code 4", async () => {
  const dir = mkdtempSync(join(tmpdir(), "wallaroo-dl-"));
  const sink = await startCollector();
  const inPort = await freePort();
  // RLIMIT_FSIZE 16 KiB on the engine: every write past it fails (after a short write), as on a full disk
  const engine = await startEngine(
    fixture("e2e-app.ts"),
    [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "2",
      "--mode",
      "faulty",
      "--dead-letter",
      dir,
    ],
    { fileSizeLimitKiB: 16 },
  );
  try {
    const bad = 2000;
    // each half ends with a good message: once both reach the sink, every poison message before them was processed
    const half = (h: number) => [
      ...Array.from({ length: bad / 2 }, (_, i) => `bad-compute ${h * bad + i} k${i % 5}`),
      `ok end${h} k0`,
    ];
    await Promise.all([sendBytes(inPort, frame(half(0))), sendBytes(inPort, frame(half(1)))]);
    await sink.waitForLines(2);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 4, signal: null });

    // no record is cut off: every line of every file parses, and the files stayed under the limit
    const recs = readRecords(dir);
    for (const f of readdirSync(dir)) expect(statSync(join(dir, f)).size, f).toBeLessThanOrEqual(16 * 1024);
    expect(recs.length).toBeGreaterThan(0);
    expect(recs.length).toBeLessThan(bad);

    const logs = engine.logs();
    // the stop's line: how many were written, how many not, and why
    const summary = logs.find((l) => typeof l.msg === "string" && / NOT written \(/.test(l.msg));
    expect(summary, engine.stderr().slice(-3000)).toBeDefined();
    expect(summary!.written).toBe(recs.length);
    expect(summary!.notWritten).toBe(bad - recs.length);
    expect(summary!.msg).toContain(
      `${bad} message(s) dropped on errors in user code; ${recs.length} written to ${dir}/worker-N.jsonl`,
    );
    expect(summary!.msg).toMatch(/EFBIG/);
    expect(engine.stderr()).not.toContain("each is in");
    // the StopReport counts them as lost
    const stopped = logs.find((l) => typeof l.msg === "string" && l.msg.startsWith("stopped; LOST:"));
    expect(stopped, engine.stderr().slice(-3000)).toBeDefined();
    expect((stopped!.report as { deadLettersNotWritten: number }).deadLettersNotWritten).toBe(bad - recs.length);
    expect(stopped!.msg).toContain(`${bad - recs.length} dead letter(s) could not be written`);
    // the write errors are rate-limited (not one line per message), and the lines' counts add up
    const failures = logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("cannot write a dead letter"));
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.length).toBeLessThan(100);
  } finally {
    engine.kill();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
