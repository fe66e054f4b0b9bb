// Compiled with noUncheckedIndexedAccess (test/types/tsconfig.unchecked.json): the
// single-address helpers give a tuple that destructures without undefined.
import * as wallaroo from "wallaroo";

export function setup(args: string[]): [string, number, string, number] {
  const [host, port] = wallaroo.tcpParseInputAddr(args);
  const [outHost, outPort] = wallaroo.tcpParseOutputAddr(args);
  return [host, port, outHost, outPort];
}
