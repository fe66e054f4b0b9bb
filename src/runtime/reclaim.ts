/**
 * Collects an I/O thread's dead read buffers soon after they die.
 *
 * Socket reads (and a Kafka client's fetch responses) arrive as Buffers whose bytes live
 * outside V8's heap, in this thread's malloc arena. An I/O thread allocates little on its
 * JS heap per read, so its nursery rarely fills, and V8 collects those Buffers only once
 * external memory has grown by 64 MB since its last full collection. Measured under full
 * load (passthrough, 2 workers): 55-88 MB of dead read buffers per I/O thread waiting for
 * a collection, and each thread's 64 MiB malloc arena stayed resident at that high-water
 * mark: over 100 MB of the engine's 350-360 MB peak RSS.
 *
 * So every CHECK_MS this thread compares its external memory with what it was after the
 * last collection, and once it has grown by `limitBytes` runs a minor collection (a
 * scavenge: about 0.2 ms with an I/O thread's small live nursery), which frees the
 * backing stores of the young Buffers that died. What is live is untouched: a Buffer
 * still held (a partial frame, a queued write) survives the scavenge. Dead buffers that
 * were promoted to the old generation still wait for V8's own full collection, as before.
 * The check is by time, so the dead bytes held are about `limitBytes` plus what the
 * thread reads in CHECK_MS.
 */
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

/** how often the thread's external memory is compared with the limit */
export const CHECK_MS = 20;

/**
 * V8's `gc` function for this thread, or null. The flag is process-wide and set only while the
 * function is taken, and I/O threads start at the same time: another thread may clear it between
 * this thread's set and take, so the take is retried (each round, one of the racing threads
 * succeeds).
 */
function takeGc(): ((options: { type: "minor" | "major"; execution: "sync" }) => void) | null {
  for (let tries = 0; tries < 1000; tries++) {
    v8.setFlagsFromString("--expose-gc");
    const gc = runInNewContext("typeof gc === 'function' ? gc : null");
    v8.setFlagsFromString("--no-expose-gc");
    if (gc !== null) return gc;
  }
  return null;
}

const external = () => v8.getHeapStatistics().external_memory;

/**
 * Starts the checks in this thread (the timer does not keep the thread alive).
 * `limitBytes` 0 (or no `gc` function to be had): nothing is started (`active` false). `stop()` stops the checks;
 * `collections()`: how many collections they ran.
 */
export function startReclaim(limitBytes: number): { active: boolean; stop: () => void; collections: () => number } {
  const gc = limitBytes > 0 ? takeGc() : null;
  // Without the function the thread runs as before (V8 collects on its own): more memory, nothing lost.
  if (gc === null) return { active: false, stop: () => {}, collections: () => 0 };
  let base = external();
  let runs = 0;
  const timer = setInterval(() => {
    const now = external();
    // The lowest point since the last collection: freed backing stores may be released a
    // little after the collection that found them dead.
    if (now < base) base = now;
    else if (now - base >= limitBytes) {
      gc({ type: "minor", execution: "sync" });
      runs++;
      base = external();
    }
  }, CHECK_MS);
  timer.unref();
  return { active: true, stop: () => clearInterval(timer), collections: () => runs };
}
