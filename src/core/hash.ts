/**
 * Key hashing that gives the same answer in every thread and every run, so that a
 * key not declared up front is placed on the same worker by whoever routes it.
 */
/** A partition key: strings and numbers compare by value. */
export type Key = string | number | bigint;

/** FNV-1a over UTF-16 code units: no allocation, stable across processes. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

export function hashKey(key: Key): number {
  if (typeof key === "string") return hashString(key);
  if (typeof key === "number") {
    if (Number.isInteger(key) && Math.abs(key) <= 0xffffffff) return mix32(key >>> 0);
    return hashString(String(key));
  }
  return hashString(key.toString());
}

/**
 * The canonical form of a partition key. Keys compare by value: a bigint that
 * fits in a double exactly is the same key as the number (u64 partitions accept
 * both), and -0 is 0.
 */
export function normalizeKey(key: Key): Key {
  if (typeof key === "bigint") {
    return key >= BigInt(Number.MIN_SAFE_INTEGER) && key <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(key) : key;
  }
  return typeof key === "number" && key === 0 ? 0 : key;
}
