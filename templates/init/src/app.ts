/**
 * A small keyed application: counts words. Each line that arrives on the TCP
 * source is split into words; a state partitioned by word keeps each word's
 * count; every occurrence sends "word count" to the TCP sink.
 *
 *   npm start      (runs: wallaroo run src/app.ts --in 127.0.0.1:7010 --out 127.0.0.1:7002)
 *   npx wallaroo receive --port 7002 --output -      # in another terminal, first
 *   npx wallaroo send --port 7010 --file some.txt    # frames each line
 *
 * The module is loaded in every worker thread: its top level only defines things.
 */
import * as wallaroo from "wallaroo";

export const help = `  --in HOST:PORT    where the source listens (port 0: any free port)
  --out HOST:PORT   where the sink connects`;

/** The state of one word (one instance per key). */
export class WordCount {
  count = 0;
}

/** Each message is a UTF-8 line framed by a 4-byte big-endian length. */
export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (payload: Buffer) =>
  payload.toString("utf8"),
);

export const split = wallaroo.computationMulti("split", (line: string) =>
  line
    .toLowerCase()
    .split(/[^a-z0-9']+/)
    .filter((w) => w !== ""),
);

export const byWord = wallaroo.partition((word: string) => word);

export const count = wallaroo.stateComputation("count", (word: string, state: WordCount): [string, boolean] => {
  state.count += 1;
  return [`${word} ${state.count}`, true]; // true: this state changed (saved by --resilience-dir)
});

export const encoder = wallaroo.encoder((text: string) => `${text}\n`);

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddr(args);
  const [outHost, outPort] = wallaroo.tcpParseOutputAddr(args);
  const ab = new wallaroo.ApplicationBuilder("word counts");
  ab.newPipeline("count words", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .toParallel(split)
    .toStatePartition(count, WordCount, "word counts", byWord)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}
