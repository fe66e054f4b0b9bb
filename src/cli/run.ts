/**
 * `wallaroo run APP [engine flags] [app args]`: every argument also goes to the
 * application's applicationSetup, and flags the engine does not know belong to the
 * application, as with Machida.
 */
import { runApplication, type Application, type EngineOptions } from "../runtime/coordinator.js";
import { createLogger, errorMessage } from "../runtime/log.js";

export const RUN_HELP = `Usage: wallaroo run APP.ts|APP.js [engine flags] [application args]

Runs a Wallaroo application: loads APP (TypeScript runs as is), calls its
applicationSetup(args) with every argument given here, and runs the pipelines
on a pool of worker threads until SIGINT or SIGTERM, which stop the sources,
drain every message in flight to the sinks and exit 0.

Engine flags (everything else is left to the application):
  --workers N           worker threads (default: one per core)
  --max-frame-bytes N   largest message a TCP source accepts; a bigger header
                        closes that connection (default 16777216)
  --fail-fast           stop the engine with exit code 1 on the first error in
                        user code (default: drop that message, log, count)
  --stats-interval S    seconds between stats lines on stderr, 0 = none (default 5)
  --ring-bytes N        size of each source/sink ring buffer (default 2097152)
  --drain-timeout S     how long a stop waits for in-flight output (default 30)
  --kafka-group ID      consumer group of the Kafka sources (default: the
                        application's name)
  --resilience-dir DIR  checkpoint state (instances whose computation returned
                        saveState = true) and Kafka source offsets to a store in
                        DIR, restore them at start; Kafka sinks become
                        transactional (default: off, state in memory only)
  --checkpoint-interval S  seconds between checkpoints (default 1)
  --checkpoint-timeout S   how long a checkpoint may wait for the engine to
                        drain before it is abandoned (default 10)
  --metrics-port N      serve Prometheus metrics on http://HOST:N/metrics and a
                        live dashboard on http://HOST:N/ (0 = any free port,
                        logged at start; default: off)
  --metrics-host HOST   address the metrics server binds to (default 127.0.0.1;
                        0.0.0.0 to let a Prometheus on another machine scrape)
  --help                this text

Typical application args (parsed by the app with wallaroo.tcpParseInputAddrs etc.):
  --in HOST:PORT[,HOST:PORT]   where the TCP sources listen
  --out HOST:PORT              where the TCP sink connects

Logs are JSON lines (pino) on stderr; WALLAROO_LOG_LEVEL=debug|info|warn|error.

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
  { name: "--workers", takesValue: true, apply: (o, v) => { o.workers = int("--workers", v); } },
  { name: "--max-frame-bytes", takesValue: true, apply: (o, v) => { o.maxFrameBytes = int("--max-frame-bytes", v); } },
  { name: "--fail-fast", takesValue: false, apply: (o) => { o.failFast = true; } },
  { name: "--stats-interval", takesValue: true, apply: (o, v) => { o.statsInterval = int("--stats-interval", v, 0); } },
  { name: "--ring-bytes", takesValue: true, apply: (o, v) => { o.ringBytes = int("--ring-bytes", v, 4096); } },
  { name: "--drain-timeout", takesValue: true, apply: (o, v) => { o.drainTimeoutMs = int("--drain-timeout", v, 0) * 1000; } },
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
  { name: "--metrics-port", takesValue: true, apply: (o, v) => {
    const n = int("--metrics-port", v, 0);
    if (n > 65535) throw new Error(`--metrics-port needs a port number from 0 to 65535, got ${v}`);
    o.metricsPort = n;
  } },
  { name: "--metrics-host", takesValue: true, apply: (o, v) => {
    if (!v) throw new Error("--metrics-host needs an address");
    o.metricsHost = v;
  } },
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
  try {
    app = await runApplication(options);
  } catch (err) {
    log.error({ err: errorMessage(err) }, `cannot start ${module}: ${errorMessage(err)}`);
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
