/**
 * UTF-8 for the short strings that dominate streams (words, keys, "word => 3\n"):
 * a JavaScript loop over ASCII is several times cheaper than a call into
 * Buffer's native encoder for a dozen characters; anything else falls back to it.
 */

/** longest string the JavaScript loop handles; longer ones go to the native encoder */
const SHORT = 64;

interface NativeBuffer extends Buffer {
  utf8Write(s: string, offset: number, length: number): number;
}

/** Bytes of `s` in UTF-8. */
export function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT) return Buffer.byteLength(s, "utf8");
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, "utf8");
  return n;
}

/** Writes `s` at `off` (at most `max` bytes); returns the bytes written. */
export function utf8Write(buf: Buffer, s: string, off: number, max: number): number {
  const n = s.length;
  if (n <= SHORT && n <= max) {
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[off + i] = c;
    }
    if (i === n) return n;
  }
  return (buf as NativeBuffer).utf8Write(s, off, max);
}
