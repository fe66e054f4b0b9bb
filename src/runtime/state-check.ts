/**
 * With --resilience-dir, every state is serialized at each checkpoint. A state
 * class whose instances cannot be (a function, a Symbol, a class the engine cannot
 * restore in a field) would otherwise be found only at the first checkpoint, after
 * the engine took traffic, and stop it (exit 3). So at start one fresh instance of
 * each state class is serialized, as a checkpoint would, and a failure is a failed
 * start (exit 1) naming the state and its class. What an instance holds only after
 * messages changed it is still found at the checkpoint that meets it.
 */
import { errorMessage } from "../core/log.js";
import type { Plan } from "../topology/plan.js";
import { createSerde } from "../transport/serde.js";
import { userModules } from "./loader.js";

export class StateSerializationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StateSerializationError";
  }
}

export async function checkStatesSerialize(mod: Record<string, unknown>, plan: Plan): Promise<void> {
  // The same serialization the workers' checkpoints use (their own instance of it, on this thread).
  const codec = createSerde(
    mod,
    plan.states.map((s) => s.spec.stateClass),
    await userModules(),
  ).standalone();
  for (const { spec } of plan.states) {
    const C = spec.stateClass;
    let inst: object;
    try {
      inst = new C();
    } catch (err) {
      throw new StateSerializationError(
        `state ${JSON.stringify(spec.name)} (class ${C.name}): new ${C.name}() threw: ${errorMessage(err)}`,
      );
    }
    try {
      codec.pack(inst);
    } catch (err) {
      throw new StateSerializationError(
        `state ${JSON.stringify(spec.name)} (class ${C.name}) cannot be serialized for a checkpoint ` +
          `(--resilience-dir), checked at start on a fresh instance (new ${C.name}()): ${errorMessage(err)}`,
      );
    }
  }
}
