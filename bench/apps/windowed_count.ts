/**
 * Windowed count (npm run bench, scenario windowed_count): the alphabet votes (5-byte
 * records: a letter and a u32 count, bench/scenarios/alphabet.mjs's data), counted per
 * letter in tumbling 1 s windows of ingest time (the bench's input repeats, so its own
 * times could not be event times). Output per closed window: "LETTER START END EVENTS\n".
 * The hand-written loop doing the same windowing: bench/baselines/handwritten-windowed_count.mjs.
 */
import * as wallaroo from "wallaroo";

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];
  const ab = new wallaroo.ApplicationBuilder("windowed count");
  ab.newPipeline("votes", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .toWindows(wallaroo.rangeWindows(wallaroo.seconds(1)).over(count), byLetter)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

/** the letter's code: a number key, no string per event */
export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => bs[0]!);
export const byLetter = wallaroo.partition((letter: number) => letter);

class Count {
  n = 0;
}

export const count = wallaroo.aggregation({
  name: "count per letter",
  initial: () => new Count(),
  update: (_letter: number, acc: Count) => {
    acc.n++;
  },
  combine: (a: Count, b: Count) => {
    const c = new Count();
    c.n = a.n + b.n;
    return c;
  },
  output: (letter, w, acc: Count) => `${String.fromCharCode(letter as number)} ${w.start} ${w.end} ${acc.n}\n`,
});

export const encoder = wallaroo.encoder((line: string) => line);
