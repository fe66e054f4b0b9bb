/**
 * Python applications beyond the vendored examples (test/fixtures/python-app): errors a
 * Python user can act on (traceback with the user's file and line, counted, dead-lettered,
 * the message alone dropped; a syntax error or a failing application_setup exits 1),
 * `--application-module` found through PYTHONPATH from another working directory, and
 * classes of a helper module that cross workers and survive kill -9 + restart with
 * --resilience-dir, by pickle or by the app's own top-level serialize/deserialize.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, fixture, send, sleep, startEngine, type Engine } from "../helpers/engine.js";
import { freePort, startCollector } from "../helpers/net.js";

/** an interpreter per thread starts slowly on a loaded machine (bench/ANALYSIS.md, "Python applications") */
const PY_START_MS = 90_000;

const DIR = fixture("python-app");
const tmp = mkdtempSync(join(tmpdir(), "wallaroo-python-app-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `wallaroo send --file` of these lines (a temp file) */
async function sendLines(port: number, lines: string[]): Promise<void> {
  const file = join(tmp, `in-${port}-${Date.now()}.txt`);
  writeFileSync(file, `${lines.join("\n")}\n`);
  const s = await send(["--port", String(port), "--file", file]);
  expect(s.code, s.stderr).toBe(0);
}

/** the last output line per key */
function lastPerKey(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const l of text.split("\n")) if (l !== "") m.set(l.slice(0, l.indexOf(" => ")), l);
  return m;
}

describe("Python applications: errors, --application-module, helper classes across workers and restarts", () => {
  it("an exception in user code: traceback with the user's file and line, counted, dead-lettered, that message alone dropped", {
    timeout: 200_000,
  }, async () => {
    const sink = await startCollector();
    const inPort = await freePort();
    const dead = join(tmp, "dead");
    // --application-module from another working directory: found through PYTHONPATH
    const e = await startEngine(
      ["--application-module", "tally"],
      [
        "--in",
        `127.0.0.1:${inPort}`,
        "--out",
        `127.0.0.1:${sink.port}`,
        "--workers",
        "2",
        "--dead-letter",
        dead,
        "--stats-interval",
        "1",
      ],
      { cwd: tmp, env: { PYTHONPATH: DIR }, runningTimeoutMs: PY_START_MS },
    );
    try {
      await sendLines(inPort, ["a 1", "bad 7", "a 2", "b 5"]);
      await sink.waitForLines(3, 60_000);
      await e.waitForLog((l) => (l.stats as { errors?: number } | undefined)?.errors === 1, 20_000);
      expect(sink.lines().sort()).toEqual([
        "a => 1 helpers.Vote helpers.Total new",
        "a => 3 helpers.Vote helpers.Total new",
        "b => 5 helpers.Vote helpers.Total new",
      ]);
      expect(e.stderr()).toMatch(/python-app\/tally\.py\\", line \d+, in check/);
      expect(e.stderr()).toMatch(/ValueError: a bad vote: 7/);
      expect((await e.stop("SIGTERM")).code).toBe(0);
      const files = readdirSync(dead);
      const records = files.flatMap((f) =>
        readFileSync(join(dead, f), "utf8")
          .split("\n")
          .filter((l) => l !== "")
          .map((l) => JSON.parse(l)),
      );
      expect(records).toHaveLength(1);
      expect(JSON.stringify(records[0])).toMatch(/ValueError: a bad vote: 7/);
      expect(JSON.stringify(records[0])).toMatch(/check/);
    } finally {
      e.kill();
      await sink.close();
    }
  });

  it("a syntax error or a failing application_setup exits 1 with the traceback", { timeout: 240_000 }, () => {
    for (const [app, want] of [
      ["broken_syntax.py", /broken_syntax\.py", line 4[\s\S]*SyntaxError/],
      ["failing_setup.py", /failing_setup\.py", line 5, in application_setup[\s\S]*NameError: name 'helper_missing'/],
    ] as const) {
      const r = spawnSync(
        process.execPath,
        [BIN, "run", join(DIR, app), "--in", "127.0.0.1:0", "--out", "127.0.0.1:9"],
        {
          encoding: "utf8",
          timeout: 100_000,
        },
      );
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(want);
    }
  });

  it("wallaroo run APP.py --help lists the engine's flags, then the app's own help", { timeout: 120_000 }, () => {
    const r = spawnSync(process.execPath, [BIN, "run", join(DIR, "api_tour.py"), "--help"], {
      encoding: "utf8",
      timeout: 100_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/--workers N/);
    expect(r.stdout).toMatch(/--resilience-dir/);
    expect(r.stdout).toMatch(/api_tour\.py defines no help string \(a module-level help = /);
  });

  for (const app of ["tally", "tally_custom"]) {
    it(`${app}: helper-module classes survive crossing workers and kill -9 + restart with --resilience-dir`, {
      timeout: 300_000,
    }, async () => {
      const store = join(tmp, `store-${app}`);
      const sink = await startCollector();
      const inPort = await freePort();
      const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
      const run = (workers: number): Promise<Engine> =>
        startEngine(
          join(DIR, `${app}.py`),
          [
            "--in",
            `127.0.0.1:${inPort}`,
            "--out",
            `127.0.0.1:${sink.port}`,
            "--workers",
            String(workers),
            "--resilience-dir",
            store,
            "--checkpoint-interval",
            "0.2",
          ],
          { cwd: DIR, runningTimeoutMs: PY_START_MS },
        );
      const e1 = await run(2);
      let e2: Engine | null = null;
      try {
        await sendLines(
          inPort,
          keys.map((k, i) => `${k} ${i + 1}`),
        );
        await sink.waitForLines(keys.length, 60_000);
        const mark = e1.lines.length;
        await e1.waitForLog((l) => typeof l.msg === "string" && /^checkpoint \d+ committed/.test(l.msg), 20_000, mark);
        await e1.kill9();
        e2 = await run(1);
        await sendLines(
          inPort,
          keys.map((k) => `${k} 100`),
        );
        await sink.waitForLines(2 * keys.length, 60_000);
        await sleep(200);
        const last = lastPerKey(sink.bytes().toString());
        for (const [i, k] of keys.entries()) {
          // the total continued from the checkpoint, and the restored state is the helper module's class
          const via = app === "tally_custom" ? "custom" : "new";
          expect(last.get(k)).toBe(`${k} => ${i + 1 + 100} helpers.Vote helpers.Total ${via}`);
        }
        expect((await e2.stop("SIGTERM")).code).toBe(0);
      } finally {
        e1.kill();
        e2?.kill();
        await sink.close();
      }
    });
  }
  it("api_tour.py: tuple, user-class and bytes keys, a 2-byte header, _multi lists with None, u64 partitions, to_sinks: 2 workers equal the CPython reference", {
    timeout: 200_000,
  }, async () => {
    const keys = join(tmp, "keys.txt");
    const u64 = join(tmp, "u64.txt");
    writeFileSync(keys, "t ab 1\no x 2\nb k 5\nt ab 3\no x 4\nb k 6\no y 1\n");
    writeFileSync(u64, "0 5\n7 1\n0 2\n18446744073709551615 3\n7 999\n7 5\n");
    const sink = await startCollector();
    const ports = [await freePort(), await freePort()];
    const args = ["--in", ports.map((p) => `127.0.0.1:${p}`).join(","), "--out", `127.0.0.1:${sink.port}`];
    const ref = spawnSync(
      "python3",
      [
        fixture("../helpers/wallaroo_reference.py"),
        "api_tour.py",
        "--feed",
        `0:lines:${keys}`,
        "--feed",
        `1:lines:${u64}`,
        "--",
        ...args,
      ],
      { cwd: DIR, encoding: "utf8" },
    );
    expect(ref.status, ref.stderr).toBe(0);
    const want = ref.stdout.split("\n").filter((l) => l !== "");
    expect(want).toHaveLength(24);
    const e = await startEngine(join(DIR, "api_tour.py"), [...args, "--workers", "2"], {
      cwd: DIR,
      runningTimeoutMs: PY_START_MS,
    });
    try {
      const s1 = await send(["--port", String(ports[0]), "--file", keys, "--header-length", "2"]);
      expect(s1.code, s1.stderr).toBe(0);
      const s2 = await send(["--port", String(ports[1]), "--file", u64]);
      expect(s2.code, s2.stderr).toBe(0);
      await sink.waitForLines(want.length, 60_000);
      await sleep(300);
      const got = sink.lines();
      expect([...got].sort()).toEqual([...want].sort());
      // each key's lines (and each sink's, for u64) in the reference's order
      const key = (l: string) => l.slice(0, l.lastIndexOf(" "));
      const group = (ls: string[]) => {
        const m = new Map<string, string[]>();
        for (const l of ls) m.set(key(l), [...(m.get(key(l)) ?? []), l]);
        return m;
      };
      expect(group(got)).toEqual(group(want));
      expect((await e.stop("SIGTERM")).code).toBe(0);
    } finally {
      e.kill();
      await sink.close();
    }
  });
});
