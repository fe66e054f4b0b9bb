/**
 * The exact sink output of the reverse example, computed single-threaded:
 * one "reversed line\n" per input message, in input order (the pipeline is
 * stateless, so with several workers only the order may differ).
 */
export function reverseString(s: string): string {
  const cps = [...s];
  let out = "";
  for (let i = cps.length - 1; i >= 0; i--) out += cps[i];
  return out;
}

export function expected(input: Buffer[]): string[] {
  return input.map((payload) => reverseString(payload.toString("utf8")) + "\n");
}
