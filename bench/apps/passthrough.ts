/**
 * Passthrough: every framed payload goes through one `toParallel` identity step
 * and out again with a 4-byte big-endian length header, byte for byte unchanged
 * (the latency stamps the bench sender writes into the payload survive).
 *
 *   wallaroo run bench/apps/passthrough.ts --in HOST:PORT --out HOST:PORT
 */
import * as wallaroo from "wallaroo";

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];
  const ab = new wallaroo.ApplicationBuilder("passthrough");
  ab.newPipeline("passthrough", new wallaroo.TCPSourceConfig(inHost, inPort, decoder))
    .toParallel(identity)
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (bs: Buffer) => bs);

export const identity = wallaroo.computation("identity", (bs: Uint8Array) => bs);

export const encoder = wallaroo.encoder((bs: Uint8Array) => {
  const out = Buffer.allocUnsafe(4 + bs.length);
  out.writeUInt32BE(bs.length, 0);
  out.set(bs, 4);
  return out;
});
