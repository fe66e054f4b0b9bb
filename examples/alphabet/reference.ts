/**
 * The exact sink output of the alphabet example, computed single-threaded.
 *
 * `input`: payloads of 5 bytes (1-byte letter, u32 BE votes). The result has
 * one 13-byte Buffer per input message: u32 BE 9, the letter byte, u64 BE
 * running total of that letter. All messages go through one source and
 * straight to the letter's partition, so per letter the order is fixed; with
 * several workers records of different letters may interleave differently:
 * compare per letter (or sorted).
 */
export function expected(input: Buffer[]): Buffer[] {
  const totals = new Map<number, bigint>();
  return input.map((payload) => {
    if (payload.length !== 5) throw new Error(`bad alphabet payload of ${payload.length} bytes`);
    const letter = payload[0];
    const total = (totals.get(letter) ?? 0n) + BigInt(payload.readUInt32BE(1));
    totals.set(letter, total);
    const out = Buffer.alloc(13);
    out.writeUInt32BE(9, 0);
    out[4] = letter;
    out.writeBigUInt64BE(total, 5);
    return out;
  });
}

/** Human-readable form of one output record: "a => 1234". */
export function describe(record: Buffer): string {
  return `${String.fromCharCode(record[4])} => ${record.readBigUInt64BE(5)}`;
}

/** Splits a concatenated binary output (as received from the sink) into 13-byte records. */
export function splitRecords(bytes: Buffer): Buffer[] {
  if (bytes.length % 13 !== 0) throw new Error(`output length ${bytes.length} is not a multiple of 13`);
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 13) out.push(bytes.subarray(i, i + 13));
  return out;
}
