/**
 * `wallaroo run APP [engine flags] [app args]`: every argument also goes to the
 * application's applicationSetup, and flags the engine does not know belong to the
 * application, as with Machida.
 */
import { availableParallelism } from "node:os";
import {
  checkMaxFrameBytes,
  describeLoss,
  EngineStopError,
  maxWorkers,
  runApplication,
  type Application,
  type EngineOptions,
} from "../runtime/coordinator.js";
import { createLogger, errorInfo, errorMessage, errorWithFrame, userFrame } from "../core/log.js";
import { loadAppModule, moduleUrl } from "../runtime/loader.js";
import { engineFlagsHelp, parseEngineFlags } from "../runtime/options.js";
import { watchLauncher } from "./launcher-watch.js";
import { findApplicationModule } from "../runtime/python.js";

export const RUN_HELP = `Usage: wallaroo run APP.ts|APP.js|APP.py [engine flags] [application args] [-- application args]
       wallaroo run --application-module NAME [engine flags] [application args]

Runs a Wallaroo application: loads APP (TypeScript runs as is; a Python 3
module runs in an interpreter inside each worker thread, and --application-module
finds NAME.py in the working directory, then PYTHONPATH), calls its
applicationSetup(args) (application_setup in Python) with every argument given
here, as given (APP first, the -- too), and runs the pipelines on a pool of
worker threads until SIGINT, SIGTERM or SIGHUP, which stop the sources and drain
every message in flight to the sinks (at most --drain-timeout seconds). A second
signal exits at once without draining.

Engine flags (everything else is left to the application; a flag within two
typos of an engine flag is refused (exit 2), so a misspelled --resilience-dir
cannot run without resilience; the engine reads nothing after --, so an
application flag that looks like an engine flag goes there. Durations are in
seconds, sizes in bytes):
${engineFlagsHelp()}  --help                  this text (after APP: also the application's help)

Typical application args (parsed by the app with wallaroo.tcpParseInputAddr etc.):
  --in HOST:PORT[,HOST:PORT]   where the TCP sources listen (port 0: any free port)
  --out HOST:PORT              where the TCP sink connects

Logs are JSON lines (pino) on stderr; WALLAROO_LOG_LEVEL=debug|info|warn|error.

Exit codes:
  0    stopped on request; everything read was delivered (and, with
       --resilience-dir, the final checkpoint written)
  1    could not start (application, flags it rejects, ports, store: another
       application's, corrupt, without its MANIFEST, or not lockable on a
       full disk; with --resilience-dir a state class whose fresh instance
       cannot be serialized)
  2    bad command line (a bad value, a misspelled engine flag)
  3    the engine failed: an error in user code with --fail-fast, a worker or
       I/O thread that died, crashed, ran out of memory or stalled, user code
       calling process.exit(), a checkpoint that could not be written. The
       error is logged with its stack; a restart with --resilience-dir resumes
       from the last checkpoint
  4    stopped on request but something was lost: output not delivered within
       --drain-timeout (counted per sink), the final checkpoint failed (a full
       disk, or a checkpoint that failed during the stop), or dead letters
       could not be written (--dead-letter on a full disk)
  130  a second signal during the stop: exited without draining

Example:
  wallaroo run examples/word_count/app.ts --in 127.0.0.1:7010 --out 127.0.0.1:7002 --workers 2
`;

/**
 * `wallaroo run APP --help`: the engine's flags, then the application's own help
 * when its module exports a `help` string (loading it runs its top level only).
 */
async function appHelp(module: string): Promise<number> {
  process.stdout.write(RUN_HELP);
  let mod: Record<string, unknown>;
  try {
    mod = await loadAppModule(moduleUrl(module));
  } catch (err) {
    process.stderr.write(`wallaroo run: cannot load ${module} for its help: ${errorMessage(err)}\n`);
    return 1;
  }
  const help = mod.help;
  process.stdout.write(
    typeof help === "string"
      ? `\nApplication ${module}:\n${help.endsWith("\n") ? help : `${help}\n`}`
      : /\.py$/.test(module)
        ? `\n${module} defines no help string (a module-level help = "..." documents its arguments here).\n`
        : `\n${module} exports no help string (export const help = "..." to document its arguments here).\n`,
  );
  return 0;
}

/** The exit codes of `wallaroo run` (documented in RUN_HELP and docs/operations.md, Exit codes). */
export const EXIT = { OK: 0, START_FAILED: 1, USAGE: 2, FAILED: 3, LOST: 4, FORCED: 130 } as const;

export async function runMain(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(RUN_HELP);
    return argv.length === 0 ? 2 : 0;
  }
  const log = createLogger("wallaroo.cli");
  let [module, ...rest] = argv;
  if (module === "--application-module") {
    // Machida's form: a Python module name, looked up in the working directory, then PYTHONPATH
    try {
      module = findApplicationModule(rest[0] ?? "");
    } catch (err) {
      process.stderr.write(`wallaroo run: ${errorMessage(err)}\n`);
      return EXIT.USAGE;
    }
    rest = rest.slice(1);
  }
  // Only --help: "-h" may be an application's own short flag (a host, say). After --, it is the application's.
  const dashDash = rest.indexOf("--");
  if ((dashDash < 0 ? rest : rest.slice(0, dashDash)).includes("--help")) return appHelp(module);
  let options: EngineOptions;
  try {
    const parsed = parseEngineFlags(rest);
    options = { ...parsed.options, module, args: argv };
    // A misspelled safety flag (--resilence-dir) would run without resilience: refused, with the way
    // to mean it (after --, where the engine reads nothing).
    const [miss] = parsed.nearMisses;
    if (miss !== undefined) {
      const [given, near] = miss;
      throw new Error(
        `${given} is not an engine flag: did you mean ${near}? If ${given} is the application's own flag, ` +
          `put it after --, which ends the engine's flags: wallaroo run ${module} [engine flags] -- ${given} ...`,
      );
    }
    // the platform's limit, with the reason (runApplication checks it too, for library users)
    if (options.maxFrameBytes !== undefined) checkMaxFrameBytes(options.maxFrameBytes);
    // (more workers than cores is warned about by runApplication, for library users too)
    if (options.workers !== undefined && options.workers > maxWorkers()) {
      throw new Error(
        `--workers ${options.workers} is more than this machine can use: at most ${maxWorkers()} (4 per core on ${availableParallelism()} cores, never above 256)`,
      );
    }
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
  // On unless --no-exit-with-parent: an engine whose starter is gone would keep its ports with nobody to stop it.
  if (options.exitWithParent !== false) {
    watchLauncher((what) => {
      // Ctrl-C reaches the engine and its launchers together: the launchers' exit is then
      // no news, and must not count as the second signal that stops without draining.
      if (stopRequested) return;
      log.warn(`${what}: stopping (--no-exit-with-parent keeps the engine running)`);
      onSignal("the process that started the engine exited");
    });
  }
  try {
    app = await runApplication(options);
  } catch (err) {
    // The log line for machines, a plain line for the person at the terminal: both
    // name the user's file and line when the error came from the user's code.
    // err stays the message (as before: tools and tests read it); type, at and stack beside it.
    const info = errorInfo(err);
    log.error(
      { err: errorMessage(err), type: info.type, at: info.at, stack: info.stack },
      `cannot start ${module}: ${errorWithFrame(err)}`,
    );
    const at = userFrame(err);
    process.stderr.write(`wallaroo run: cannot start ${module}: ${errorMessage(err)}\n${at ? `    at ${at}\n` : ""}`);
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
        process.stderr.write(
          `wallaroo: ${r.failure.message}${r.failure.error?.stack ? `\n${r.failure.error.stack}` : ""}\n`,
        );
        return EXIT.FAILED;
      }
      process.stderr.write(`wallaroo: stopped, but lost: ${describeLoss(r)}\n`);
      return EXIT.LOST;
    }
    process.stderr.write(`wallaroo: ${errorMessage(err)}\n`);
    return EXIT.FAILED;
  }
}
