/** Loopback helpers for end-to-end tests: free ports, a collecting receiver, a framed sender. */
import net from "node:net";

export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface Collector {
  readonly port: number;
  bytes(): Buffer;
  lines(): string[];
  /** resolves once `done(bytes)` is true; rejects after timeoutMs with what arrived so far */
  waitFor(done: (bytes: Buffer) => boolean, timeoutMs?: number): Promise<void>;
  waitForLines(n: number, timeoutMs?: number): Promise<string[]>;
  /** resolves once at least n bytes have arrived (cheap: does not look at the bytes) */
  waitForBytes(n: number, timeoutMs?: number): Promise<void>;
  /** bytes received so far (cheap) */
  received(): number;
  connections(): number;
  /** stops reading from every connection (present and future): the kernel buffers fill, then the sender blocks */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export async function startCollector(
  port = 0,
  opts: { onData?: (d: Buffer) => void; keep?: boolean } = {},
): Promise<Collector> {
  let paused = false;
  const chunks: Buffer[] = [];
  let total = 0;
  let newlines = 0;
  let conns = 0;
  const sockets = new Set<net.Socket>();
  let waiters: (() => void)[] = [];
  const srv = net.createServer((s) => {
    conns++;
    sockets.add(s);
    if (paused) s.pause();
    s.on("data", (d) => {
      opts.onData?.(d);
      if (opts.keep !== false) chunks.push(d);
      total += d.length;
      newlines += countNewlines(d);
      const w = waiters;
      waiters = [];
      w.forEach((f) => f());
    });
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
  });
  await new Promise<void>((r) => srv.listen(port, "127.0.0.1", r));
  const bytes = () => {
    if (chunks.length > 1) {
      const all = Buffer.concat(chunks, total);
      chunks.length = 0;
      chunks.push(all);
    }
    return chunks[0] ?? Buffer.alloc(0);
  };
  const lines = () =>
    bytes()
      .toString("utf8")
      .split("\n")
      .filter((l) => l.length > 0);
  const waitUntil = (done: () => boolean, timeoutMs = 20_000) =>
    new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`timed out; received ${total} bytes`)), timeoutMs);
      const check = () => {
        if (done()) {
          clearTimeout(deadline);
          resolve();
        } else waiters.push(check);
      };
      check();
    });
  const waitFor = (done: (b: Buffer) => boolean, timeoutMs = 20_000) => waitUntil(() => done(bytes()), timeoutMs);
  return {
    port: (srv.address() as net.AddressInfo).port,
    bytes,
    lines,
    waitFor,
    waitForLines: async (n, timeoutMs) => {
      await waitUntil(() => newlines >= n, timeoutMs);
      return lines();
    },
    waitForBytes: (n, timeoutMs) => waitUntil(() => total >= n, timeoutMs),
    received: () => total,
    connections: () => conns,
    pause: () => {
      paused = true;
      sockets.forEach((s) => s.pause());
    },
    resume: () => {
      paused = false;
      sockets.forEach((s) => s.resume());
    },
    close: () =>
      new Promise<void>((r) => {
        sockets.forEach((s) => s.destroy());
        srv.close(() => r());
      }),
  };
}

function countNewlines(b: Buffer): number {
  let n = 0;
  for (let i = b.indexOf(10); i >= 0; i = b.indexOf(10, i + 1)) n++;
  return n;
}

/** One 4-byte big-endian length header per payload, as the default decoder expects. */
export function frame(payloads: (Buffer | string)[]): Buffer {
  return Buffer.concat(
    payloads.map((p) => {
      const b = typeof p === "string" ? Buffer.from(p) : p;
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length);
      return Buffer.concat([h, b]);
    }),
  );
}

/** Connects (retrying until the engine listens), writes, and closes the connection. */
export async function sendBytes(port: number, data: Buffer, host = "127.0.0.1"): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(port, host);
        s.on("error", reject);
        s.on("connect", () => s.end(data, () => resolve()));
      });
      return;
    } catch (err) {
      if (attempt > 100) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
