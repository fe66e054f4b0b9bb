/**
 * The exact sink output of the celsius example, computed single-threaded:
 * for each 4-byte payload (big-endian float32, degrees Celsius) one line
 * "%.6f\n" (Python formatting) of celsius * 1.8 + 32, in input order. The
 * pipeline is stateless, so with several workers only the order may differ.
 */
export function pyFixed6(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  const negative = x < 0 || Object.is(x, -0);
  const buf = Buffer.alloc(8);
  buf.writeDoubleBE(Math.abs(x));
  const bits = buf.readBigUInt64BE(0);
  const e = Number(bits >> 52n);
  const m = e === 0 ? bits & 0xfffffffffffffn : (bits & 0xfffffffffffffn) + 0x10000000000000n;
  const shift = (e === 0 ? 1 : e) - 1075; // |x| = m * 2^shift
  let q: bigint;
  if (shift >= 0) {
    q = m * 10n ** 6n * 2n ** BigInt(shift);
  } else {
    const num = m * 10n ** 6n;
    const den = 2n ** BigInt(-shift);
    q = num / den;
    const rem = num - q * den;
    if (2n * rem > den || (2n * rem === den && q % 2n === 1n)) q += 1n;
  }
  const s = q.toString().padStart(7, "0");
  return (negative ? "-" : "") + s.slice(0, s.length - 6) + "." + s.slice(s.length - 6);
}

export function fahrenheit(celsius: number): number {
  return celsius * 1.8 + 32;
}

export function expected(input: Buffer[]): string[] {
  return input.map((payload) => pyFixed6(fahrenheit(payload.readFloatBE(0))) + "\n");
}
