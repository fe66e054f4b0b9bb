/**
 * Word Count: receives lines of text, splits them into words and keeps a
 * running count of every word. For every word occurrence it sends out
 * "word => count\n" with the count so far.
 *
 * A port of Wallaroo's Python `word_count` example (0.5 API): the counts are
 * kept in the "word totals" state, partitioned by the first letter of the
 * word (a-z, and "!" for everything else).
 */
import * as wallaroo from "wallaroo";

/** Characters stripped from both ends of a line and of each word (Python's string.punctuation plus space). */
export const PUNCTUATION = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/** The partition keys declared up front: the letters a-z and the catch-all "!". */
export const WORD_PARTITIONS: string[] = [..."abcdefghijklmnopqrstuvwxyz", "!"];

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];

  const ab = new wallaroo.ApplicationBuilder("Word Count Application");
  ab.newPipeline("Split and Count", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .toParallel(split)
    .toStatePartition(countWord, WordTotals, "word totals", partition, WORD_PARTITIONS)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

/** Python's str.strip(chars): remove any of `chars` from both ends. */
export function stripChars(s: string, chars: string): string {
  const table = chars === PUNCTUATION ? PUNCTUATION_TABLE : charTable(chars);
  let start = 0;
  let end = s.length;
  while (start < end && isIn(s, start, table, chars)) start++;
  while (end > start && isIn(s, end - 1, table, chars)) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function isIn(s: string, i: number, table: Uint8Array, chars: string): boolean {
  const c = s.charCodeAt(i);
  return c < 128 ? table[c] === 1 : chars.includes(s[i]);
}

/** ASCII lookup table of `chars` (a string scan per character was the example's hot spot) */
function charTable(chars: string): Uint8Array {
  const t = new Uint8Array(128);
  for (const c of chars) if (c.charCodeAt(0) < 128) t[c.charCodeAt(0)] = 1;
  return t;
}
const PUNCTUATION_TABLE = charTable(PUNCTUATION);

/**
 * Lowercases, splits on single spaces and strips punctuation from both ends of
 * every word, as Wallaroo's example did. Words that end up empty (two spaces in
 * a row, a lone "--") are dropped: Wallaroo's partition function would have
 * failed on them (`data[0]` of an empty string).
 */
export function splitWords(text: string): string[] {
  const words: string[] = [];
  for (const line of text.split("\n")) {
    const cleanLine = stripChars(line.toLowerCase(), PUNCTUATION);
    for (const word of cleanLine.split(" ")) {
      const cleanWord = stripChars(word, PUNCTUATION);
      if (cleanWord.length > 0) words.push(cleanWord);
    }
  }
  return words;
}

/** The partition of a word: its first letter if that is a-z, otherwise "!". */
export function partitionKey(word: string): string {
  const c = word[0];
  return c !== undefined && c >= "a" && c <= "z" ? c : "!";
}

export const split = wallaroo.computationMulti("split into words", (line: string) => splitWords(line));

export class WordCount {
  constructor(
    public word: string,
    public count: number,
  ) {}
}

export class WordTotals {
  /** word -> count (a Map: faster than an object with one property per word; it crosses threads as a Map) */
  wordTotals = new Map<string, number>();

  /** Counts one more `word`; returns its count (so the step needs no second lookup, as getCount would be). */
  update(word: string): number {
    const n = (this.wordTotals.get(word) ?? 0) + 1;
    this.wordTotals.set(word, n);
    return n;
  }

  getCount(word: string): WordCount {
    return new WordCount(word, this.wordTotals.get(word) ?? 0);
  }
}

export const countWord = wallaroo.stateComputation(
  "Count Word",
  (word: string, wordTotals: WordTotals): [WordCount, boolean] => {
    return [new WordCount(word, wordTotals.update(word)), true];
  },
);

export const partition = wallaroo.partition((word: string) => partitionKey(word));

export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => bs.toString("utf8"));

export const encoder = wallaroo.encoder((data: WordCount) => `${data.word} => ${data.count}\n`);
