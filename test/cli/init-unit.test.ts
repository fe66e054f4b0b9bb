/** `wallaroo init` without npm: what it writes, what it refuses, the default dependency spec. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { defaultSpec, initProject } from "../../src/cli/init.js";
import { UsageError } from "../../src/cli/flags.js";
import { ROOT } from "../helpers/engine.js";

const tmp = mkdtempSync(join(tmpdir(), "wallaroo-init-unit-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("wallaroo init", () => {
  it("writes the project files, with the package name taken from the directory", () => {
    const dir = join(tmp, "My App");
    const { files, spec } = initProject(dir, { spec: "^9.9.9" });
    expect(files).toEqual([
      ".gitignore",
      "README.md",
      "package.json",
      "src/app.ts",
      "test/app.test.ts",
      "tsconfig.json",
    ]);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, any>;
    expect(pkg).toMatchObject({ name: "my-app", type: "module", dependencies: { wallaroo: "^9.9.9" } });
    expect(spec).toBe("^9.9.9");
    expect(Object.keys(pkg.devDependencies).sort()).toEqual(["@types/node", "typescript", "vitest"]);
    expect(readFileSync(join(dir, "README.md"), "utf8")).toMatch(/^# my-app\n/);
    expect(JSON.parse(readFileSync(join(dir, "tsconfig.json"), "utf8")).compilerOptions.strict).toBe(true);
  });

  it("refuses a directory that is not empty unless --force, and a bad name", () => {
    const dir = join(tmp, "busy");
    mkdirSync(dir);
    writeFileSync(join(dir, "keep.txt"), "x");
    expect(() => initProject(dir)).toThrow(UsageError);
    expect(() => initProject(dir)).toThrow("is not empty; choose a new directory or pass --force");
    expect(initProject(dir, { force: true, spec: "1" }).files).toContain("src/app.ts");
    expect(readFileSync(join(dir, "keep.txt"), "utf8")).toBe("x");
    expect(() => initProject(join(tmp, "n"), { name: "Bad Name" })).toThrow("is not a valid package name");
  });

  it("depends on the clone it runs from, or on what its install root's lockfile says it was installed from", () => {
    expect(defaultSpec(ROOT, "1.2.3").spec).toBe(`file:${ROOT.replace(/\/$/, "")}`);
    // no lockfile beside it: the registry is assumed (and init's output says so)
    expect(defaultSpec(join(tmp, "none/node_modules/wallaroo/"), "1.2.3")).toMatchObject({
      spec: "^1.2.3",
      source: expect.stringContaining("assumed"),
    });
    // an install root as npx makes one: the tarball's path is relative to the root in the lockfile
    const root = join(tmp, "npx-cache/abc");
    const tgz = join(tmp, "dl/wallaroo-1.2.3.tgz");
    mkdirSync(join(root, "node_modules/wallaroo"), { recursive: true });
    mkdirSync(join(tmp, "dl"), { recursive: true });
    writeFileSync(tgz, "");
    const lock = (packages: Record<string, unknown>) =>
      writeFileSync(join(root, "node_modules/.package-lock.json"), JSON.stringify({ packages }));
    lock({ "node_modules/wallaroo": { version: "1.2.3", resolved: "file:../../dl/wallaroo-1.2.3.tgz" } });
    expect(defaultSpec(join(root, "node_modules/wallaroo/"), "1.2.3")).toEqual({
      spec: `file:${tgz}`,
      source: "the tarball this wallaroo was installed from",
    });
    // nested under another package, from git, from the registry (resolved omitted or a URL)
    lock({ "node_modules/x/node_modules/wallaroo": { resolved: "git+ssh://git@github.com/u/wallaroo.git#abc" } });
    expect(defaultSpec(join(root, "node_modules/x/node_modules/wallaroo"), "1.2.3").spec).toBe(
      "git+ssh://git@github.com/u/wallaroo.git#abc",
    );
    lock({ "node_modules/wallaroo": { version: "1.2.3" } });
    expect(defaultSpec(join(root, "node_modules/wallaroo"), "1.2.3").spec).toBe("^1.2.3");
    lock({ "node_modules/wallaroo": { resolved: "https://registry.npmjs.org/wallaroo/-/wallaroo-1.2.3.tgz" } });
    expect(defaultSpec(join(root, "node_modules/wallaroo"), "1.2.3").spec).toBe("^1.2.3");
  });
});
