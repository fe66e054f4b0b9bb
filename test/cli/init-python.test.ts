/**
 * `wallaroo init --python DIR`: the scaffolded Python app's own unittest passes under
 * python3, and the app runs under the engine on 2 workers with its data.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { initProject } from "../../src/cli/init.js";
import { ROOT, send, startEngine } from "../helpers/engine.js";
import { freePort, startCollector } from "../helpers/net.js";

/** an interpreter per thread starts slowly on a loaded machine (bench/ANALYSIS.md, "Python applications") */
const PY_START_MS = 90_000;

const tmp = mkdtempSync(join(tmpdir(), "wallaroo-init-python-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("wallaroo init --python", () => {
  it("scaffolds app.py, its data and a test that passes; the app runs on 2 workers", { timeout: 200_000 }, async () => {
    const dir = join(tmp, "py-app");
    const { files } = initProject(dir, { spec: `file:${ROOT}`, python: true });
    expect(files).toEqual([".gitignore", "README.md", "app.py", "data/words.txt", "package.json", "test_app.py"]);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, any>;
    expect(pkg.scripts.start).toMatch(/wallaroo run app\.py/);
    // as `npm install` would leave it: the wallaroo package (and its python/) under node_modules
    mkdirSync(join(dir, "node_modules"));
    symlinkSync(ROOT, join(dir, "node_modules", "wallaroo"));
    const t = spawnSync("python3", ["-m", "unittest", "test_app.py"], { cwd: dir, encoding: "utf8" });
    expect(t.status, t.stderr).toBe(0);
    expect(t.stderr).toMatch(/Ran 3 tests[\s\S]*OK/);

    const sink = await startCollector();
    const inPort = await freePort();
    const e = await startEngine(
      "app.py",
      ["--in", `127.0.0.1:${inPort}`, "--out", `127.0.0.1:${sink.port}`, "--workers", "2"],
      { cwd: dir, runningTimeoutMs: PY_START_MS },
    );
    try {
      const s = await send(["--port", String(inPort), "--file", join(dir, "data/words.txt")]);
      expect(s.code, s.stderr).toBe(0);
      await sink.waitForLines(15, 60_000);
      const lines = sink.lines();
      expect(lines.filter((l) => l.startsWith("the => ")).sort()).toEqual([
        "the => 1",
        "the => 2",
        "the => 3",
        "the => 4",
      ]);
      expect(lines).toContain("fox => 2");
      expect((await e.stop("SIGTERM")).code).toBe(0);
    } finally {
      e.kill();
      await sink.close();
    }
  });
});
