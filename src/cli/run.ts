/**
 * `wallaroo run APP [engine flags] [app args]`: every argument also goes to the
 * application's applicationSetup, and flags the engine does not know belong to the
 * application, as with Machida.
 */
import { availableParallelism } from "node:os";
import {
  checkMaxFrameBytes, describeLoss, EngineStopError, maxWorkers, runApplication, type Application, type EngineOptions,
} from "../runtime/coordinator.js";
import { createLogger, errorMessage } from "../core/log.js";

export const RUN_HELP = `Usage: wallaroo run APP.ts|APP.js [engine flags] [application args]

Runs a Wallaroo application: loads APP (TypeScript runs as is), calls its
applicationSetup(args) with every argument given here, and runs the pipelines
on a pool of worker threads until SIGINT, SIGTERM or SIGHUP, which stop the
sources and drain every message in flight to the sinks (at most --drain-timeout
seconds). A second signal exits at once without draining.

Engine flags (everything else is left to the application):
  --workers N           worker threads (default: one per core; more than one per
                        core is warned about, more than 4 per core or 256 is
                        refused)
  --max-frame-bytes N   largest message a TCP source accepts; a bigger header
                        closes that connection (default 16777216, at most
                        4294967287: one Buffer, 32-bit lengths between threads)
  --fail-fast           stop the engine with exit code 3 on the first error in
                        user code, an exception thrown from a timer or callback
                        of user code, or a promise it left rejected (default:
                        drop that message, log with the stack, count)
  --stats-interval S    seconds between stats lines on stderr, 0 = none (default 5)
  --ring-bytes N        size of each source/sink ring buffer (default 2097152)
  --drain-timeout S     how long a stop waits for in-flight output; a stop always
                        ends within it plus 11 s (5 s each for the final
                        checkpoint and for closing the sinks, 1 s for the last
                        counts); what did not arrive is counted per sink,
                        exit code 4 (default 30)
  --stall-timeout S     a thread whose event loop does not run for S seconds
                        (user code in an infinite loop) stops the engine,
                        exit code 3; 0 = never (default 30)
  --kafka-group ID      consumer group of the Kafka sources (default: the
                        application's name)
  --resilience-dir DIR  checkpoint state (instances whose computation returned
                        saveState = true) and Kafka source offsets to a store in
                        DIR, restore them at start; Kafka sinks become
                        transactional (default: off, state in memory only)
  --checkpoint-interval S  seconds between checkpoints (default 1)
  --checkpoint-timeout S   how long a checkpoint may wait for the engine to
                        drain before it is abandoned (default 10)
  --dead-letter DIR     write every message dropped because user code threw
                        (decoder, computation, partition function, encoder) to
                        DIR/worker-N.jsonl: one JSON line per drop with the
                        pipeline, step, error, stack and the raw payload (base64)
                        or the value (default: off; drops are logged and counted)
  --dead-letter-max-bytes N  a dead-letter file that reaches N bytes is moved to
                        worker-N.jsonl.1, replacing the older one, which is logged
                        (default 67108864: at most 2 x N per worker on disk)
  --help                this text

Typical application args (parsed by the app with wallaroo.tcpParseInputAddrs etc.):
  --in HOST:PORT[,HOST:PORT]   where the TCP sources listen
  --out HOST:PORT              where the TCP sink connects

Logs are JSON lines (pino) on stderr; WALLAROO_LOG_LEVEL=debug|info|warn|error.

Exit codes:
  0    stopped on request; everything read was delivered (and, with
       --resilience-dir, the final checkpoint written)
  1    could not start (application, flags it rejects, ports, store)
  2    bad command line
  3    the engine failed: an error in user code with --fail-fast, a worker or
       I/O thread that died, crashed, ran out of memory or stalled, user code
       calling process.exit(), a checkpoint that could not be written. The
       error is logged with its stack; a restart with --resilience-dir resumes
       from the last checkpoint
  4    stopped on request but something was lost: output not delivered within
       --drain-timeout (counted per sink), or the final checkpoint failed
  130  a second signal during the stop: exited without draining

Example:
  wallaroo run examples/word_count/app.ts --in 127.0.0.1:7010 --out 127.0.0.1:7002 --workers 2
`;

interface Flag {
  name: string;
  apply(o: EngineOptions, value: string | undefined): void;
  takesValue: boolean;
}

const int = (flag: string, v: string | undefined, min = 1): number => {
  const n = Number(v);
  if (v === undefined || !Number.isInteger(n) || n < min) throw new Error(`${flag} needs a whole number >= ${min}, got ${v ?? "nothing"}`);
  return n;
};

const FLAGS: Flag[] = [
  { name: "--workers", takesValue: true, apply: (o, v) => {
    const n = int("--workers", v);
    if (n > maxWorkers()) throw new Error(`--workers ${n} is more than this machine can use: at most ${maxWorkers()} (4 per core on ${availableParallelism()} cores, never above 256)`);
    o.workers = n;
  } },
  { name: "--max-frame-bytes", takesValue: true, apply: (o, v) => {
    o.maxFrameBytes = int("--max-frame-bytes", v);
    checkMaxFrameBytes(o.maxFrameBytes);
  } },
  { name: "--fail-fast", takesValue: false, apply: (o) => { o.failFast = true; } },
  { name: "--stats-interval", takesValue: true, apply: (o, v) => { o.statsInterval = int("--stats-interval", v, 0); } },
  { name: "--ring-bytes", takesValue: true, apply: (o, v) => { o.ringBytes = int("--ring-bytes", v, 4096); } },
  { name: "--drain-timeout", takesValue: true, apply: (o, v) => { o.drainTimeoutMs = int("--drain-timeout", v, 0) * 1000; } },
  { name: "--stall-timeout", takesValue: true, apply: (o, v) => { o.stallTimeoutMs = int("--stall-timeout", v, 0) * 1000; } },
  { name: "--kafka-group", takesValue: true, apply: (o, v) => {
    if (!v) throw new Error("--kafka-group needs a consumer group id");
    o.kafkaGroup = v;
  } },
  { name: "--resilience-dir", takesValue: true, apply: (o, v) => {
    if (!v) throw new Error("--resilience-dir needs a directory");
    o.resilienceDir = v;
  } },
  { name: "--checkpoint-interval", takesValue: true, apply: (o, v) => {
    const n = Number(v);
    if (v === undefined || !(n > 0) || !Number.isFinite(n)) throw new Error(`--checkpoint-interval needs a positive number of seconds, got ${v ?? "nothing"}`);
    o.checkpointInterval = n;
  } },
  { name: "--checkpoint-timeout", takesValue: true, apply: (o, v) => {
    const n = Number(v);
    if (v === undefined || !(n > 0) || !Number.isFinite(n)) throw new Error(`--checkpoint-timeout needs a positive number of seconds, got ${v ?? "nothing"}`);
    o.checkpointTimeoutMs = n * 1000;
  } },
  { name: "--dead-letter", takesValue: true, apply: (o, v) => {
    if (!v) throw new Error("--dead-letter needs a directory");
    o.deadLetterDir = v;
  } },
  { name: "--dead-letter-max-bytes", takesValue: true, apply: (o, v) => { o.deadLetterMaxBytes = int("--dead-letter-max-bytes", v, 1); } },
];

/** Picks the engine's flags out of argv; the rest is the application's. */
export function parseEngineFlags(argv: string[]): EngineOptions {
  const o: EngineOptions = { module: "" };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf("=");
    const name = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const flag = FLAGS.find((f) => f.name === name);
    if (!flag) continue;
    if (!flag.takesValue) flag.apply(o, undefined);
    else flag.apply(o, eq > 0 && a.startsWith("--") ? a.slice(eq + 1) : argv[++i]);
  }
  return o;
}

/** The exit codes of `wallaroo run` (documented in RUN_HELP and the README). */
export const EXIT = { OK: 0, START_FAILED: 1, USAGE: 2, FAILED: 3, LOST: 4, FORCED: 130 } as const;

export async function runMain(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(RUN_HELP);
    return argv.length === 0 ? 2 : 0;
  }
  const log = createLogger("wallaroo.cli");
  const [module, ...rest] = argv;
  let options: EngineOptions;
  try {
    options = { ...parseEngineFlags(rest), module, args: argv };
  } catch (err) {
    process.stderr.write(`wallaroo run: ${errorMessage(err)}\n`);
    return EXIT.USAGE;
  }
  // Signal handlers come first: a SIGTERM while the engine is still starting (loading the
  // app, waiting for Kafka brokers) must stop it cleanly once it runs, not kill it.
  let app: Application | null = null;
  let stopRequested = false;
  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      log.warn(`${sig} again: exiting without draining`);
      process.exit(EXIT.FORCED);
    }
    stopRequested = true;
    log.info(app ? `${sig}: draining` : `${sig} while starting: stopping once the engine runs`);
    if (app) app.stop().catch(() => {});
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  // A closed terminal (or a supervisor's reload signal) must not end the engine without a drain.
  process.on("SIGHUP", () => onSignal("SIGHUP"));
  try {
    app = await runApplication(options);
  } catch (err) {
    log.error({ err: errorMessage(err) }, `cannot start ${module}: ${errorMessage(err)}`);
    return EXIT.START_FAILED;
  }
  // The handlers above only start the stop; its outcome is observed through done.
  if (stopRequested) app.stop().catch(() => {});
  try {
    await app.done;
    return EXIT.OK;
  } catch (err) {
    if (err instanceof EngineStopError) {
      const r = err.report;
      if (r.failure) {
        process.stderr.write(`wallaroo: ${r.failure.message}${r.failure.error?.stack ? `\n${r.failure.error.stack}` : ""}\n`);
        return EXIT.FAILED;
      }
      process.stderr.write(`wallaroo: stopped, but lost: ${describeLoss(r)}\n`);
      return EXIT.LOST;
    }
    process.stderr.write(`wallaroo: ${errorMessage(err)}\n`);
    return EXIT.FAILED;
  }
}
