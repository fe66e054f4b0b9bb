/**
 * Durations as plain numbers of milliseconds, the unit of every duration in the API
 * (a state's ttl, and windows). `wallaroo.minutes(30)` reads better than `1800000`
 * and cannot be off by a factor of 1000. Each refuses what cannot be a duration
 * (negative, NaN, infinite, not a number) at once, where the mistake is written.
 */
import { WallarooParameterError } from "./errors.js";

function duration(unit: string, ms: number, n: unknown): number {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) {
    const shown = typeof n === "number" ? String(n) : typeof n === "string" ? JSON.stringify(n) : typeof n;
    throw new WallarooParameterError(`${unit}(n): n must be a finite number >= 0, got ${shown}`);
  }
  // whole milliseconds: window bounds and ticks are integers
  return Math.round(n * ms);
}

/** `n` milliseconds, as a number of milliseconds. */
export function milliseconds(n: number): number {
  return duration("milliseconds", 1, n);
}

/** `n` seconds, as a number of milliseconds. */
export function seconds(n: number): number {
  return duration("seconds", 1000, n);
}

/** `n` minutes, as a number of milliseconds. */
export function minutes(n: number): number {
  return duration("minutes", 60_000, n);
}

/** `n` hours, as a number of milliseconds. */
export function hours(n: number): number {
  return duration("hours", 3_600_000, n);
}
