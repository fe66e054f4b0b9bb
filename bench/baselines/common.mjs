// Plumbing shared by the baselines (not the work itself): the engine's command line
// (--in H:P[,H:P] --out H:P [--threads N]), TCP sources cut into whole frames (4-byte BE
// length header), one TCP sink connection, and backpressure: every source pauses while the
// sink's socket buffer is full or while the caller says it is busy (`gate`).
import net from "node:net";

export function parseCli(argv = process.argv.slice(2)) {
  const o = { in: [], out: null, threads: 2 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    if (argv[i] === "--in") {
      o.in = v.split(",").map(hp);
      i++;
    } else if (argv[i] === "--out") {
      o.out = hp(v);
      i++;
    } else if (argv[i] === "--threads") {
      o.threads = Number(v);
      i++;
    }
  }
  if (!o.in.length || !o.out) throw new Error("usage: --in H:P[,H:P] --out H:P [--threads N]");
  return o;
}

function hp(s) {
  const i = s.lastIndexOf(":");
  return [s.slice(0, i), Number(s.slice(i + 1))];
}

/** Pauses every source socket while any reason holds; `set(reason, on)`. */
export class Gate {
  sockets = new Set();
  reasons = new Set();
  set(reason, on) {
    const was = this.reasons.size > 0;
    on ? this.reasons.add(reason) : this.reasons.delete(reason);
    const now = this.reasons.size > 0;
    if (was !== now) for (const s of this.sockets) now ? s.pause() : s.resume();
  }
}

/** Connects to the sink (retrying until it is up); `write(buf|string)` blocks the gate while the buffer is full. */
export function connectSink([host, port], gate) {
  return new Promise((resolve) => {
    const attempt = () => {
      const s = net.connect(port, host);
      s.once("error", () => {
        s.destroy();
        setTimeout(attempt, 50);
      });
      s.once("connect", () => {
        s.removeAllListeners("error");
        s.on("error", (e) => {
          console.error(`sink: ${e.message}`);
          process.exit(1);
        });
        s.on("drain", () => gate.set("sink", false));
        resolve({
          write: (data) => {
            if (!s.write(data)) gate.set("sink", true);
          },
        });
      });
    };
    attempt();
  });
}

/**
 * Listens on [host, port]; for every socket read calls onFrames(buf, end, ctx): buf[0..end) holds
 * whole frames (header included). `ctx` is per connection (the caller may keep state on it).
 */
export function listenFrames([host, port], gate, onFrames) {
  return new Promise((resolve) => {
    const srv = net.createServer((sock) => {
      gate.sockets.add(sock);
      if (gate.reasons.size) sock.pause();
      const ctx = {};
      let rest = null;
      sock.on("data", (chunk) => {
        const b = rest ? Buffer.concat([rest, chunk]) : chunk;
        let o = 0;
        while (o + 4 <= b.length) {
          const end = o + 4 + b.readUInt32BE(o);
          if (end > b.length) break;
          o = end;
        }
        rest = o < b.length ? Buffer.from(b.subarray(o)) : null;
        if (o > 0) onFrames(b, o, ctx);
      });
      sock.on("error", () => {});
      sock.on("close", () => gate.sockets.delete(sock));
    });
    srv.listen(port, host, resolve);
  });
}

/** Calls fn(start, end) for every frame's payload in buf[0..end). */
export function eachFrame(buf, end, fn) {
  for (let o = 0; o < end; ) {
    const len = buf.readUInt32BE(o);
    fn(o + 4, o + 4 + len);
    o += 4 + len;
  }
}

export function ready() {
  process.stderr.write("ready\n");
  process.on("SIGTERM", () => process.exit(0));
  process.on("SIGINT", () => process.exit(0));
}
