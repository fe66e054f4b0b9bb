/**
 * `wallaroo send --lines` / `wallaroo receive --lines` (real sockets on loopback): lines
 * go out newline-delimited and come back split, alone and through an engine whose TCP
 * source has { framing: "lines" }.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import { LineReader } from "../../src/core/framing.js";
import { receiveMain, startReceiver } from "../../src/cli/receive.js";
import { sendMain } from "../../src/cli/send.js";
import { freePort } from "../helpers/net.js";
import { fixture, startEngine } from "../helpers/engine.js";

class Capture extends Writable {
  text = "";
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const dir = mkdtempSync(join(tmpdir(), "wallaroo-lines-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, data: string): string {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
}

describe("send --lines / receive --lines", () => {
  it("sends each line newline-delimited; the receiver splits them, \\r\\n and a last line without \\n included", async () => {
    const got: string[] = [];
    const r = await startReceiver({ lines: true, onMessage: (p) => got.push(p.toString()) });
    try {
      const f = file("in.txt", "alpha\r\nbeta\n\ngamma");
      const err = new Capture();
      expect(await sendMain(["--port", String(r.port), "--file", f, "--lines", "--no-progress"], { stderr: err })).toBe(
        0,
      );
      expect(err.text).toMatch(/^sent 4 messages, 19 bytes/);
      await r.until(4);
      expect(got).toEqual(["alpha", "beta", "", "gamma"]);
      expect(r.stats().bytes).toBe(19);
    } finally {
      await r.close();
    }
  });

  it("--repeat --messages counts lines", async () => {
    const r = await startReceiver({ lines: true });
    try {
      const f = file("two.txt", "a\nb\n");
      expect(
        await sendMain(
          ["--port", String(r.port), "--file", f, "--lines", "--repeat", "--messages", "1001", "--no-progress"],
          { stderr: new Capture() },
        ),
      ).toBe(0);
      const s = await r.until(1001);
      expect(s.bytes).toBe(1001 * 2);
    } finally {
      await r.close();
    }
  });

  it("a LineReader splits lines cut anywhere, and end() passes on a last line without \\n", () => {
    const text = Buffer.from("one\r\ntwo\n\nthree");
    for (let i = 0; i <= text.length; i++) {
      const got: string[] = [];
      const lr = new LineReader((l) => got.push(l.toString()));
      const n = lr.push(text.subarray(0, i)) + lr.push(text.subarray(i)) + lr.end();
      expect(got, `cut at ${i}`).toEqual(["one", "two", "", "three"]);
      expect(n).toBe(4);
    }
    const counting = new LineReader();
    expect(counting.push(Buffer.from("a\nb\n")) + counting.end()).toBe(2);
  });

  it('through an engine: send --lines -> TCP source { framing: "lines" } -> TCP sink -> receive --lines', async () => {
    const outPort = await freePort();
    const inPort = await freePort();
    const out = join(dir, "received.txt");
    const err = new Capture();
    const receiving = receiveMain(
      ["--port", String(outPort), "--lines", "--expect", "3000", "--output", out, "--no-progress"],
      { stderr: err },
    );
    const engine = await startEngine(fixture("lines-app.ts"), [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${outPort}`,
    ]);
    try {
      const lines = Array.from({ length: 3000 }, (_, i) => `row ${i}${i % 2 ? "\r" : ""}`).join("\n");
      const f = file("rows.txt", lines);
      expect(
        await sendMain(["--port", String(inPort), "--file", f, "--lines", "--no-progress"], { stderr: new Capture() }),
      ).toBe(0);
      expect(await receiving).toBe(0);
      expect(err.text).toMatch(/received 3000 lines/);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
    }
  });

  it("refuses --lines where it does not apply", async () => {
    const f = file("x.txt", "x\n");
    const cases: [typeof sendMain, string[], RegExp][] = [
      [sendMain, ["--port", "1", "--binary", f, "--record-size", "1", "--lines"], /--lines only applies to --file/],
      [sendMain, ["--port", "1", "--file", f, "--lines", "--length-fmt", ">H"], /do not apply with --lines/],
      [receiveMain, ["--port", "0", "--framed", "--lines"], /--framed or --lines, not both/],
    ];
    for (const [main, argv, why] of cases) {
      const err = new Capture();
      expect(await main(argv, { stderr: err })).toBe(2);
      expect(err.text).toMatch(why);
    }
  });
});
