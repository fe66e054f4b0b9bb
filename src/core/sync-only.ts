/**
 * The error for a Promise where the runtime needs a value now: only computations may be
 * async (their wrappers queue the call, see runtime/async-steps.ts), never a decoder, encoder or
 * partition function. In core/ because connectors (below runtime/) use it too. Without it a Promise would go on as an object ("[object Promise]").
 */
export function syncOnly(what: string): TypeError {
  return new TypeError(
    `${what} returned a Promise; only computations may be async (wallaroo.computation(name, async (x) => ...)), so do the asynchronous work in a computation step and return a plain value here; the message is dropped`,
  );
}
