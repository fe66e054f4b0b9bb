/**
 * The engine's options, declared once. Each entry of ENGINE_FLAGS is a command-line
 * flag of `wallaroo run` and an option of runApplication(): from this table come
 * the parser of the flags, the `wallaroo run --help` text, the EngineOptions type,
 * the validation and defaults runApplication() applies, and the flag table of
 * docs/operations.md (test/cli/options.test.ts checks that its table is this one).
 * Adding a flag is adding one entry here (and reading it where it is used).
 *
 * Units: durations are seconds everywhere (fractions allowed), sizes are bytes.
 */
import { integerProblem, numberProblem } from "../api/numbers.js";

export type FlagType =
  /** an integer in [min, max] */
  | "integer"
  /** an integer number of bytes >= min */
  | "bytes"
  /** a number of seconds >= min (> min when `positive`) */
  | "seconds"
  /** any non-empty text */
  | "string"
  /** a directory or file */
  | "path"
  /** no value: present means true */
  | "boolean";

export interface EngineFlag {
  /** the command-line flag */
  readonly flag: `--${string}`;
  /** the runApplication() option */
  readonly key: string;
  readonly type: FlagType;
  /** the value's placeholder in help (N, S, DIR, ...) */
  readonly value?: string;
  readonly min?: number;
  readonly max?: number;
  /** seconds: the value must be > min */
  readonly positive?: boolean;
  /** the default; undefined when it is computed at start (then defaultText says how) or off */
  readonly default?: number | string | boolean;
  /** the default as help and docs/operations.md show it */
  readonly defaultText: string;
  /** one sentence or two; help and docs/operations.md show the same text */
  readonly help: string;
  /**
   * a secret (a password, a token): its value is never shown, neither on the dashboard's
   * configuration view nor anywhere else that lists the options in effect (engineConfiguration)
   */
  readonly secret?: boolean;
}

export const ENGINE_FLAGS = [
  {
    flag: "--workers",
    key: "workers",
    type: "integer",
    value: "N",
    min: 1,
    defaultText: "one per core",
    help: "worker threads; more than one per core is warned about, more than 4 per core (or 256) is refused",
  },
  {
    flag: "--max-frame-bytes",
    key: "maxFrameBytes",
    type: "bytes",
    value: "N",
    min: 1,
    default: 16 * 1024 * 1024,
    defaultText: "16777216",
    help: 'a TCP source closes a connection whose header announces more; with "lines" framing (TCP or file source), a longer line is logged and skipped alone; at most 4294967287 (a frame must fit one Buffer and the 32-bit lengths between threads)',
  },
  {
    flag: "--fail-fast",
    key: "failFast",
    type: "boolean",
    default: false,
    defaultText: "off",
    help: "stop the engine (exit 3) on the first error in user code (also one thrown from a timer or left in a rejected promise) instead of dropping that message, logging it with its stack and counting it",
  },
  {
    flag: "--stats-interval",
    key: "statsInterval",
    type: "seconds",
    value: "S",
    min: 0,
    default: 5,
    defaultText: "5",
    help: 'seconds between stats lines (messages in/out per second per pipeline); 0 = none. Once nothing has moved for 2 s one "idle" line is logged, then none until messages flow again',
  },
  {
    flag: "--ring-bytes",
    key: "ringBytes",
    type: "bytes",
    value: "N",
    min: 4096,
    default: 2 * 1024 * 1024,
    defaultText: "2097152",
    help: "size of each source→worker and worker→sink ring",
  },
  {
    flag: "--drain-timeout",
    key: "drainTimeout",
    type: "seconds",
    value: "S",
    min: 0,
    default: 30,
    defaultText: "30",
    help: "how long a stop waits for in-flight output to reach the sinks; a stop always ends within it plus 11 s, and what did not arrive is counted per sink (exit 4)",
  },
  {
    flag: "--stall-timeout",
    key: "stallTimeout",
    type: "seconds",
    value: "S",
    min: 0,
    default: 30,
    defaultText: "30",
    help: "a thread whose event loop does not run for this long (user code in an infinite loop) stops the engine (exit 3); 0 = never",
  },
  {
    flag: "--idle-timeout",
    key: "idleTimeout",
    type: "seconds",
    value: "S",
    min: 0,
    positive: true,
    default: 5,
    defaultText: "5",
    help: "window steps: an input (a source on one worker) silent this long stops holding the watermark back; once every input is, event time follows the wall clock, so a quiet stream still closes its windows",
  },
  {
    flag: "--kafka-group",
    key: "kafkaGroup",
    type: "string",
    value: "ID",
    defaultText: "the application name",
    help: "consumer group of the Kafka sources",
  },
  {
    flag: "--resilience-dir",
    key: "resilienceDir",
    type: "path",
    value: "DIR",
    defaultText: "off",
    help: "checkpoint state (instances whose computation returned saveState = true) and Kafka and file source positions to a store in DIR and restore them at start; Kafka sinks become transactional, file sinks are truncated back to the checkpoint",
  },
  {
    flag: "--checkpoint-interval",
    key: "checkpointInterval",
    type: "seconds",
    value: "S",
    min: 0,
    positive: true,
    default: 1,
    defaultText: "1",
    help: "seconds between checkpoints",
  },
  {
    flag: "--checkpoint-timeout",
    key: "checkpointTimeout",
    type: "seconds",
    value: "S",
    min: 0,
    positive: true,
    default: 10,
    defaultText: "10",
    help: "a checkpoint that cannot drain within this many seconds is abandoned (logged)",
  },
  {
    flag: "--dead-letter",
    key: "deadLetterDir",
    type: "path",
    value: "DIR",
    defaultText: "off",
    help: "write every message dropped because user code threw (decoder, computation, partition function, encoder) to DIR/worker-N.jsonl: one JSON line per drop with pipeline, step, error, stack and the raw payload (base64) or the value",
  },
  {
    flag: "--dead-letter-max-bytes",
    key: "deadLetterMaxBytes",
    type: "bytes",
    value: "N",
    min: 1,
    default: 64 * 1024 * 1024,
    defaultText: "67108864",
    help: "a dead-letter file that reaches this size is moved to worker-N.jsonl.1, replacing the older one (logged): at most twice this per worker on disk",
  },
  {
    flag: "--metrics-port",
    key: "metricsPort",
    type: "integer",
    value: "N",
    min: 0,
    max: 65535,
    defaultText: "off",
    help: "serve Prometheus metrics on http://HOST:N/metrics and a live dashboard on http://HOST:N/ (0 = any free port, logged at start)",
  },
  {
    flag: "--metrics-host",
    key: "metricsHost",
    type: "string",
    value: "HOST",
    default: "127.0.0.1",
    defaultText: "127.0.0.1",
    help: "address the metrics server binds to (0.0.0.0 lets a Prometheus on another machine scrape)",
  },
  {
    flag: "--metrics-max-connections",
    key: "metricsMaxConnections",
    type: "integer",
    value: "N",
    min: 1,
    max: 65535,
    default: 256,
    defaultText: "256",
    help: "connections the metrics server holds at once; one more is closed as soon as it is accepted (counted in wallaroo_metrics_connections_refused_total, logged), so that a flood of them cannot take the file descriptors the sources need",
  },
  {
    flag: "--metrics-timeout",
    key: "metricsTimeout",
    type: "seconds",
    value: "S",
    min: 0,
    positive: true,
    default: 5,
    defaultText: "5",
    help: "a metrics client must send its whole request within this time (else 408 and closed), an idle keep-alive connection is closed after it, and a dashboard (/events) client that does not take its events for this long, or leaves more than 1 MiB unsent, is disconnected; each counted and logged",
  },
  {
    flag: "--exit-with-parent",
    key: "exitWithParent",
    type: "boolean",
    default: true,
    defaultText: "on",
    help: "stop (draining, as on SIGTERM) when the process that started the engine exits, also through npx, npm or sh -c (npx killed with SIGKILL, a supervisor gone); --no-exit-with-parent keeps it running, e.g. under nohup or started with & by a script that exits (wallaroo run; send and receive take --no-exit-with-parent too)",
  },
] as const satisfies readonly EngineFlag[];

type Flags = (typeof ENGINE_FLAGS)[number];
type ValueOf<T extends FlagType> = T extends "boolean" ? boolean : T extends "string" | "path" ? string : number;

/** The options that have a flag, typed from ENGINE_FLAGS. */
export type EngineFlagOptions = { [F in Flags as F["key"]]?: ValueOf<F["type"]> };

export interface EngineOptions extends EngineFlagOptions {
  /** the application module: a path (relative to the cwd) or a file: URL */
  module: string | URL;
  /** every command-line argument; passed to applicationSetup as is */
  args?: string[];
  /** @deprecated milliseconds; use drainTimeout (seconds) */
  drainTimeoutMs?: number;
  /** @deprecated milliseconds; use checkpointTimeout (seconds) */
  checkpointTimeoutMs?: number;
  /** @deprecated milliseconds; use stallTimeout (seconds) */
  stallTimeoutMs?: number;
}

export type EngineFlagKey = Flags["key"];

/** A bad command-line flag or option value; the CLI prints it and exits 2. */
export class EngineOptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineOptionError";
  }
}

function unitOf(f: EngineFlag): string {
  return f.type === "seconds" ? "seconds" : f.type === "bytes" ? "bytes" : "";
}

/** Why a value given as text is not acceptable for `f`, or undefined. */
function textProblem(f: EngineFlag, text: string): string | undefined {
  switch (f.type) {
    case "integer":
    case "bytes":
      return integerProblem(text, f.min ?? 0, f.max);
    case "seconds":
      return numberProblem(text, f.min ?? 0, f.positive ?? false);
    case "string":
    case "path":
      return text.trim() === "" ? `needs a value (${f.value ?? "TEXT"})` : undefined;
    case "boolean":
      return undefined;
  }
}

function fromText(f: EngineFlag, text: string): number | string {
  return f.type === "string" || f.type === "path" ? text : Number(text);
}

export interface ParsedFlags {
  /** the engine's options found in argv */
  options: EngineFlagOptions;
  /** `--flags` that are not the engine's but look like a misspelling of one: [given, suggestion] */
  nearMisses: [string, string][];
}

/**
 * Picks the engine's flags out of argv (`--flag V` or `--flag=V`); everything else is
 * the application's and is left alone. A flag the engine does not know but that is
 * within edit distance 2 of one of its flags is reported in nearMisses (`wallaroo
 * run` refuses it: a misspelled --resilience-dir must not run without resilience).
 * Everything after the first `--` is the application's: not read, not checked.
 */
export function parseEngineFlags(argv: readonly string[]): ParsedFlags {
  const options: Record<string, unknown> = {};
  const nearMisses: [string, string][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    const name = eq > 0 ? a.slice(0, eq) : a;
    // --no-FLAG turns off a boolean flag that is on by default
    const off: EngineFlag | undefined = ENGINE_FLAGS.find((x) => negatable(x) && `--no-${x.flag.slice(2)}` === name);
    if (off !== undefined) {
      if (eq > 0) throw new EngineOptionError(`${name} takes no value, got ${JSON.stringify(a)}`);
      options[off.key] = false;
      continue;
    }
    const f: EngineFlag | undefined = ENGINE_FLAGS.find((x) => x.flag === name);
    if (f === undefined) {
      const near = nearestFlag(name);
      if (near !== undefined) nearMisses.push([name, near]);
      continue;
    }
    if (f.type === "boolean") {
      if (eq > 0) throw new EngineOptionError(`${f.flag} takes no value, got ${JSON.stringify(a)}`);
      options[f.key] = true;
      continue;
    }
    let text: string | undefined;
    if (eq > 0) text = a.slice(eq + 1);
    else {
      text = argv[i + 1];
      if (text === undefined || (text.startsWith("--") && text.length > 2)) {
        throw new EngineOptionError(`${f.flag} needs a value: ${f.flag} ${f.value ?? "VALUE"}`);
      }
      i++;
    }
    const problem = textProblem(f, text);
    if (problem !== undefined) throw new EngineOptionError(`${f.flag} ${problem}`);
    options[f.key] = fromText(f, text);
  }
  return { options: options as EngineFlagOptions, nearMisses };
}

/** The engine flag within edit distance 2 of `name` (the closest), or undefined. */
export function nearestFlag(name: string): string | undefined {
  let best: { flag: string; d: number } | undefined;
  const spellings = (ENGINE_FLAGS as readonly EngineFlag[]).flatMap((f) =>
    negatable(f) ? [f.flag, `--no-${f.flag.slice(2)}`] : [f.flag],
  );
  for (const flag of spellings) {
    const d = editDistance(name, flag);
    if (d <= 2 && (best === undefined || d < best.d)) best = { flag, d };
  }
  return best?.flag;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * Checks the flag options of runApplication() (the library path, where nothing was
 * parsed from text) and returns them with the defaults filled in; options without a
 * fixed default (workers, kafkaGroup, resilienceDir) stay undefined when not given.
 */
export function resolveEngineOptions(o: EngineOptions): EngineFlagOptions {
  if (typeof o?.module !== "string" && !(o?.module instanceof URL)) {
    throw new EngineOptionError(
      `module must be the application's path (relative to the current directory) or a file: URL, got ${o?.module === null ? "null" : typeof o?.module}`,
    );
  }
  if (o.args !== undefined && (!Array.isArray(o.args) || o.args.some((a) => typeof a !== "string"))) {
    throw new EngineOptionError("args must be an array of strings (what applicationSetup(args) receives)");
  }
  const given: Record<string, unknown> = { ...o };
  // The deprecated millisecond spellings, when the seconds ones are not given.
  if (given.drainTimeout === undefined && o.drainTimeoutMs !== undefined) given.drainTimeout = o.drainTimeoutMs / 1000;
  if (given.checkpointTimeout === undefined && o.checkpointTimeoutMs !== undefined)
    given.checkpointTimeout = o.checkpointTimeoutMs / 1000;
  if (given.stallTimeout === undefined && o.stallTimeoutMs !== undefined) given.stallTimeout = o.stallTimeoutMs / 1000;
  const out: Record<string, unknown> = {};
  for (const f of ENGINE_FLAGS as readonly EngineFlag[]) {
    const v = given[f.key];
    if (v === undefined) {
      out[f.key] = f.default;
      continue;
    }
    const bad = (want: string) =>
      new EngineOptionError(
        `${f.key} (${f.flag}) must be ${want}, got ${typeof v === "string" ? JSON.stringify(v) : String(v)}`,
      );
    switch (f.type) {
      case "boolean":
        if (typeof v !== "boolean") throw bad("true or false");
        break;
      case "string":
      case "path":
        if (typeof v !== "string" || v.trim() === "") throw bad("a non-empty string");
        break;
      default: {
        if (typeof v !== "number") throw bad(`a number (${unitOf(f) || "an integer"})`);
        const problem = textProblem(f, String(v));
        if (problem !== undefined || (f.type !== "seconds" && !Number.isSafeInteger(v)))
          throw new EngineOptionError(`${f.key} (${f.flag}) ${problem ?? "must be an integer"}`);
      }
    }
    out[f.key] = v;
  }
  return out as EngineFlagOptions;
}

/** One option in effect, as the dashboard's configuration view shows it. */
export type { ConfigEntry } from "../metrics/history.js";
import type { ConfigEntry } from "../metrics/history.js";

/**
 * The options in effect, for display: every flag of `flags` with its value, except the
 * secret ones (`secret: true`), which are left out whole, so that neither their value nor
 * whether one was given shows. `effective` overrides a value computed at start (workers).
 */
export function engineConfiguration(
  options: EngineFlagOptions,
  effective: Partial<Record<string, number | string | boolean>> = {},
  flags: readonly EngineFlag[] = ENGINE_FLAGS,
): ConfigEntry[] {
  const out: ConfigEntry[] = [];
  for (const f of flags) {
    if (f.secret === true) continue;
    const given = (options as Record<string, unknown>)[f.key];
    const v = effective[f.key] ?? given;
    const isDefault = given === undefined || given === f.default;
    const value =
      v === undefined
        ? f.defaultText
        : f.type === "boolean"
          ? v
            ? "on"
            : "off"
          : `${String(v)}${f.type === "seconds" ? " s" : ""}`;
    out.push({ flag: f.flag, value, isDefault });
  }
  return out;
}

/** A boolean flag that is on by default, so that --no-FLAG turns it off. */
function negatable(f: EngineFlag): boolean {
  return f.type === "boolean" && f.default === true;
}

function usage(f: EngineFlag): string {
  if (negatable(f)) return `--[no-]${f.flag.slice(2)}`;
  return f.value === undefined ? f.flag : `${f.flag} ${f.value}`;
}

/** Word-wraps `text` to `width` columns. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** The flag list of `wallaroo run --help`. */
export function engineFlagsHelp(): string {
  const col = 26;
  const out: string[] = [];
  for (const f of ENGINE_FLAGS as readonly EngineFlag[]) {
    const left = `  ${usage(f)}`;
    const unit = /^\d/.test(f.defaultText) ? unitOf(f).replace(/s$/, f.defaultText === "1" ? "" : "s") : "";
    const text = wrap(`${f.help} (default: ${f.defaultText}${unit ? ` ${unit}` : ""})`, 78 - col);
    if (left.length + 2 <= col) out.push(left.padEnd(col) + text[0]);
    else out.push(left, " ".repeat(col) + text[0]);
    for (const t of text.slice(1)) out.push(" ".repeat(col) + t);
  }
  return `${out.join("\n")}\n`;
}

/** The flag table of docs/operations.md (markdown). */
export function engineFlagsTable(): string {
  const rows = ["| flag | default | unit | meaning |", "|---|---|---|---|"];
  for (const f of ENGINE_FLAGS as readonly EngineFlag[]) {
    rows.push(`| \`${usage(f)}\` | ${f.defaultText} | ${unitOf(f) || "–"} | ${f.help} |`);
  }
  return `${rows.join("\n")}\n`;
}
