/**
 * `wallaroo init DIR`: scaffolds a ready project — package.json (an ES module with
 * start/test/typecheck scripts and a dependency on wallaroo), a strict
 * tsconfig.json, a small keyed application, its test with wallaroo/testing, and a
 * README — from templates/init/ of this package.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseFlags, UsageError } from "./flags.js";

export const INIT_HELP = `Usage: wallaroo init DIR [--python] [--name NAME] [--wallaroo-spec SPEC] [--force]

Creates a project in DIR (created if missing; it must be empty unless --force):
  package.json        "type": "module"; scripts start, test, typecheck;
                      wallaroo as a dependency; typescript, @types/node, vitest
  tsconfig.json       strict (and noUncheckedIndexedAccess); no build step
  src/app.ts          a small keyed application (word counts)
  test/app.test.ts    its tests, with wallaroo/testing
  README.md, .gitignore

Then: cd DIR && npm install && npm run typecheck && npm test && npm start

With --python, a Python application instead (run by the engine's interpreter
in each worker thread): app.py (word counts), data/words.txt, test_app.py
(unittest, run by npm test with python3), README.md, and a package.json whose
start script is wallaroo run app.py.

Options:
  --python              scaffold a Python application (see above)
  --name NAME           the package name (default: DIR's name)
  --wallaroo-spec SPEC  how package.json depends on wallaroo (default: what
                        this wallaroo was installed from: file:/abs/path of
                        the tarball, e.g. with npx --package wallaroo-X.tgz,
                        or of the clone it runs from; the git URL; ^VERSION
                        from a registry); any npm spec works
  --force               write into a DIR that is not empty (existing files
                        of the same name are overwritten)
  --help                this text
`;

/** This package's root (dist/cli/init.js -> ../../). */
const PACKAGE_ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface OwnPackage {
  name: string;
  version: string;
  devDependencies?: Record<string, string>;
}

function ownPackage(): OwnPackage {
  return JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as OwnPackage;
}

/** The default spec and where it came from (printed by init, so the user sees what the project depends on). */
export interface SpecChoice {
  spec: string;
  /** why this spec: "a clone", "the tarball ... was installed from", ... */
  source: string;
}

/**
 * The default dependency spec: what this copy of wallaroo was installed from, so
 * that `npm install` in the new project finds the same package.
 * - A clone or a directory (not inside node_modules; `npx --package /path/to/clone`
 *   links it, and Node resolves the link): `file:` that directory.
 * - Inside node_modules: the lockfile npm wrote beside it (`node_modules/.package-lock.json`
 *   of the install root: the project, the global prefix, or npx's cache directory)
 *   says where it was resolved from: a tarball (`file:`, relative to that root, made
 *   absolute here), a git URL, or a registry (then `^VERSION`).
 * Without a lockfile entry the registry is assumed, and init's output says how to
 * override it.
 */
export function defaultSpec(root = PACKAGE_ROOT, version = ownPackage().version): SpecChoice {
  const dir = root.replace(/[\\/]+$/, "");
  const parts = dir.split(sep);
  const first = parts.indexOf("node_modules");
  if (first < 0) return { spec: `file:${dir}`, source: `the directory this wallaroo runs from` };
  // The install root is above the first node_modules; the lockfile key is the path below it
  // ("node_modules/wallaroo", or "node_modules/x/node_modules/wallaroo" when nested).
  const installRoot = parts.slice(0, first).join(sep) || sep;
  const key = parts.slice(first).join("/");
  const registry = { spec: `^${version}`, source: "the npm registry (this wallaroo was installed from it)" };
  let resolved: string | undefined;
  try {
    const lock = JSON.parse(readFileSync(join(installRoot, "node_modules", ".package-lock.json"), "utf8")) as {
      packages?: Record<string, { resolved?: string; link?: boolean }>;
    };
    resolved = lock.packages?.[key]?.resolved;
  } catch {
    return { ...registry, source: "the npm registry (assumed: no lockfile beside this wallaroo says otherwise)" };
  }
  if (resolved === undefined) return registry;
  if (resolved.startsWith("file:")) {
    const abs = resolve(installRoot, resolved.slice("file:".length));
    return {
      spec: `file:${abs}`,
      source: `${abs.endsWith(".tgz") ? "the tarball" : "the directory"} this wallaroo was installed from${existsSync(abs) ? "" : " (it no longer exists there: move it back or pass --wallaroo-spec)"}`,
    };
  }
  if (/^(git\+|git:|github:)/.test(resolved))
    return { spec: resolved, source: "the git repository this wallaroo was installed from" };
  return registry;
}

/** The package.json of a new project. Dev tool versions are the ones wallaroo itself is tested with. */
export function projectPackageJson(name: string, spec: string, python = false): string {
  const dev = ownPackage().devDependencies ?? {};
  if (python) {
    const pkg = {
      name,
      version: "0.1.0",
      private: true,
      engines: { node: ">=22.12" },
      scripts: {
        start: "exec wallaroo run app.py --exit-with-parent --workers 2 --in 127.0.0.1:7010 --out 127.0.0.1:7002",
        test: "python3 -m unittest test_app.py",
      },
      dependencies: { wallaroo: spec },
    };
    return `${JSON.stringify(pkg, null, 2)}\n`;
  }
  const pkg = {
    name,
    version: "0.1.0",
    private: true,
    type: "module",
    engines: { node: ">=22.12" },
    scripts: {
      // exec: the shell npm starts is replaced by the engine, so SIGINT/SIGTERM reach it directly.
      start: "exec wallaroo run src/app.ts --in 127.0.0.1:7010 --out 127.0.0.1:7002",
      test: "vitest run",
      typecheck: "tsc --noEmit -p tsconfig.json",
    },
    dependencies: { wallaroo: spec },
    devDependencies: {
      "@types/node": dev["@types/node"] ?? "^24.19.4",
      typescript: dev.typescript ?? "^5.9.3",
      vitest: dev.vitest ?? "^4.1.12",
    },
  };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

/** Every file under `dir`, as paths relative to it. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p).map((f) => join(e.name, f)));
    else out.push(e.name);
  }
  return out;
}

/** npm pack drops files named .gitignore, so the template keeps it as "gitignore". */
const RENAMED: Record<string, string> = { gitignore: ".gitignore" };

export function initProject(
  dir: string,
  opts: { name?: string; spec?: string; force?: boolean; python?: boolean } = {},
): { files: string[]; spec: string; source: string } {
  const target = resolve(dir);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UsageError(`${dir} exists and is not a directory`);
    if (!opts.force && readdirSync(target).length > 0)
      throw new UsageError(`${dir} is not empty; choose a new directory or pass --force`);
  }
  const name =
    opts.name ??
    basename(target)
      .toLowerCase()
      .replace(/[^a-z0-9._-]+/g, "-")
      .replace(/^[._-]+/, "");
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name))
    throw new UsageError(`${JSON.stringify(name)} is not a valid package name; pass --name`);
  const { spec, source } = opts.spec !== undefined ? { spec: opts.spec, source: "--wallaroo-spec" } : defaultSpec();
  const templates = join(PACKAGE_ROOT, "templates", opts.python ? "init-python" : "init");
  const files: string[] = [];
  mkdirSync(target, { recursive: true });
  for (const f of listFiles(templates)) {
    const out = join(target, RENAMED[f] ?? f);
    mkdirSync(resolve(out, ".."), { recursive: true });
    if (f === "README.md") writeFileSync(out, readFileSync(join(templates, f), "utf8").replaceAll("__NAME__", name));
    else copyFileSync(join(templates, f), out);
    files.push(relative(target, out));
  }
  writeFileSync(join(target, "package.json"), projectPackageJson(name, spec, opts.python === true));
  files.push("package.json");
  return { files: files.sort(), spec, source };
}

export async function initMain(argv: string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(INIT_HELP);
    return 0;
  }
  const positional = argv.filter(
    (a, i) => !a.startsWith("-") && !["--name", "--wallaroo-spec"].includes(argv[i - 1] ?? ""),
  );
  const [dir] = positional;
  try {
    if (dir === undefined || positional.length > 1) throw new UsageError("give one directory: wallaroo init DIR");
    const v = parseFlags(
      "init",
      argv.filter((a) => a !== dir),
      {
        name: { type: "string" },
        "wallaroo-spec": { type: "string" },
        force: { type: "boolean" },
        python: { type: "boolean" },
      },
    );
    const { files, spec, source } = initProject(dir, {
      name: v.name,
      spec: v["wallaroo-spec"],
      force: v.force,
      python: v.python,
    });
    process.stdout.write(
      `created ${dir}: ${files.join(", ")}\nwallaroo dependency: ${spec} (${source})\n\n` +
        `  cd ${dir}\n  npm install\n${v.python ? "" : "  npm run typecheck\n"}  npm test\n  npm start\n`,
    );
    if (source.startsWith("the npm registry (assumed")) {
      process.stdout.write(
        `\n(if this wallaroo did not come from the npm registry, rerun with --wallaroo-spec file:/path/to/wallaroo-X.tgz)\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`wallaroo init: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}
