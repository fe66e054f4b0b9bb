/**
 * The TCP sink's replay log: what a reconnect re-sends always starts at a chunk
 * (output) boundary, holds at most the log's size, and leaves out replayed bytes
 * that had settled.
 */
import { describe, expect, it } from "vitest";
import { ReplayLog } from "../../dist/connectors/tcp/sink.js";

/** chunk i: "<i>|" padded with '.' to a length that varies, so a cut inside one is visible */
const chunk = (i: number) => {
  const len = 8 + ((i * 37) % 50);
  const b = Buffer.alloc(len, ".");
  b.write(`${i}|`, 0, "latin1");
  return b;
};

/** parses concatenated chunks back into their numbers; throws on a piece that is not whole chunks */
function parse(bufs: Buffer[]): number[] {
  const all = Buffer.concat(bufs);
  const out: number[] = [];
  let pos = 0;
  while (pos < all.length) {
    const bar = all.indexOf(124, pos);
    const i = Number(all.subarray(pos, bar).toString("latin1"));
    if (bar < 0 || !Number.isInteger(i) || !chunk(i).equals(all.subarray(pos, pos + chunk(i).length))) {
      throw new Error(`not a whole chunk at ${pos}: ${JSON.stringify(all.subarray(pos, pos + 12).toString("latin1"))}`);
    }
    out.push(i);
    pos += chunk(i).length;
  }
  return out;
}

describe("ReplayLog", () => {
  it("after wrapping, re-sends only whole chunks: the newest ones that fit", () => {
    const log = new ReplayLog(1000);
    let total = 0;
    for (let i = 0; i < 500; i++) {
      log.append(chunk(i), false, 0);
      total += chunk(i).length;
    }
    expect(total).toBeGreaterThan(1000);
    const r = log.take(10, 500);
    const ids = parse(r.chunks);
    expect(ids[ids.length - 1]).toBe(499);
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, k) => 500 - ids.length + k));
    expect(r.bytes).toBeLessThanOrEqual(1000);
    expect(r.bytes).toBeGreaterThan(1000 - 60); // loses at most the one chunk cut by the wrap
    expect(log.take(10, 500).bytes).toBe(0); // take() empties it
  });

  it("leaves out replayed chunks accepted at least settleMs before the break, keeps the rest", () => {
    const log = new ReplayLog(1 << 20);
    log.append(chunk(1), true, 0); // a replay, long settled
    log.append(chunk(2), false, 100); // new output
    log.append(chunk(3), true, 800); // a replay accepted 200 ms before the break
    log.append(chunk(4), false, 900);
    const r = log.take(1000, 500);
    expect(parse(r.chunks)).toEqual([2, 3, 4]);
    expect(r.settled).toBe(chunk(1).length);
  });

  it("merging records when there are very many keeps every replay at a boundary", () => {
    const log = new ReplayLog(8 << 20);
    const N = (1 << 16) + 5000;
    for (let i = 0; i < N; i++) log.append(chunk(i), false, i);
    const ids = parse(log.take(N, 500).chunks);
    expect(ids[ids.length - 1]).toBe(N - 1);
    expect(ids.length).toBe(N); // 8 MiB holds them all
  });
});

describe("ReplayLog holding views of a writer's buffers", () => {
  it("releases each piece's owner exactly once: when it falls out, when merged into a copy, when taken", () => {
    const released = new Map<object, number>();
    const log = new ReplayLog<{ id: number }>(1000, (o) => released.set(o, (released.get(o) ?? 0) + 1));
    const owners = Array.from({ length: 200 }, (_, id) => ({ id }));
    for (let i = 0; i < 100; i++) log.append(chunk(i), false, 0, owners[i]);
    // 100 chunks of 8..57 bytes went past 1000: the oldest were let go, the newest are held
    const held = owners.slice(0, 100).filter((o) => !released.has(o));
    expect(held.length).toBeGreaterThan(10);
    expect(held.length).toBeLessThan(100);
    expect(owners.slice(0, 100 - held.length).every((o) => released.get(o) === 1)).toBe(true);
    // take() copies what it hands out, then lets go of every piece
    const r = log.take(0, 500);
    expect(parse(r.chunks)).toEqual(held.map((o) => o.id));
    expect(owners.slice(0, 100).every((o) => released.get(o) === 1)).toBe(true);
    // an empty piece, or a log of size 0, does not keep its owner
    log.append(Buffer.alloc(0), false, 0, owners[100]);
    new ReplayLog<{ id: number }>(0, (o) => released.set(o, 1)).append(chunk(1), false, 0, owners[101]);
    expect(released.get(owners[100])).toBe(1);
    expect(released.get(owners[101])).toBe(1);
  });

  it("merging many pieces of one buffer keeps views of it; a replay after the merge is exact", () => {
    const released = new Map<object, number>();
    const N = (1 << 16) + 10;
    const backing = Buffer.alloc(N * 4);
    const owner = { id: 0 };
    let counted = 0;
    const log = new ReplayLog<{ id: number }>(1 << 20, (o) => {
      released.set(o, (released.get(o) ?? 0) + 1);
      counted++;
    });
    for (let i = 0; i < N; i++) {
      backing.writeUInt32BE(i, i * 4);
      log.append(backing.subarray(i * 4, i * 4 + 4), false, i, owner);
    }
    // the merge joined neighbours into views and released one reference per join
    expect(counted).toBeGreaterThan(0);
    expect(Buffer.concat(log.take(N, 500).chunks).equals(backing)).toBe(true);
    // every reference taken by append was given back exactly once in all
    expect(counted).toBe(N);
  });
});

describe("ReplayLog across reconnects", () => {
  it("a replay that wrapped the ring, re-sent and partly settled, still re-sends from a boundary", () => {
    // Connection 1 writes past the ring's size: its replay wraps around the ring.
    const log = new ReplayLog(1000);
    for (let i = 0; i < 300; i++) log.append(chunk(i), false, 0);
    const first = log.take(0, 500);
    // Connection 2 carries that replay as it was handed out (one write per piece) ...
    for (const piece of first.chunks) log.append(piece, true, 0);
    // ... plus new output, and breaks 600 ms later: the replay settled, the new output did not.
    for (let i = 300; i < 310; i++) log.append(chunk(i), false, 550);
    expect(parse(log.take(600, 500).chunks)).toEqual(Array.from({ length: 10 }, (_, k) => 300 + k));
    // Each piece handed out starts at a whole chunk.
    for (const piece of first.chunks) parse([piece]);
  });
});
