/**
 * Python applications (`wallaroo run APP.py`): the application module runs in a
 * CPython interpreter inside the loading thread (Pyodide: CPython compiled to
 * WebAssembly), one interpreter per thread, no subprocess. What application_setup
 * declares is replayed on the engine's own ApplicationBuilder with each user
 * function wrapped in a call into the interpreter, so the plan, ordering,
 * backpressure, resilience, metrics, dead letters and exit codes are those of a
 * TypeScript application. The Python side lives in python/wallaroo.py (the API)
 * and python/_wallaroo_engine.py (the adapters; its docstring says what crosses
 * the boundary and how).
 *
 * The loader (loader.ts) hands the result to setupApplication and createSerde as
 * if it were a TypeScript module exporting application_setup, serialize and
 * deserialize: serialization is pickle (or the app's own top-level pair) for
 * messages crossing workers and for checkpoints alike.
 */
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { threadId } from "node:worker_threads";
import { createRequire } from "node:module";
import { basename, delimiter, dirname, isAbsolute, join, resolve as resolvePath, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { ApplicationBuilder } from "../api/builder.js";
import { KafkaSinkConfig, KafkaSourceConfig, TCPSinkConfig, TCPSourceConfig } from "../api/configs.js";
import {
  computation,
  computationMulti,
  decoder,
  encoder,
  partition,
  stateComputation,
  stateComputationMulti,
} from "../api/wrappers.js";
import type { ApplicationSpec, Computation, PartitionFunction, StateComputation } from "../topology/spec.js";

/** the package's own Python code (python/wallaroo.py, python/_wallaroo_engine.py), from dist/runtime or src/runtime */
const PYTHON_DIR = fileURLToPath(new URL("../../python/", import.meta.url));

/** A Pyodide proxy of a Python object, typed loosely (pyodide's own types are not re-exported here). */
type Py = any;

export function isPythonModule(url: string): boolean {
  return /\.py$/.test(new URL(url).pathname);
}

/**
 * `--application-module NAME` (Machida's flag): NAME.py in the working directory,
 * then in each PYTHONPATH directory. Returns the path, or throws naming where it looked.
 */
export function findApplicationModule(name: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[A-Za-z_][\w.]*$/.test(name)) {
    throw new Error(`--application-module takes a Python module name (like word_count), got ${JSON.stringify(name)}`);
  }
  const rel = `${name.replace(/\./g, sep)}.py`;
  const dirs = [process.cwd(), ...(env.PYTHONPATH ?? "").split(delimiter).filter((d) => d !== "")];
  for (const d of dirs) {
    const p = resolvePath(d, rel);
    if (existsSync(p)) return p;
  }
  throw new Error(
    `--application-module ${name}: no ${rel} in the working directory or PYTHONPATH (looked in ${dirs.join(", ")})`,
  );
}

let interpreter: Promise<Py> | null = null;

/**
 * This thread's interpreter, loaded once. The host directories the application may
 * use (its own, the working directory, PYTHONPATH, this package's python/) are
 * mounted at their own paths, so tracebacks name the user's real files and data
 * files open relative to the user's working directory.
 */
function pyodide(appDir: string): Promise<Py> {
  if (interpreter) return interpreter;
  interpreter = (async () => {
    const require = createRequire(import.meta.url);
    const indexURL = dirname(require.resolve("pyodide/package.json")) + sep;
    const { loadPyodide } = (await import("pyodide")) as { loadPyodide: (o: object) => Promise<Py> };
    const cwd = process.cwd();
    const pythonPath = (process.env.PYTHONPATH ?? "").split(delimiter).filter((d) => d !== "" && isAbsolute(d));
    const py = await loadInterpreter(loadPyodide, indexURL);
    // print() in user code goes to this process's stdout/stderr, line by line, as under CPython
    py.setStdout({ batched: (line: string) => process.stdout.write(`${line}\n`) });
    py.setStderr({ batched: (line: string) => process.stderr.write(`${line}\n`) });
    const mounted = new Set<string>();
    for (const dir of [appDir, cwd, ...pythonPath, PYTHONPATH_DIR()]) {
      // Mount the top-level host directory that holds `dir` (one mount serves every path under it);
      // the interpreter's own /lib (the standard library), /dev and /proc stay its own.
      const top = dir.split(sep).filter((s) => s !== "")[0];
      if (top === undefined || mounted.has(top) || ["lib", "dev", "proc"].includes(top)) continue;
      if (!existsSync(`/${top}`) || !statSync(`/${top}`).isDirectory()) continue;
      mounted.add(top);
      const fs = py.FS;
      try {
        fs.mkdirTree(`/${top}`);
      } catch {}
      // FS.mount, not mountNodeFS: that one refuses a non-empty folder, and the interpreter has its own /tmp
      fs.mount(fs.filesystems.NODEFS, { root: `/${top}` }, `/${top}`);
    }
    py.globals.set("_wallaroo_paths", py.toPy([appDir, ...pythonPath, PYTHONPATH_DIR()]));
    py.globals.set("_wallaroo_cwd", cwd);
    py.runPython(
      [
        "import os, sys",
        "os.chdir(_wallaroo_cwd)",
        "os.environ['HOME'] = _wallaroo_cwd",
        // the application's own folder first (helper modules next to it import as usual), then PYTHONPATH, then wallaroo
        "for p in reversed(list(_wallaroo_paths)):",
        "    if p not in sys.path: sys.path.insert(0, p)",
        `sys.path.remove(${JSON.stringify(PYTHONPATH_DIR())}); sys.path.append(${JSON.stringify(PYTHONPATH_DIR())})`,
        "del _wallaroo_paths, _wallaroo_cwd",
      ].join("\n"),
    );
    return py;
  })();
  return interpreter;
}

/**
 * A fresh interpreter. Starting CPython (initializing it, importing what Pyodide imports)
 * takes seconds per thread, and every worker thread starts one; a memory snapshot of a
 * started interpreter, kept in the OS temp folder per Pyodide and Node version, starts
 * the next ones in a fraction of that (bench/ANALYSIS.md, "Python applications"). The
 * first thread to find no snapshot makes it; a snapshot that cannot be read or loaded is
 * made again. WALLAROO_PYTHON_SNAPSHOT=0 turns this off.
 */
async function loadInterpreter(loadPyodide: (o: object) => Promise<Py>, indexURL: string): Promise<Py> {
  const { version } = (await import("pyodide")) as { version: string };
  const uid = typeof process.getuid === "function" ? process.getuid() : 0;
  const file = join(tmpdir(), `wallaroo-pyodide-${version}-node${process.versions.node}-uid${uid}.snapshot`);
  const useSnapshot = process.env.WALLAROO_PYTHON_SNAPSHOT !== "0";
  if (useSnapshot && existsSync(file)) {
    try {
      return await loadPyodide({ indexURL, _loadSnapshot: readFileSync(file) });
    } catch {
      // unusable (another Pyodide build wrote it): made again below
    }
  }
  if (!useSnapshot) return loadPyodide({ indexURL });
  const maker = await loadPyodide({ indexURL, _makeSnapshot: true });
  const snapshot = maker.makeMemorySnapshot() as Uint8Array;
  // Written whole, then renamed: a reader never sees half a snapshot.
  const tmp = `${file}.${process.pid}.${threadId}.tmp`;
  try {
    writeFileSync(tmp, snapshot);
    renameSync(tmp, file);
  } catch {
    rmSync(tmp, { force: true }); // a read-only temp folder: every thread starts the slow way
  }
  // The interpreter that made a snapshot is not used further (Pyodide's rule): one from the snapshot is.
  return loadPyodide({ indexURL, _loadSnapshot: snapshot });
}

function PYTHONPATH_DIR(): string {
  return PYTHON_DIR.endsWith(sep) ? PYTHON_DIR.slice(0, -1) : PYTHON_DIR;
}

/**
 * Loads a Python application module in this thread: imports it (a syntax error or an
 * exception at import fails here, with its traceback) and returns what the loader
 * expects of an application module.
 */
export async function loadPythonModule(url: string): Promise<Record<string, unknown>> {
  const path = fileURLToPath(url);
  const py = await pyodide(dirname(path));
  const engine = py.pyimport("_wallaroo_engine");
  const name = basename(path, ".py");
  if (!/^[A-Za-z_]\w*$/.test(name)) {
    throw new Error(`${path}: a Python application's file name must be a module name (letters, digits, _)`);
  }
  engine.load(name);
  values = { free: engine.free, describe: engine.describe_value, live: engine.live, pending: [] };
  const [pack, unpack] = engine.serde().toJs({ depth: 1 }) as [Py, Py];
  return {
    application_setup: (args: string[]) => buildSpec(engine.setup(py.toPy(args))),
    // pickle, or the app's own top-level serialize/deserialize (see createSerde)
    serialize: (v: PyRef) => Buffer.from(pack(v.h) as string, "latin1"),
    deserialize: (b: Uint8Array) => ref(unpack(plain(b)) as number),
    help: engine.app_help() as string | undefined,
    python: true,
  };
}

/** This thread's table of Python values (_wallaroo_engine._table): how to free and show them. */
let values: { free: Py; describe: Py; live: Py; pending: number[] } | null = null;

/** How many Python values this thread's interpreter holds for the engine (for tests and diagnostics). */
export function livePythonValues(): number {
  return values ? (values.live() as number) : 0;
}
/** handles whose PyRef was collected, freed in Python once this many have piled up */
const FREE_BATCH = 4096;
const collected = new FinalizationRegistry<number>((h) => values?.pending.push(h));

/**
 * A Python value as the engine holds it: the handle of the value in this thread's
 * interpreter (see _wallaroo_engine.py for why values stay there). The value lives while
 * this object does; a message crossing workers or going into a checkpoint is pickled
 * (serialize/deserialize above).
 */
export class PyRef {
  constructor(readonly h: number) {
    collected.register(this, h);
  }
  /** for dead letters and logs: the value's repr() */
  toJSON(): string {
    return values ? (values.describe(this.h) as string) : `<python value ${this.h}>`;
  }
  toString(): string {
    return this.toJSON();
  }
}

function ref(h: number): PyRef {
  const v = values!;
  if (v.pending.length >= FREE_BATCH) {
    v.free(v.pending.join(" "));
    v.pending.length = 0;
  }
  return new PyRef(h);
}

/** "START COUNT": the consecutive handles of a _multi step's outputs */
function refs(start: number, n: number): PyRef[] {
  const out = new Array<PyRef>(n);
  for (let i = 0; i < n; i++) out[i] = ref(start + i);
  return out;
}

/** A plain Uint8Array view of a Buffer: Pyodide converts typed arrays by their exact class, and knows no Buffer. */
function plain(b: Uint8Array): Uint8Array {
  return b.constructor === Uint8Array ? b : new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** The application description of _wallaroo_engine.describe, replayed on the engine's builder. */
function buildSpec(desc: Py): ApplicationSpec {
  const js = (d: Py) =>
    d && typeof d.toJs === "function" ? d.toJs({ depth: 1, dict_converter: Object.fromEntries }) : d;
  const top = js(desc) as Record<string, Py>;
  const name = top.name as string;
  const actions = js(top.actions) as Py[];
  const ab = new ApplicationBuilder(name);
  const comp = (d: Py) => {
    const c = js(d) as Record<string, Py>;
    return { name: c.name as string, multi: c.multi as boolean, fn: c.fn as Py, id: c.id as number };
  };
  const stateClasses = new Map<number, new () => object>();
  const partitions = new Map<number, PartitionFunction>();
  const computations = new Map<number, Computation | StateComputation>();
  const stateClass = (d: Py) => {
    const s = js(d) as Record<string, Py>;
    const known = stateClasses.get(s.id as number);
    if (known) return known;
    const make = s.make as Py;
    const className = s.name as string;
    // A constructor that returns the Python instance: the engine creates state with `new`.
    const C = {
      [className]: class {
        constructor() {
          // biome-ignore lint/correctness/noConstructorReturn: the instance is the Python object
          return ref(make() as number);
        }
      },
    }[className] as new () => object;
    stateClasses.set(s.id as number, C);
    return C;
  };
  const source = (d: Py) => {
    const s = js(d) as Record<string, Py>;
    const dd = js(s.decoder) as Record<string, Py>;
    const fn = dd.fn as Py;
    const dec = decoder(
      { headerLength: dd.header_length as number, lengthFmt: dd.length_fmt as string },
      (b: Buffer) => {
        const h = fn(plain(b));
        return h === undefined ? undefined : ref(h as number);
      },
    );
    if (s.kind === "tcp") return new TCPSourceConfig(s.host, s.port, dec);
    const brokers = (js(s.brokers) as Py[]).map((b) => js(b) as [string, string]);
    return new KafkaSourceConfig(s.topic, brokers, s.log_level, dec);
  };
  const sink = (d: Py) => {
    const s = js(d) as Record<string, Py>;
    const fn = s.fn as Py;
    if (s.kind === "tcp")
      return new TCPSinkConfig(
        s.host,
        s.port,
        // the encoder's bytes arrive as a latin-1 string, one char per byte (see _wallaroo_engine.py)
        encoder((v: PyRef) => Buffer.from(fn(v.h) as string, "latin1")),
      );
    const brokers = (js(s.brokers) as Py[]).map((b) => js(b) as [string, string]);
    return new KafkaSinkConfig(
      s.topic,
      brokers,
      s.log_level,
      s.max_produce_buffer_ms,
      s.max_message_size,
      encoder((v: PyRef) => fn(v.h)),
    );
  };
  for (const a0 of actions) {
    const a = js(a0) as Record<string, Py>;
    const op = a.op as string;
    if (op === "new_pipeline") ab.newPipeline(a.name, source(a.source));
    else if (op === "to" || op === "to_parallel") {
      const c = comp(a.computation);
      const f = c.fn;
      // one engine computation per Python one: a step reused in two pipelines keeps its one name
      const w =
        (computations.get(c.id) as Computation | undefined) ??
        (c.multi
          ? computationMulti(c.name, (x: PyRef) => {
              const r = f(x.h) as string | undefined;
              if (r === undefined) return undefined;
              const sp = r.indexOf(" ");
              return refs(Number(r.slice(0, sp)), Number(r.slice(sp + 1)));
            })
          : computation(c.name, (x: PyRef) => {
              const h = f(x.h) as number | undefined;
              return h === undefined ? undefined : ref(h);
            }));
      computations.set(c.id, w);
      if (op === "to") ab.to(w);
      else ab.toParallel(w);
    } else if (op === "to_stateful" || op === "to_state_partition" || op === "to_state_partition_u64") {
      const c = comp(a.computation);
      const f = c.fn;
      // 2 * handle + save (0 + save: no output); multi: "START COUNT SAVE" (see _wallaroo_engine.py)
      const run: (x: PyRef, s: PyRef) => [any, boolean] = c.multi
        ? (x: PyRef, s: PyRef): [PyRef[] | undefined, boolean] => {
            const [start, n, save] = (f(x.h, s.h) as string).split(" ").map(Number);
            return [n > 0 ? refs(start, n) : undefined, save === 1];
          }
        : (x: PyRef, s: PyRef): [PyRef | undefined, boolean] => {
            const r = f(x.h, s.h) as number;
            const h = Math.floor(r / 2);
            return [h === 0 ? undefined : ref(h), r % 2 === 1];
          };
      const w =
        (computations.get(c.id) as StateComputation | undefined) ??
        (c.multi ? stateComputationMulti(c.name, run) : stateComputation(c.name, run));
      computations.set(c.id, w);
      const cls = stateClass(a.state);
      const stateName = a.state_name as string;
      if (op === "to_stateful") ab.toStateful(w, cls, stateName);
      else {
        // one engine partition function per Python one: a state shared by name must use the same
        let p = partitions.get(a.partition_id as number);
        if (p === undefined) {
          const pf = a.partition as Py;
          p = partition((x: PyRef) => pf(x.h));
          partitions.set(a.partition_id as number, p);
        }
        const keys = a.keys === undefined ? undefined : (js(a.keys) as (string | number | bigint)[]);
        if (op === "to_state_partition") ab.toStatePartition(w, cls, stateName, p, keys);
        else ab.toStatePartitionU64(w, cls, stateName, p, keys as (number | bigint)[] | undefined);
      }
    } else if (op === "to_sink") ab.toSink(sink((js(a.sinks) as Py[])[0]));
    else if (op === "to_sinks") ab.toSinks((js(a.sinks) as Py[]).map(sink));
    else if (op === "done") ab.done();
  }
  return ab.build();
}
