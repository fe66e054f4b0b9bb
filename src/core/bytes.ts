/**
 * Little-endian u32 reads and writes on plain byte arrays, for the engine's own frame
 * headers (channel fragments, worker-to-worker batches, Kafka record frames).
 * Buffer#readUInt32LE/writeUInt32LE validate their arguments on every call; these are
 * four byte loads or stores, and work on any Uint8Array (a ring's view included).
 */
export function readU32LE(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

export function writeU32LE(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}
