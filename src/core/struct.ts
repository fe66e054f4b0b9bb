/**
 * Python `struct` formats for the one integer that holds a frame's payload length
 * (`>I`, `<H`, `!Q`, `b`, ...). Only the single-integer formats a Wallaroo decoder
 * header can use are accepted.
 */

export interface LengthFormat {
  /** the format as given, e.g. ">I" */
  readonly fmt: string;
  /** header size in bytes: 1, 2, 4 or 8 */
  readonly size: number;
  readonly signed: boolean;
  readonly littleEndian: boolean;
  /** reads the length at `offset`; a negative signed value is returned as is (the caller rejects it) */
  read(buf: Uint8Array, offset: number): number;
  /** writes `n` at `offset` */
  write(buf: Uint8Array, offset: number, n: number): void;
}

const SIZES: Record<string, { size: number; signed: boolean }> = {
  b: { size: 1, signed: true },
  B: { size: 1, signed: false },
  h: { size: 2, signed: true },
  H: { size: 2, signed: false },
  i: { size: 4, signed: true },
  I: { size: 4, signed: false },
  l: { size: 4, signed: true },
  L: { size: 4, signed: false },
  q: { size: 8, signed: true },
  Q: { size: 8, signed: false },
};

/** Parses a struct format; throws an Error saying what is accepted when it is not one. */
export function parseLengthFormat(fmt: string): LengthFormat {
  if (typeof fmt !== "string") throw new Error(`lengthFmt must be a string such as ">I", got ${typeof fmt}`);
  const m = /^([<>!=@]?)([bBhHiIlLqQ])$/.exec(fmt);
  if (!m) {
    throw new Error(
      `lengthFmt ${JSON.stringify(fmt)} is not a single-integer Python struct format; ` +
        `use a byte order (<, >, !, = or none) and one of b B h H i I l L q Q, e.g. ">I"`,
    );
  }
  const order = m[1];
  let { size, signed } = SIZES[m[2]];
  // In native mode Python's C long is 8 bytes on the 64-bit platforms Node.js runs on.
  if ((order === "" || order === "@") && (m[2] === "l" || m[2] === "L")) size = 8;
  // Python's native order (@, = or none) is the machine's; every Node.js platform we run on is little-endian.
  const littleEndian = order === "<" || order === "" || order === "@" || order === "=";
  const dvCache = new WeakMap<ArrayBufferLike, DataView>();
  const dv = (buf: Uint8Array): DataView => {
    let v = dvCache.get(buf.buffer);
    if (v === undefined) {
      v = new DataView(buf.buffer);
      dvCache.set(buf.buffer, v);
    }
    return v;
  };
  let read: (buf: Uint8Array, off: number) => number;
  let write: (buf: Uint8Array, off: number, n: number) => void;
  switch (size) {
    case 1:
      read = signed ? (b, o) => (b[o] << 24) >> 24 : (b, o) => b[o];
      write = (b, o, n) => {
        b[o] = n & 0xff;
      };
      break;
    case 2:
      read = littleEndian
        ? signed
          ? (b, o) => ((b[o] | (b[o + 1] << 8)) << 16) >> 16
          : (b, o) => b[o] | (b[o + 1] << 8)
        : signed
          ? (b, o) => (((b[o] << 8) | b[o + 1]) << 16) >> 16
          : (b, o) => (b[o] << 8) | b[o + 1];
      write = littleEndian
        ? (b, o, n) => {
            b[o] = n & 0xff;
            b[o + 1] = (n >>> 8) & 0xff;
          }
        : (b, o, n) => {
            b[o] = (n >>> 8) & 0xff;
            b[o + 1] = n & 0xff;
          };
      break;
    case 4:
      read = littleEndian
        ? signed
          ? (b, o) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)
          : (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0
        : signed
          ? (b, o) => (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]
          : (b, o) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
      write = littleEndian
        ? (b, o, n) => {
            b[o] = n & 0xff;
            b[o + 1] = (n >>> 8) & 0xff;
            b[o + 2] = (n >>> 16) & 0xff;
            b[o + 3] = (n >>> 24) & 0xff;
          }
        : (b, o, n) => {
            b[o] = (n >>> 24) & 0xff;
            b[o + 1] = (n >>> 16) & 0xff;
            b[o + 2] = (n >>> 8) & 0xff;
            b[o + 3] = n & 0xff;
          };
      break;
    default:
      // 8-byte lengths: anything past 2^53 is far over any frame limit, so a double is exact enough.
      read = (b, o) => {
        const v = signed
          ? dv(b).getBigInt64(b.byteOffset + o, littleEndian)
          : dv(b).getBigUint64(b.byteOffset + o, littleEndian);
        return Number(v);
      };
      write = (b, o, n) => {
        if (signed) dv(b).setBigInt64(b.byteOffset + o, BigInt(n), littleEndian);
        else dv(b).setBigUint64(b.byteOffset + o, BigInt(n), littleEndian);
      };
  }
  return { fmt, size, signed, littleEndian, read, write };
}
