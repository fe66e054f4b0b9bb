/**
 * The exact sink output of the word_count example, computed single-threaded.
 *
 * `input` holds the payloads of the framed messages (one line of text each).
 * The result has one string per word occurrence, "word => count\n", in the
 * order a single-threaded run produces them. With several workers the lines are
 * split in parallel, so the order of the output lines may differ, but the
 * multiset of lines is the same (the n-th occurrence of a word always reports n):
 * compare sorted.
 */
const PUNCTUATION = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

function strip(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && PUNCTUATION.includes(s[start])) start++;
  while (end > start && PUNCTUATION.includes(s[end - 1])) end--;
  return s.slice(start, end);
}

export function words(line: string): string[] {
  const out: string[] = [];
  for (const l of line.split("\n")) {
    for (const w of strip(l.toLowerCase()).split(" ")) {
      const c = strip(w);
      if (c !== "") out.push(c);
    }
  }
  return out;
}

export function expected(input: Buffer[]): string[] {
  const counts = new Map<string, number>();
  const out: string[] = [];
  for (const payload of input) {
    for (const w of words(payload.toString("utf8"))) {
      const n = (counts.get(w) ?? 0) + 1;
      counts.set(w, n);
      out.push(`${w} => ${n}\n`);
    }
  }
  return out;
}

/** The final count of every word (what Wallaroo's own validator checked). */
export function finalCounts(input: Buffer[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const payload of input) for (const w of words(payload.toString("utf8"))) counts.set(w, (counts.get(w) ?? 0) + 1);
  return counts;
}
