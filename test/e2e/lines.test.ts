/**
 * "lines" framing of the TCP source, end to end (engine as a CLI child process, raw
 * sockets on loopback): `\n` and `\r\n` lines, a line cut across TCP reads, a last
 * line without a newline, and a line over --max-frame-bytes refused alone (logged,
 * the lines around it on the same connection kept).
 */
import net from "node:net";
import { describe, expect, it } from "vitest";
import { freePort, startCollector } from "../helpers/net.js";
import { fixture, sleep, startEngine } from "../helpers/engine.js";

async function connect(port: number): Promise<net.Socket> {
  for (let i = 0; ; i++) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.off("error", reject);
          resolve(s);
        });
        s.on("error", reject);
      });
    } catch (e) {
      if (i > 100) throw e;
      await sleep(50);
    }
  }
}

const write = (s: net.Socket, data: string) => new Promise<void>((r) => s.write(data, () => r()));

describe('TCP source with { framing: "lines" }', () => {
  it("passes each line on, strips \\r, keeps lines cut across reads, refuses only the over-long line", async () => {
    const out = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(fixture("lines-app.ts"), [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${out.port}`,
      "--max-frame-bytes",
      "64",
    ]);
    try {
      const s = await connect(inPort);
      s.setNoDelay(true);
      await write(s, "one\r\ntwo\n");
      await write(s, `${"x".repeat(200)}\n`);
      // A line in three writes (the pauses make separate reads likely; core/line-framer.test.ts
      // covers every cut point deterministically), its \r and \n in different writes.
      await write(s, "thr");
      await sleep(50);
      await write(s, "ee\r");
      await sleep(50);
      await write(s, "\nfour");
      // a line of exactly the limit passes; the limit + 1 does not
      await write(s, `\n${"y".repeat(64)}\r\n${"z".repeat(65)}\n`);
      // the last line has no newline: it counts once the sender finishes
      await new Promise<void>((r) => s.end("last", () => r()));
      const got = await out.waitForLines(6);
      expect(got).toEqual(["one #1", "two #2", "three #3", "four #4", `${"y".repeat(64)} #5`, "last #6"]);
      const refused = engine.logs().filter((l) => typeof l.msg === "string" && /line of \d+\+ bytes/.test(l.msg));
      expect(refused.length).toBe(2);
      expect(refused[1]!.tooLongLines).toBe(2);
      // the connection was not closed by the long lines: it sent everything above, and closing
      // it logged a normal close after its 6 lines
      await engine.waitForLog((l) => l.msg === `connection ${String(refused[0]!.connection)} closed after 6 messages`);
      const exit = await engine.stop();
      expect(exit.code).toBe(0);
    } finally {
      engine.kill();
      await out.close();
    }
  });
  it("unfinished lines of many connections stay within the source's buffer budget, and every line completes", async () => {
    const out = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(
      fixture("lines-app.ts"),
      ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${out.port}`, "--max-frame-bytes", "1000"],
      { env: { WALLAROO_TCP_SOURCE_BUFFER_BYTES: "2000" } },
    );
    try {
      const n = 10;
      const sockets = await Promise.all(Array.from({ length: n }, () => connect(inPort)));
      // 10 x 900 bytes of unfinished lines: over the 2000-byte budget, so all but one connection are paused
      await Promise.all(sockets.map((s, i) => write(s, `c${i} ${"x".repeat(896)}`)));
      await engine.waitForLog((l) => l.msg !== undefined && /over this source's 2000-byte budget/.test(String(l.msg)));
      await Promise.all(sockets.map((s, i) => new Promise<void>((r) => s.end(`\nend ${i}\n`, () => r()))));
      const got = await out.waitForLines(2 * n);
      for (let i = 0; i < n; i++) {
        const mine = got.filter((l) => l.startsWith(`c${i} `) || l.startsWith(`end ${i} `));
        expect(mine.length, `connection ${i}`).toBe(2);
        expect(mine[0]).toMatch(new RegExp(`^c${i} x{896} #\\d+$`));
      }
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
      await out.close();
    }
  });
});
