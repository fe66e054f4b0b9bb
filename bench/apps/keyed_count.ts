/**
 * Keyed count: one state instance per distinct payload (undeclared partition keys),
 * for measuring checkpoints and recovery of many state instances. Output: "key count\n".
 */
import * as wallaroo from "wallaroo";

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];
  const ab = new wallaroo.ApplicationBuilder("keyed count");
  ab.newPipeline("count", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .toStatePartition(count, Counter, "counts", byKey)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

export class Counter {
  n = 0;
}

export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => bs.toString("utf8"));
export const byKey = wallaroo.partition((s: string) => s);
export const count = wallaroo.stateComputation("count", (s: string, c: Counter): [string, boolean] => {
  c.n++;
  return [`${s} ${c.n}`, true];
});
export const encoder = wallaroo.encoder((s: string) => `${s}\n`);
