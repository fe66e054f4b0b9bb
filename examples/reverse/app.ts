/**
 * Reverse: receives strings and sends out each string reversed, followed by a
 * newline. A port of Wallaroo's Python `reverse` example: one stateless step
 * (`to`), no state.
 */
import * as wallaroo from "wallaroo";

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];

  const ab = new wallaroo.ApplicationBuilder("Reverse Word");
  ab.newPipeline("reverse", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .to(reverse)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => bs.toString("utf8"));

/** Reverses by code point, as Python's data[::-1] on a str does (surrogate pairs stay intact). */
export const reverse = wallaroo.computation("reverse", (data: string) => Array.from(data).reverse().join(""));

export const encoder = wallaroo.encoder((data: string) => data + "\n");
