/** Flag parsing shared by `wallaroo send` and `wallaroo receive`. */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseLengthFormat, type LengthFormat } from "../core/struct.js";
import { integerProblem, numberProblem } from "../api/numbers.js";

/** A mistake in the command line: printed with the command's name, exit status 2. */
export class UsageError extends Error {}

type FlagValues = Record<string, string | boolean | undefined>;

/** `parseArgs` in strict mode, with its errors turned into UsageErrors that point at --help. */
export function parseFlags<O extends ParseArgsConfig["options"]>(
  command: string,
  argv: string[],
  options: O,
): {
  [K in keyof O]?: O[K] extends { type: "boolean" } ? boolean : string;
} {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values as FlagValues as never;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const quoted = /'([^' ]*)/.exec(err.message)?.[1];
    let msg = err.message.split("\n")[0];
    if (err.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") msg = `unknown flag ${quoted}`;
    else if (err.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL")
      msg = `unexpected argument '${quoted}' (every value belongs to a flag)`;
    else if (/missing|ambiguous/.test(msg))
      msg = `${quoted} needs a value (write ${quoted}=VALUE for one that starts with '-')`;
    else if (/does not take/.test(msg)) msg = `${quoted} takes no value`;
    throw new UsageError(`${msg}; run \`wallaroo ${command} --help\` for the flags`);
  }
}

/** An integer flag within [min, max], or undefined when absent. */
export function intFlag(
  name: string,
  value: string | undefined,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  if (value === undefined) return undefined;
  const problem = integerProblem(value, min, max);
  if (problem !== undefined) throw new UsageError(`--${name} ${problem}`);
  return Number(value);
}

/** A positive number flag, or undefined when absent. */
export function numberFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const problem = numberProblem(value, 0, true);
  if (problem !== undefined) throw new UsageError(`--${name} ${problem}`);
  return Number(value);
}

/** The header format from --header-length and --length-fmt, which must agree when both are given. */
export function lengthFormatFromFlags(headerLength: string | undefined, lengthFmt: string | undefined): LengthFormat {
  const size = headerLength === undefined ? undefined : intFlag("header-length", headerLength, 1, 8);
  if (size !== undefined && ![1, 2, 4, 8].includes(size))
    throw new UsageError(`--header-length must be 1, 2, 4 or 8, got '${headerLength}'`);
  if (lengthFmt === undefined) return parseLengthFormat(`>${{ 1: "B", 2: "H", 4: "I", 8: "Q" }[size ?? 4]}`);
  let lf: LengthFormat;
  try {
    lf = parseLengthFormat(lengthFmt);
  } catch (e) {
    throw new UsageError(`--length-fmt: ${(e as Error).message}`);
  }
  if (size !== undefined && size !== lf.size) {
    throw new UsageError(
      `--header-length ${size} does not match --length-fmt '${lengthFmt}', which is ${lf.size} bytes; make them agree or drop --header-length`,
    );
  }
  return lf;
}

export function formatMB(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
