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
/**
 * raw payload bytes from a source with a timestamp of its own (a Kafka record's, for
 * event time): [f64 LE timestamp ms][payload] (id: source id and input, as SOURCE)
 */
export const SOURCE_STAMPED = 7;
/**
 * an input of a source exists (no payload; id: source id and input, as SOURCE): a Kafka
 * source announces each partition it was assigned before any of its records, so that a
 * partition not fetched yet holds window watermarks back (up to the idle timeout) instead
 * of being unknown (src/windows/runtime.ts announce)
 */
export const SOURCE_INPUT = 8;
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

/**
 * A source frame's id (SOURCE, SOURCE_FRAMED, SOURCE_STAMPED) holds two numbers: the source
 * id in its low SOURCE_ID_BITS, and above them the *input* of that source the frame came
 * from (a TCP connection's number, a Kafka partition), for window steps' watermarks, which
 * are kept per input (src/windows/runtime.ts). Inputs wrap at 2^(28 - SOURCE_ID_BITS): two
 * connections share a mark only if that many connections were made within an idle timeout.
 */
export const SOURCE_ID_BITS = 10;
export const MAX_SOURCES = 1 << SOURCE_ID_BITS;
const INPUT_MASK = (1 << (KIND_SHIFT - SOURCE_ID_BITS)) - 1;

/** The tag of a frame from input `input` of source `sourceId`. */
export function sourceTag(kind: number, sourceId: number, input: number): number {
  if (sourceId >= MAX_SOURCES) throw new RangeError(`source id ${sourceId}: at most ${MAX_SOURCES} sources`);
  return tag(kind, sourceId | ((input & INPUT_MASK) << SOURCE_ID_BITS));
}

/** The source id of a source frame's id. */
export function sourceOf(id: number): number {
  return id & (MAX_SOURCES - 1);
}

/** The input (connection, partition) of a source frame's id. */
export function inputOf(id: number): number {
  return id >>> SOURCE_ID_BITS;
}

export function tag(kind: number, id: number): number {
  return ((kind << KIND_SHIFT) | id) >>> 0;
}

export function kindOf(t: number): number {
  return t >>> KIND_SHIFT;
}

export function idOf(t: number): number {
  return t & ID_MASK;
}
