/**
 * The docs are checked as code is (issue 23): README.md and every docs/*.md page.
 *
 * - README.md is under 250 lines (issue 23: a newcomer reads it in five minutes).
 * - Every relative link resolves: to a file or folder that exists and, with a #anchor,
 *   to a heading of that Markdown file (GitHub's anchor for it). Every docs page is
 *   linked from the README, so none is left unreachable.
 * - Every ```ts / ```js block is one of:
 *   - a complete module: all of them are type-checked together under --strict against
 *     the built package (dist/, as an installed wallaroo is seen). A block whose first
 *     line is `// NAME.ts ...` is written as NAME.ts, so another block may import it
 *     (the README's test imports its reverse.ts); a block that imports "vitest" is a
 *     test and is also run, with vitest, next to the others;
 *   - ```ts file=PATH: equal to that file of the repository (which npm test runs);
 *   - ```ts from=PATH: a run of consecutive lines of that file (indentation aside).
 *   No block is left unchecked (no "fragment" blocks: FRAGMENTS is empty, on purpose).
 * - ```json blocks parse. Shell, YAML and unlabelled blocks (a diagram) are not checked.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/engine.js";

const PAGES = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

/** Blocks allowed to go unchecked, by page and first line; kept empty: make a block complete instead. */
const FRAGMENTS: string[] = [];

interface Block {
  page: string;
  lang: string;
  attrs: Record<string, string>;
  code: string;
  line: number;
}

const FENCE = /^```([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;

function blocks(page: string): Block[] {
  const text = readFileSync(join(ROOT, page), "utf8");
  return [...text.matchAll(FENCE)].map((m) => {
    const [lang = "", ...rest] = m[1]!.trim().split(/\s+/);
    const attrs: Record<string, string> = {};
    for (const r of rest) {
      const [k, v = ""] = r.split("=");
      attrs[k!] = v;
    }
    return { page, lang, attrs, code: m[2]!, line: text.slice(0, m.index).split("\n").length };
  });
}

/** The text outside fenced blocks (links and headings inside code are not links and headings). */
function prose(text: string): string {
  return text.replace(FENCE, "");
}

/** GitHub's anchors for the headings of a Markdown text (duplicates get -1, -2, ...). */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = m[1]!
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\- _]/gu, "")
      .replace(/ /g, "-");
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(page: string): { target: string; line: number }[] {
  const text = prose(readFileSync(join(ROOT, page), "utf8"));
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => ({
    target: m[1]!,
    line: text.slice(0, m.index).split("\n").length,
  }));
}

/** Why a link of `page` does not resolve, or null when it does. */
function brokenLink(page: string, target: string): string | null {
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return null; // https:, mailto: — not checked offline
  const [path = "", anchor] = target.split("#");
  const file = path === "" ? join(ROOT, page) : join(ROOT, dirname(page), decodeURIComponent(path));
  if (!file.startsWith(ROOT)) return `${target} leaves the repository`;
  if (!existsSync(file)) return `${relative(ROOT, file)} does not exist`;
  if (anchor === undefined) return null;
  if (!file.endsWith(".md")) return `${target}: an anchor into a file that is not Markdown`;
  return anchors(readFileSync(file, "utf8")).has(anchor) ? null : `${relative(ROOT, file)} has no heading #${anchor}`;
}

const TSC = join(ROOT, "node_modules/typescript/bin/tsc");
const VITEST = join(ROOT, "node_modules/vitest/vitest.mjs");

async function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [cmd, ...args], { cwd, timeout: 120_000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === "number" ? err.code : 1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

/** Writes the complete-module blocks into a folder of the repository (so that "wallaroo" and @types/node resolve). */
function writeModules(all: Block[]): { dir: string; files: Map<string, Block>; tests: string[] } {
  const dir = mkdtempSync(join(ROOT, "test/docs/tmp-"));
  const files = new Map<string, Block>();
  const tests: string[] = [];
  for (const [i, b] of all.entries()) {
    const named = /^\/\/ ([\w.-]+\.(?:ts|js))\b/.exec(b.code)?.[1];
    const ext = b.lang === "js" || b.lang === "javascript" ? "js" : "ts";
    const isTest = /from "vitest"/.test(b.code);
    const name = named ?? `block-${i}-${b.page.replace(/\W/g, "_")}-L${b.line}${isTest ? ".test" : ""}.${ext}`;
    if (files.has(name)) throw new Error(`two blocks are named ${name} (${files.get(name)!.page}, ${b.page})`);
    files.set(name, b);
    writeFileSync(join(dir, name), b.code);
    if (isTest) tests.push(name);
  }
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        target: "ES2022",
        module: "NodeNext",
        moduleResolution: "NodeNext",
        lib: ["ES2022", "DOM"],
        types: ["node"],
        strict: true,
        noEmit: true,
        allowJs: true,
        checkJs: true,
        allowImportingTsExtensions: true,
        skipLibCheck: true,
      },
      include: ["*.ts", "*.js"],
      exclude: ["vitest.config.ts"],
    }),
  );
  // As the repository's vitest config: the built package runs as Node runs it, untransformed.
  writeFileSync(
    join(dir, "vitest.config.ts"),
    'import { defineConfig } from "vitest/config";\n' +
      "export default defineConfig({ test: { include: ['*.test.ts'], server: { deps: { external: [/\\/dist\\//] } } } });\n",
  );
  return { dir, files, tests };
}

const ALL = PAGES.flatMap(blocks);
const CODE = ALL.filter((b) => ["ts", "typescript", "js", "javascript"].includes(b.lang));

describe("docs", () => {
  it("README stays a five-minute read: under 250 lines, with the two commands and what the engine does not do", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const lines = readme.split("\n").length - 1;
    expect(lines, "README.md has grown: move the detail to a page of docs/").toBeLessThan(250);
    expect(readme).toContain("npm ci && npm run demo");
    expect(readme).toMatch(/^npm test /m);
    expect(readme).toMatch(/^## What it does not do \(yet\)$/m);
  });

  it("README links every docs page, and every relative link of README and docs/ resolves", () => {
    const readmeTargets = links("README.md").map((l) => l.target.split("#")[0]);
    for (const p of PAGES.slice(1)) expect(readmeTargets, `README.md does not link ${p}`).toContain(p);
    const broken: string[] = [];
    for (const page of PAGES)
      for (const l of links(page)) {
        const why = brokenLink(page, l.target);
        if (why) broken.push(`${page}:${l.line}: ${why}`);
      }
    expect(broken).toEqual([]);
  });

  it("the link check can fail: a missing file and a missing heading are reported", () => {
    expect(brokenLink("README.md", "docs/nope.md")).toMatch(/does not exist/);
    expect(brokenLink("README.md", "docs/operations.md#no-such-heading")).toMatch(/no heading/);
    expect(brokenLink("docs/api.md", "operations.md#exit-codes")).toBeNull();
    expect([...anchors("## Sources, sinks, arguments\n## A `code` (heading)\n## x\n## x\n")]).toEqual([
      "sources-sinks-arguments",
      "a-code-heading",
      "x",
      "x-1",
    ]);
  });

  it("each code block is checked: none is a fragment", () => {
    expect(CODE.length).toBeGreaterThan(5);
    const fragments = CODE.filter((b) => "fragment" in b.attrs).map((b) => `${b.page}: ${b.code.split("\n")[0]}`);
    expect(fragments).toEqual(FRAGMENTS);
  });

  it("blocks that name a file (file=PATH, from=PATH) are that file, or lines of it", () => {
    const named = CODE.filter((b) => b.attrs.file !== undefined || b.attrs.from !== undefined);
    expect(named.length).toBeGreaterThan(0);
    for (const b of named) {
      const where = `${b.page}:${b.line}`;
      if (b.attrs.file !== undefined) {
        expect(b.code, `${where} is not ${b.attrs.file}, verbatim`).toBe(
          readFileSync(join(ROOT, b.attrs.file), "utf8"),
        );
      } else {
        const file = readFileSync(join(ROOT, b.attrs.from!), "utf8")
          .split("\n")
          .map((l) => l.trim())
          .join("\n");
        const lines = b.code
          .trimEnd()
          .split("\n")
          .map((l) => l.trim())
          .join("\n");
        expect(file.includes(lines), `${where} is not a run of lines of ${b.attrs.from}`).toBe(true);
      }
    }
  });

  it("json blocks parse", () => {
    for (const b of ALL.filter((x) => x.lang === "json"))
      expect(() => JSON.parse(b.code), `${b.page}:${b.line}`).not.toThrow();
  });

  it("every other ts/js block compiles under --strict against the built package, and its tests pass", async () => {
    const modules = CODE.filter(
      (b) => b.attrs.file === undefined && b.attrs.from === undefined && !("fragment" in b.attrs),
    );
    // One block with a type error goes into the same compilation, so that the check is seen to fail
    // (and tsc runs once: it is the slow part of this file).
    const bad: Block = {
      page: "(a block made to fail)",
      lang: "ts",
      attrs: {},
      line: 1,
      code: 'import * as wallaroo from "wallaroo";\nexport const c = wallaroo.computation("c", (x: number) => x + 1);\nc.nope();\n',
    };
    const { dir, files, tests } = writeModules([...modules, bad]);
    try {
      const r = await run(TSC, ["-p", join(dir, "tsconfig.json")], ROOT);
      // name each error's block by its page and line
      const errors = r.out
        .split("\n")
        .filter((l) => /\(\d+,\d+\): error/.test(l))
        .map((l) =>
          l.replace(/^(?:\S*\/)?([\w.-]+\.(?:ts|js))(?=\(\d+,\d+\))/, (path, f: string) => {
            const b = files.get(f);
            return b ? `${b.page}:${b.line} (${f})` : path;
          }),
        );
      // the made-to-fail block's error, and no other (a diff here lists the docs' blocks that fail)
      expect(errors).toEqual([expect.stringMatching(/^\(a block made to fail\):1 .*'nope'/)]);
      expect(r.code).not.toBe(0);
      expect(tests.length).toBeGreaterThan(0);
      const t = await run(VITEST, ["run", "--root", dir], dir);
      expect(t.code, t.out).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
