/**
 * Worker-to-worker ring sizing: there are workers x (workers - 1) peer rings, so
 * their size must shrink with the worker count for the engine's memory to grow
 * linearly (a ring's pages are resident once traffic has gone through it).
 */
import { expect, it } from "vitest";
import { createWiring, PEER_RING_BUDGET, peerRingBytes } from "../../src/transport/wiring.js";
import { RING_HEADER_BYTES } from "../../src/transport/ring.js";

/** the data-region size createRing gives for a requested size: the next power of two >= 4096 */
const capacity = (n: number) => {
  let c = 4096;
  while (c < n) c *= 2;
  return c;
};
const totalPeerBytes = (w: number) => w * (w - 1) * capacity(peerRingBytes(w));

it("peer ring memory grows linearly with the workers: at most twice the per-worker budget per worker, up to 256 workers", () => {
  for (let w = 1; w <= 256; w++) {
    expect(totalPeerBytes(w), `${w} workers`).toBeLessThanOrEqual(2 * PEER_RING_BUDGET * w);
  }
  // the figures the comments quote: 8, 24, 56, 120 MiB for 2, 4, 8, 16 workers
  expect([2, 4, 8, 16].map((w) => totalPeerBytes(w) / 2 ** 20)).toEqual([8, 24, 56, 120]);
});

it("rings are not smaller than before for up to 32 workers (4 MiB .. 256 KiB per pair)", () => {
  for (let w = 2; w <= 32; w++) {
    const before = capacity(Math.max(256 * 1024, Math.floor((8 * 1024 * 1024) / w)));
    expect(capacity(peerRingBytes(w)), `${w} workers`).toBe(before);
  }
});

it("createWiring lays out one ring per ordered pair of distinct workers, of the computed size", () => {
  const w = 5;
  const wiring = createWiring(2, w, 3, { sourceRingBytes: 8192, peerRingBytes: peerRingBytes(w), sinkRingBytes: 8192 });
  for (let a = 0; a < w; a++) {
    for (let b = 0; b < w; b++) {
      const r = wiring.peerRings[a][b];
      if (a === b) expect(r).toBeNull();
      else expect(r!.byteLength).toBe(RING_HEADER_BYTES + capacity(peerRingBytes(w)));
    }
  }
  expect(new Int32Array(wiring.sinkCongestion).length).toBe(2 * 3);
});
