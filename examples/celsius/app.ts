/**
 * Celsius to Fahrenheit: receives big-endian 32-bit floats (degrees Celsius)
 * and sends out the Fahrenheit value as text, "%.6f\n". A port of Wallaroo's
 * Python `celsius` example; the two stateless steps run in parallel on every
 * worker (`toParallel`), `add` runs where `multiply` ran.
 */
import * as wallaroo from "wallaroo";

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];

  const ab = new wallaroo.ApplicationBuilder("Celsius to Fahrenheit");
  ab.newPipeline("Celsius Conversion", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .toParallel(multiply)
    .to(add)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

/** payload: 4 bytes, an IEEE-754 single, big-endian (Python struct ">f") */
export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => bs.readFloatBE(0));

export const multiply = wallaroo.computation("multiply by 1.8", (data: number) => data * 1.8);

export const add = wallaroo.computation("add 32", (data: number) => data + 32);

export const encoder = wallaroo.encoder((data: number) => formatFixed6(data) + "\n");

/**
 * Python's "%.6f" % x: the exact binary value rounded half-to-even to six
 * decimals, every integer digit written out, "nan"/"inf"/"-inf", sign kept on
 * -0. (Number.prototype.toFixed rounds ties away from zero and switches to
 * exponent notation at 1e21, so it is not used.)
 */
export function formatFixed6(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, Math.abs(x));
  const bits = view.getBigUint64(0);
  const biasedExp = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & ((1n << 52n) - 1n);
  // |x| = mantissa * 2^exp exactly
  const mantissa = biasedExp === 0 ? fraction : fraction | (1n << 52n);
  const exp = (biasedExp === 0 ? 1 : biasedExp) - 1075;
  let scaled: bigint; // round(|x| * 10^6), ties to even
  if (exp >= 0) {
    scaled = (mantissa * 1000000n) << BigInt(exp);
  } else {
    const num = mantissa * 1000000n;
    const den = 1n << BigInt(-exp);
    scaled = num / den;
    const twice = (num % den) * 2n;
    if (twice > den || (twice === den && (scaled & 1n) === 1n)) scaled += 1n;
  }
  const digits = scaled.toString().padStart(7, "0");
  return `${sign}${digits.slice(0, -6)}.${digits.slice(-6)}`;
}
