import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { parseLengthFormat } from "../../src/core/struct.js";
import { FrameReader } from "../../src/core/framing.js";
import { receiveMain, startReceiver, type Receiver } from "../../src/cli/receive.js";
import { sendMain } from "../../src/cli/send.js";

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const dir = mkdtempSync(join(tmpdir(), "wallaroo-send-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, data: string | Buffer): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

let receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  receivers = [];
});

/** A framed receiver that keeps every payload, per connection. */
async function collector(lengthFmt = ">I", port = 0) {
  const byConn = new Map<number, string[]>();
  const r = await startReceiver({
    port,
    framed: true,
    lengthFormat: parseLengthFormat(lengthFmt),
    onMessage: (p, c) => {
      if (!byConn.has(c)) byConn.set(c, []);
      byConn.get(c)!.push(Buffer.from(p).toString("latin1"));
    },
  });
  receivers.push(r);
  return { r, byConn, all: () => [...byConn.values()].flat() };
}

async function runSend(args: string[]) {
  const stderr = new Capture();
  const stdout = new Capture();
  const code = await sendMain(args, { stderr, stdout });
  return { code, stderr: stderr.text, stdout: stdout.text };
}

describe("wallaroo send to a receiver", () => {
  it("frames every line of a text file exactly", async () => {
    const lines = ["hello world", "", "ünïcödé", "x".repeat(70000), "last, without newline"];
    const f = file("lines.txt", lines.join("\n"));
    const { r, all } = await collector();
    const res = await runSend(["--port", String(r.port), "--file", f, "--no-progress"]);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/^sent 5 messages, \d+ bytes in [\d.]+ s \(\d+ msgs\/s/m);
    await r.until(5);
    expect(all()).toEqual(lines.map((l) => Buffer.from(l).toString("latin1")));
    expect(r.stats().bytes).toBe(lines.reduce((n, l) => n + 4 + Buffer.byteLength(l), 0));
  });

  it("honours another header format", async () => {
    const f = file("short.txt", "a\nbb\nccc\n");
    const { r, all } = await collector("<H");
    expect((await runSend(["--port", String(r.port), "--file", f, "--length-fmt", "<H", "--no-progress"])).code).toBe(
      0,
    );
    await r.until(3);
    expect(all()).toEqual(["a", "bb", "ccc"]);
    expect(r.stats().bytes).toBe(3 * 2 + 6);
  });

  it("sends fixed-size binary records, framed or pre-framed", async () => {
    const records = Array.from({ length: 100 }, (_, i) => Buffer.alloc(16, i));
    const f = file("records.bin", Buffer.concat(records));
    const { r, all } = await collector();
    expect(
      (await runSend(["--port", String(r.port), "--binary", f, "--record-size", "16", "--no-progress"])).code,
    ).toBe(0);
    await r.until(100);
    expect(all()).toEqual(records.map((b) => b.toString("latin1")));

    const framed = Buffer.concat(records.map((b) => Buffer.concat([Buffer.from([0, 0, 0, 12]), b.subarray(0, 12)])));
    const g = file("framed.bin", framed);
    const pre = await collector();
    const res = await runSend([
      "--port",
      String(pre.r.port),
      "--binary",
      g,
      "--record-size",
      "16",
      "--pre-framed",
      "--no-progress",
    ]);
    expect(res.code).toBe(0);
    await pre.r.until(100);
    expect(pre.all()).toEqual(records.map((b) => b.subarray(0, 12).toString("latin1")));
  });

  it("--messages stops early, cycles the file with --repeat, and stops at the end without it", async () => {
    const f = file("abc.txt", "a\nb\nc\n");
    const { r, all } = await collector();
    const port = String(r.port);
    expect((await runSend(["--port", port, "--file", f, "--messages", "2", "--no-progress"])).code).toBe(0);
    expect((await runSend(["--port", port, "--file", f, "--messages", "100", "--no-progress"])).code).toBe(0);
    expect((await runSend(["--port", port, "--file", f, "--messages", "10", "--repeat", "--no-progress"])).code).toBe(
      0,
    );
    await r.until(15);
    await new Promise((res) => setTimeout(res, 50));
    expect(all()).toEqual(["a", "b", ..."abc", ..."abcabcabca"]);
  });

  it("--repeat --messages sends a large count from a tiny file", async () => {
    const f = file("one.txt", "m\n");
    const { r } = await collector();
    const res = await runSend([
      "--port",
      String(r.port),
      "--file",
      f,
      "--repeat",
      "--messages",
      "200000",
      "--no-progress",
    ]);
    expect(res.code).toBe(0);
    expect(res.stderr).toContain("sent 200000 messages, 1000000 bytes");
    expect((await r.until(200000)).messages).toBe(200000);
  });

  it("--connections 3 delivers everything and keeps the order within each connection", async () => {
    const n = 30000;
    const f = file("numbers.txt", Array.from({ length: n }, (_, i) => `${i}\n`).join(""));
    const { r, byConn } = await collector();
    const res = await runSend([
      "--port",
      String(r.port),
      "--file",
      f,
      "--connections",
      "3",
      "--batch-bytes",
      "512",
      "--no-progress",
    ]);
    expect(res.code).toBe(0);
    await r.until(n);
    expect(r.stats().connections).toBe(3);
    const seen: number[] = [];
    for (const msgs of byConn.values()) {
      const nums = msgs.map(Number);
      for (let i = 1; i < nums.length; i++) expect(nums[i]).toBeGreaterThan(nums[i - 1]);
      seen.push(...nums);
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  it("--rate sends the asked count", async () => {
    const f = file("rate.txt", "r\n");
    const { r } = await collector();
    const res = await runSend([
      "--port",
      String(r.port),
      "--file",
      f,
      "--repeat",
      "--messages",
      "60",
      "--rate",
      "400",
      "--no-progress",
    ]);
    expect(res.code).toBe(0);
    expect((await r.until(60)).messages).toBe(60);
    await new Promise((res) => setTimeout(res, 50));
    expect(r.stats().messages).toBe(60);
  });

  it("retries connecting until the receiver listens", async () => {
    const port = await freePort();
    const f = file("early.txt", "early\nbird\n");
    const sending = runSend(["--port", String(port), "--file", f, "--no-progress"]);
    await new Promise((res) => setTimeout(res, 300));
    const { r, all } = await collector(">I", port);
    expect((await sending).code).toBe(0);
    await r.until(2);
    expect(all()).toEqual(["early", "bird"]);
  });

  it("a connection the receiver drops mid-stream: the error names the address and how much was sent", async () => {
    // A server that takes the first bytes and then closes: the sender is still writing.
    const server = net.createServer((sock) => sock.once("data", () => sock.resetAndDestroy()));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const f = file("many.txt", `${"x".repeat(1000)}\n`);
      const res = await runSend([
        "--port",
        String(port),
        "--file",
        f,
        "--repeat",
        "--messages",
        "10000000",
        "--no-progress",
      ]);
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(
        new RegExp(
          `connection to 127\\.0\\.0\\.1:${port} lost: .+; \\d+ messages \\(\\d+ bytes\\) had been handed to the connection in`,
        ),
      );
      expect(res.stderr).not.toContain(":?");
    } finally {
      server.close();
    }
  });

  it("gives up after --connect-timeout with a clear error", async () => {
    const port = await freePort();
    const f = file("nobody.txt", "x\n");
    const res = await runSend(["--port", String(port), "--file", f, "--connect-timeout", "0.3", "--no-progress"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`cannot connect to 127.0.0.1:${port} within 0.3 s`);
  });
});

describe("wallaroo receive", () => {
  it("--expect exits 0 once N framed messages arrived, after announcing its port", async () => {
    const stderr = new Capture();
    const receiving = receiveMain(["--port", "0", "--framed", "--expect", "5", "--no-progress"], { stderr });
    const port = await announcedPort(stderr);
    const f = file("five.txt", "1\n2\n3\n4\n5\n");
    expect((await runSend(["--port", String(port), "--file", f, "--no-progress"])).code).toBe(0);
    expect(await receiving).toBe(0);
    expect(stderr.text.split("\n")[0]).toBe(`listening on 127.0.0.1:${port}`);
    expect(stderr.text).toMatch(/received 5 messages, 25 bytes over 1 connection in /);
    // everything came in one read: no rate of "0 messages/s"
    expect(stderr.text).not.toMatch(/ 0 messages\/s/);
  });

  it("writes what arrives to --output and counts lines", async () => {
    const out = join(dir, "out.txt");
    const stderr = new Capture();
    const receiving = receiveMain(["--port", "0", "--output", out, "--expect", "3", "--no-progress"], { stderr });
    const port = await announcedPort(stderr);
    const sock = net.connect(port, "127.0.0.1");
    sock.write("one\ntw");
    setTimeout(() => sock.end("o\nthree\n"), 50);
    expect(await receiving).toBe(0);
    sock.destroy();
    expect(readFileSync(out, "utf8")).toBe("one\ntwo\nthree\n");
    expect(stderr.text).toMatch(/received 3 lines, 14 bytes/);
  });

  it("--output FILE is emptied first; --append adds to it", async () => {
    const out = join(dir, "again.txt");
    writeFileSync(out, "old\n");
    for (const [extra, want] of [
      [[], "new\n"],
      [["--append"], "new\nnew\n"],
    ] as const) {
      const stderr = new Capture();
      const receiving = receiveMain(["--port", "0", "--output", out, ...extra, "--expect", "1", "--no-progress"], {
        stderr,
      });
      const port = await announcedPort(stderr);
      net.connect(port, "127.0.0.1").end("new\n");
      expect(await receiving).toBe(0);
      expect(readFileSync(out, "utf8")).toBe(want);
      expect(stderr.text).toMatch(
        /received 1 line, 4 bytes over 1 connection in [\d.]+ s \(all of it in one read: too fast to measure a rate\)/,
      );
    }
    const bad = new Capture();
    expect(await receiveMain(["--port", "0", "--append"], { stderr: bad })).toBe(2);
    expect(bad.text).toContain("--append needs --output FILE");
  });

  it("--idle-timeout exits after silence, 1 when --expect was missed", async () => {
    const stderr = new Capture();
    const receiving = receiveMain(["--port", "0", "--idle-timeout", "0.2", "--expect", "10", "--no-progress"], {
      stderr,
    });
    const port = await announcedPort(stderr);
    net.connect(port, "127.0.0.1").end("only\n");
    expect(await receiving).toBe(1);
    expect(stderr.text).toContain("with 1 of the 10 expected lines");
  });

  it("counts frames split anywhere across chunks", () => {
    const payloads = ["", "a", "hello", "x".repeat(300)];
    const lf = parseLengthFormat(">H");
    const wire = Buffer.concat(
      payloads.map((p) => {
        const h = Buffer.alloc(2);
        lf.write(h, 0, p.length);
        return Buffer.concat([h, Buffer.from(p)]);
      }),
    );
    const got: string[] = [];
    const fc = new FrameReader(lf, (p) => got.push(p.toString()));
    let count = 0;
    for (let i = 0; i < wire.length; i += 3) count += fc.push(wire.subarray(i, i + 3));
    expect(count).toBe(4);
    expect(got).toEqual(payloads);
  });
});

describe("flags", () => {
  it("--help explains and exits 0", async () => {
    const s = await runSend(["--help"]);
    expect(s.code).toBe(0);
    for (const flag of [
      "--host",
      "--port",
      "--file",
      "--binary",
      "--record-size",
      "--messages",
      "--repeat",
      "--rate",
      "--connections",
      "--header-length",
      "--length-fmt",
      "--batch-bytes",
      "--connect-timeout",
      "--no-progress",
      "Example",
    ]) {
      expect(s.stdout).toContain(flag);
    }
    const stdout = new Capture();
    expect(await receiveMain(["--help"], { stdout })).toBe(0);
    for (const flag of ["--output", "--count-only", "--framed", "--expect", "--idle-timeout", "Example"])
      expect(stdout.text).toContain(flag);
  });

  it.each([
    [["--port", "1", "--file", "f", "--bogus"], "unknown flag --bogus"],
    [["--port", "nope", "--file", "f"], "--port must be an integer from 1 to 65535, got 'nope'"],
    [["--file", "f"], "--port is required"],
    [["--port", "1"], "give exactly one of --file"],
    [["--port", "1", "--binary", "f"], "--binary needs --record-size"],
    [["--port", "1", "--file", "f", "--rate", "0"], "--rate must be a number > 0, got '0'"],
    [
      ["--port", "1", "--file", "f", "--header-length", "2", "--length-fmt", ">I"],
      "--header-length 2 does not match --length-fmt '>I'",
    ],
    [["--port", "1", "--file", "/no/such/file"], "cannot read --file /no/such/file"],
  ])("send %j exits 2", async (args, message) => {
    const res = await runSend(args);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(message);
  });

  it.each([
    [["--port", "0", "--expect", "zero"], "--expect must be an integer >= 1, got 'zero'"],
    [["--port", "0", "--length-fmt", ">H"], "only apply with --framed"],
    [["--port", "0", "--output", "x", "--count-only"], "not both"],
    [["--port", "0", "--framed", "--length-fmt", "I>"], "--length-fmt: "],
    [["--port", "0", "--what"], "unknown flag --what"],
  ])("receive %j exits 2", async (args, message) => {
    const stderr = new Capture();
    expect(await receiveMain(args, { stderr })).toBe(2);
    expect(stderr.text).toContain(message);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function announcedPort(stderr: Capture): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const m = /^listening on [^\n]*:(\d+)\n/.exec(stderr.text);
    if (m) return Number(m[1]);
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`no "listening on" line; stderr: ${stderr.text}`);
}
