// A scenario source's input as one worker's step runner gets it from a TCP source thread:
// the frames bench/tools/loadgen.mjs sends, cut into runs of whole frames of at most 64 KiB.
// Shared by bench/executor.bench.mjs and bench/executor-ab.mjs; `dist` is the build whose
// framing helpers make the frames (a file URL of its dist/ folder, ending in "/").
import { readFileSync } from "node:fs";

/** (input) => [{ bytes, n }]: the runs of whole frames of one source's input */
export async function sourceRunsOf(dist) {
  const { frameLines, frameRecords } = await import(`${dist}cli/send.js`);
  const { parseLengthFormat } = await import(`${dist}core/struct.js`);
  const LF = parseLengthFormat(">I");

  function frames(input) {
    if (input.kind === "lines") return frameLines(readFileSync(input.file), LF);
    if (input.kind === "records") return frameRecords(readFileSync(input.file), input.recordSize, LF, false);
    const n = 16384;
    const size = input.frameBytes;
    const buf = Buffer.alloc(n * size);
    const offsets = new Float64Array(n + 1);
    for (let i = 0; i <= n; i++) offsets[i] = i * size;
    for (let i = 0; i < n; i++) {
      buf.writeUInt32BE(size - 4, i * size);
      for (let j = 4; j < size; j++) buf[i * size + j] = (i + j) & 0xff;
    }
    return { buf, offsets, count: n };
  }

  function runs(f) {
    const out = [];
    for (let i = 0; i < f.count; ) {
      let j = i + 1;
      while (j < f.count && f.offsets[j + 1] - f.offsets[i] <= 65536) j++;
      out.push({ bytes: f.buf.subarray(f.offsets[i], f.offsets[j]), n: j - i });
      i = j;
    }
    return out;
  }

  return (input) => runs(frames(input));
}
