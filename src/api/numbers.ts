/**
 * The one parser of integers and durations written as text (command-line flags,
 * application arguments). Callers prefix the problem with the flag's name and wrap
 * it in their own error class.
 */

/** Why `text` is not a decimal integer in [min, max], or undefined when it is. */
export function integerProblem(text: string, min: number, max = Number.MAX_SAFE_INTEGER): string | undefined {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (Number.isSafeInteger(n) && n >= min && n <= max) return undefined;
  const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return `must be ${range}, got '${text}'`;
}

/** Why `text` is not a finite decimal number >= min (> min when `exclusive`), or undefined. */
export function numberProblem(text: string, min: number, exclusive = false): string | undefined {
  const n = /^\s*(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (Number.isFinite(n) && (exclusive ? n > min : n >= min)) return undefined;
  return `must be a number ${exclusive ? ">" : ">="} ${min}, got '${text}'`;
}
