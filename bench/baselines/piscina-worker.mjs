// The piscina task functions: each gets a batch of whole frames (a transferred ArrayBuffer) and
// does the stateless part of a scenario. State cannot live here: piscina hands a task to any
// idle thread, so a key cannot be pinned to one thread.
import { move } from "piscina";
import { passthroughEncode, splitFrames, decodeVotes, decodeNbbo, decodeOrders } from "./logic.mjs";

const view = (ab) => Buffer.from(ab);

export function passthrough(ab) {
  const out = passthroughEncode(view(ab), ab.byteLength);
  return move(
    out.buffer.byteLength === out.length ? out.buffer : out.buffer.slice(out.byteOffset, out.byteOffset + out.length),
  );
}
export const split = (ab) => splitFrames(view(ab), ab.byteLength, []);
export const votes = (ab) => decodeVotes(view(ab), ab.byteLength);
export const nbbo = (ab) => decodeNbbo(view(ab), ab.byteLength);
export const orders = (ab) => decodeOrders(view(ab), ab.byteLength);
