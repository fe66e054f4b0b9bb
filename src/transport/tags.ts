/**
 * What a frame in a ring is: the top four bits of its tag say the kind, the rest
 * an id whose meaning depends on the kind (a source, step or sink id of the plan).
 */
export const KIND_SHIFT = 28;
export const ID_MASK = (1 << KIND_SHIFT) - 1;

/** raw payload bytes from a source, to be decoded by the worker (id: source id) */
export const SOURCE = 1;
/**
 * a run of whole messages, each with its length header, as a TCP source read them
 * (id: source id): the source thread only finds message boundaries and copies
 * whole runs, so its cost per message is one header read
 */
export const SOURCE_FRAMED = 4;
/** a serialized value entering a step on the worker that runs it (id: step id) */
export const STEP = 2;
/**
 * several STEP messages for the worker that reads the ring, gathered by the sending
 * worker into one frame (id: unused, 0): [entries' end u32 LE], then per message [step id
 * u32 LE][record length u32 LE][the record a STEP frame would carry, or for a short string
 * its length], then the batch's short strings as one UTF-8 text (src/runtime/executor.ts).
 * One frame header, one reserve and one wake-up check per batch instead of per message.
 */
export const STEP_BATCH = 5;
/**
 * the sending worker's event-time marks, one per source (id: the sending worker), for
 * window steps' watermarks (src/windows/runtime.ts); sent after the messages before it
 */
export const MARKS = 6;
/** encoded bytes for a sink (id: sink id) */
export const SINK = 3;
/** one piece of a message larger than a frame may be (see channel.ts) */
export const FRAGMENT = 14;

export function tag(kind: number, id: number): number {
  return ((kind << KIND_SHIFT) | id) >>> 0;
}

export function kindOf(t: number): number {
  return t >>> KIND_SHIFT;
}

export function idOf(t: number): number {
  return t & ID_MASK;
}
