/**
 * `wallaroo run APP [engine flags] [app args]`: every argument also goes to the
 * application's applicationSetup, and flags the engine does not know belong to the
 * application, as with Machida.
 */
import { runApplication, type Application, type EngineOptions } from "../runtime/coordinator.js";
import { availableParallelism } from "node:os";
import { createLogger, errorInfo, errorMessage, errorWithFrame, userFrame } from "../runtime/log.js";
import { loadAppModule, moduleUrl } from "../runtime/loader.js";
import { engineFlagsHelp, parseEngineFlags } from "../runtime/options.js";

export const RUN_HELP = `Usage: wallaroo run APP.ts|APP.js [engine flags] [application args]

Runs a Wallaroo application: loads APP (TypeScript runs as is), calls its
applicationSetup(args) with every argument given here, and runs the pipelines
on a pool of worker threads until SIGINT or SIGTERM, which stop the sources,
drain every message in flight to the sinks and exit 0.

Engine flags (everything else is left to the application; durations are in
seconds, sizes in bytes):
${engineFlagsHelp()}  --help                  this text (after APP: also the application's help)

Typical application args (parsed by the app with wallaroo.tcpParseInputAddr etc.):
  --in HOST:PORT[,HOST:PORT]   where the TCP sources listen (port 0: any free port)
  --out HOST:PORT              where the TCP sink connects

Logs are JSON lines (pino) on stderr; WALLAROO_LOG_LEVEL=debug|info|warn|error.

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
  process.stdout.write(typeof help === "string"
    ? `\nApplication ${module}:\n${help.endsWith("\n") ? help : `${help}\n`}`
    : `\n${module} exports no help string (export const help = "..." to document its arguments here).\n`);
  return 0;
}

/**
 * --exit-with-parent: a process whose parent dies is re-parented (to init or a
 * subreaper), so its ppid changes; polling it works for any parent on Linux and
 * macOS, whether or not the parent gave us a pipe or an IPC channel (npm's shell,
 * a supervisor, a test harness), and costs one syscall per half second.
 */
function watchParent(onGone: () => void, log: ReturnType<typeof createLogger>): void {
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    log.warn({ parent, now: process.ppid }, `parent process ${parent} exited (--exit-with-parent): stopping`);
    onGone();
  }, 500);
  timer.unref();
}

export async function runMain(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h") {
    process.stdout.write(RUN_HELP);
    return argv.length === 0 ? 2 : 0;
  }
  const log = createLogger("wallaroo.cli");
  const [module, ...rest] = argv;
  // Only --help: "-h" may be an application's own short flag (a host, say).
  if (rest.includes("--help")) return appHelp(module);
  let options: EngineOptions;
  try {
    const parsed = parseEngineFlags(rest);
    options = { ...parsed.options, module, args: argv };
    for (const [given, near] of parsed.nearMisses) {
      log.warn({ flag: given, suggestion: near }, `${given} is not an engine flag (did you mean ${near}?); passing it to the application`);
    }
    const cores = availableParallelism();
    if (options.workers !== undefined && options.workers > cores) {
      log.warn({ workers: options.workers, cores },
        `--workers ${options.workers} is more than the ${cores} core(s) of this machine: workers will share cores (slower, not faster)`);
    }
  } catch (err) {
    process.stderr.write(`wallaroo run: ${errorMessage(err)}\n`);
    return 2;
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
      process.exit(130);
    }
    stopRequested = true;
    log.info(app ? `${sig}: draining` : `${sig} while starting: stopping once the engine runs`);
    if (app) void app.stop();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  if (options.exitWithParent) watchParent(() => onSignal("parent process exited"), log);
  try {
    app = await runApplication(options);
  } catch (err) {
    // The log line for machines, a plain line for the person at the terminal: both
    // name the user's file and line when the error came from the user's code.
    // err stays the message (as before: tools and tests read it); type, at and stack beside it.
    const info = errorInfo(err);
    log.error({ err: errorMessage(err), type: info.type, at: info.at, stack: info.stack }, `cannot start ${module}: ${errorWithFrame(err)}`);
    const at = userFrame(err);
    process.stderr.write(`wallaroo run: cannot start ${module}: ${errorMessage(err)}\n${at ? `    at ${at}\n` : ""}`);
    return 1;
  }
  if (stopRequested) void app.stop();
  try {
    await app.done;
    return 0;
  } catch (err) {
    process.stderr.write(`wallaroo: ${errorMessage(err)}\n`);
    return 1;
  }
}
