/**
 * The metrics server's limits (issue 24 item 7), end to end: the engine run through the CLI
 * with --metrics-port 0, hostile clients on real loopback sockets. Half requests are closed
 * after --metrics-timeout; connections beyond --metrics-max-connections are closed on accept
 * while the data path and, once the holders leave, /metrics work; an /events client that
 * never reads is disconnected while another keeps receiving. Each is counted in /metrics and
 * logged (rate-limited: the lines shown plus the counts of the suppressed ones add up).
 */
import { describe, expect, it } from "vitest";
import net from "node:net";
import { example, startEngine, type Engine, type LogLine } from "../helpers/engine.js";
import { frame, freePort, sendBytes, startCollector, type Collector } from "../helpers/net.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function withEngine(
  extra: string[],
  body: (e: Engine, base: string, sink: Collector, inPort: number) => Promise<void>,
  env: Record<string, string> = {},
): Promise<Engine> {
  const sink = await startCollector(0, { keep: true });
  const inPort = await freePort();
  const engine = await startEngine(
    example("word_count"),
    [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${sink.port}`,
      "--workers",
      "1",
      "--metrics-port",
      "0",
      ...extra,
    ],
    { env },
  );
  try {
    const line = await engine.waitForLog((l) => typeof l.dashboard === "string", 10_000);
    await body(engine, String(line.dashboard), sink, inPort);
    const exit = await engine.stop("SIGTERM");
    expect(exit, engine.stderr().slice(-2000)).toEqual({ code: 0, signal: null });
  } finally {
    engine.kill();
    await sink.close();
  }
  return engine;
}

/** A raw connection to the metrics server: what it received, and whether the server closed it. */
interface Raw {
  socket: net.Socket;
  received(): string;
  closed: Promise<void>;
  isClosed(): boolean;
}

async function rawConnect(port: number, send?: string): Promise<Raw> {
  const socket = net.connect(port, "127.0.0.1");
  let data = "";
  let isClosed = false;
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => {
    data += d;
  });
  socket.on("error", () => {}); // a reset is a close too
  const closed = new Promise<void>((r) =>
    socket.on("close", () => {
      isClosed = true;
      r();
    }),
  );
  await new Promise<void>((r, j) => {
    socket.once("connect", r);
    socket.once("error", j);
  });
  if (send !== undefined) socket.write(send);
  return { socket, received: () => data, closed, isClosed: () => isClosed };
}

/** Resolves once every promise has, or after `ms` (the caller then asserts on what happened). */
const settleWithin = (ps: Promise<void>[], ms: number) => Promise.race([Promise.all(ps), sleep(ms)]);

async function scrape(base: string): Promise<Map<string, number>> {
  const res = await fetch(`${base}metrics`);
  expect(res.status).toBe(200);
  const m = new Map<string, number>();
  for (const l of (await res.text()).split("\n")) {
    if (l.startsWith("#") || l.trim() === "") continue;
    const at = l.lastIndexOf(" ");
    m.set(l.slice(0, at), Number(l.slice(at + 1)));
  }
  return m;
}

/** Events logged of one kind: lines shown plus the counts the summary lines give for the others. */
function loggedEvents(lines: LogLine[], kind: string): number {
  return lines
    .filter((l) => l.kind === kind)
    .reduce((n, l) => n + (typeof l.suppressed === "number" ? l.suppressed : 1), 0);
}

const portOf = (base: string) => Number(new URL(base).port);

describe("metrics server limits", () => {
  it("closes connections that do not send a whole request within --metrics-timeout (408), and counts them", async () => {
    const engine = await withEngine(["--metrics-timeout", "0.5"], async (e, base) => {
      const port = portOf(base);
      const half = await Promise.all(
        Array.from({ length: 40 }, () => rawConnect(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n")),
      );
      const silent = await rawConnect(port); // connects and sends nothing
      const all = [...half, silent];
      await settleWithin(
        all.map((r) => r.closed),
        20_000,
      );
      expect(all.filter((r) => r.isClosed()).length).toBe(all.length);
      for (const r of all) expect(r.received()).toMatch(/^HTTP\/1\.1 408 /);
      const m = await scrape(base);
      expect(m.get("wallaroo_metrics_request_timeouts_total")).toBe(all.length);
      await e.waitForLog((l) => l.kind === "metrics-timeout");
    });
    // At stop the suppressed lines are summed up: the log accounts for every one.
    expect(loggedEvents(engine.lines, "metrics-timeout")).toBe(41);
  });

  it("closes connections over --metrics-max-connections at once while a source connection works; /metrics counts them", async () => {
    let refused = 0;
    const engine = await withEngine(
      ["--metrics-max-connections", "8", "--metrics-timeout", "120"],
      async (_e, base, sink, inPort) => {
        const port = portOf(base);
        // Connected one after the other, so these are the first 8 the server accepts; each sends half a request.
        const holders: Raw[] = [];
        for (let i = 0; i < 8; i++) holders.push(await rawConnect(port, "GET /metrics HTTP/1.1\r\n"));
        const excess = await Promise.all(
          Array.from({ length: 30 }, () => rawConnect(port, "GET /metrics HTTP/1.1\r\n")),
        );
        await settleWithin(
          excess.map((r) => r.closed),
          20_000,
        );
        expect(excess.filter((r) => r.isClosed()).length).toBe(30);
        for (const r of excess) expect(r.received()).toBe(""); // closed unanswered: nothing was read
        // The data path is unaffected while the metrics server is full.
        await sendBytes(inPort, frame(["limits hold", "limits hold"]));
        await sink.waitForLines(4);
        expect(sink.lines().sort()).toEqual(["hold => 1", "hold => 2", "limits => 1", "limits => 2"]);
        expect(holders.filter((r) => r.isClosed()).length).toBe(0);
        // Once the holders leave, /metrics answers again and reports what was refused.
        for (const r of holders) r.socket.destroy();
        let m: Map<string, number> | null = null;
        let refusedScrapes = 0;
        for (let i = 0; i < 100 && m === null; i++) {
          // A scrape may still find the holders' slots taken (the server sees them close a moment
          // later): it is refused, and counted, like the others.
          m = await scrape(base).catch(() => null);
          if (m === null) {
            refusedScrapes++;
            await sleep(100);
          }
        }
        expect(m).not.toBeNull();
        expect(m!.get("wallaroo_metrics_connections_refused_total")).toBe(30 + refusedScrapes);
        refused = 30 + refusedScrapes;
      },
    );
    expect(engine.lines.some((l) => l.kind === "metrics-refused" && /refused, already 8 open/.test(l.msg ?? ""))).toBe(
      true,
    );
    expect(loggedEvents(engine.lines, "metrics-refused")).toBe(refused);
  });

  it("disconnects an /events client that does not read while another keeps receiving", async () => {
    const engine = await withEngine(
      ["--metrics-timeout", "1"],
      async (e, base) => {
        const port = portOf(base);
        // A client that asks for the event stream and then never reads it.
        const stuck = await rawConnect(port);
        stuck.socket.pause();
        stuck.socket.write("GET /events HTTP/1.1\r\nHost: x\r\n\r\n");
        // A client that reads every event.
        const res = await fetch(`${base}events`);
        expect(res.status).toBe(200);
        const reader = res.body!.getReader();
        let events = 0;
        let reading = true;
        const readAll = (async () => {
          const dec = new TextDecoder();
          while (reading) {
            const { value, done } = await reader.read();
            if (done) break;
            events += dec.decode(value, { stream: true }).split("\n\n").length - 1;
          }
        })();
        await e.waitForLog((l) => l.kind === "metrics-sse", 60_000);
        const m = await scrape(base);
        expect(m.get("wallaroo_metrics_sse_clients_dropped_total")).toBe(1);
        // The reader is still served: more events arrive after the drop.
        const before = events;
        for (let i = 0; i < 200 && events <= before + 5; i++) await sleep(50);
        expect(events).toBeGreaterThan(before + 5);
        // The stuck client's connection was closed: reading what was queued for it ends in the server's FIN.
        stuck.socket.resume();
        await settleWithin([stuck.closed], 20_000);
        expect(stuck.isClosed()).toBe(true);
        reading = false;
        await reader.cancel();
        await readAll;
        expect((await scrape(base)).get("wallaroo_metrics_sse_clients_dropped_total")).toBe(1);
      },
      // An event every millisecond instead of every second: loopback's socket buffers take about
      // 4 MB before write() refuses (an hour of 1 kB events a second), here a few seconds.
      { WALLAROO_METRICS_TICK_MS: "1" },
    );
    expect(loggedEvents(engine.lines, "metrics-sse")).toBe(1);
  });
});
