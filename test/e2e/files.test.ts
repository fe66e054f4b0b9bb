/**
 * The file connector end to end (engine as a CLI child process, real files):
 * - a directory of files, read in name order, by lines (\r\n, a last line without a
 *   newline, a line over the limit skipped alone) -> engine -> a file;
 * - a file of length-framed messages -> engine -> a file rotated by size;
 * - with --resilience-dir: a clean stop, a restart that reads more of a followed file
 *   and is killed (kill -9) with output past its checkpoint, rotations included, then a
 *   restart that truncates the output back to the checkpoint and resumes the source
 *   there: every output in the files exactly once, in order, with the state's count.
 */
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { frame } from "../helpers/net.js";
import { fixture, sleep, startEngine, type Engine } from "../helpers/engine.js";

const tmp = mkdtempSync(join(tmpdir(), "wallaroo-files-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** PATH.1, PATH.2, ... then PATH: the sink's output in order. */
function outputFiles(path: string): string[] {
  const dir = join(path, "..");
  const base = path.slice(dir.length + 1);
  const rotated = readdirSync(dir)
    .filter((n) => new RegExp(`^${base.replace(".", "\\.")}\\.[0-9]+$`).test(n))
    .map((n) => Number(n.slice(base.length + 1)))
    .sort((a, b) => a - b)
    .map((n) => join(dir, `${base}.${n}`));
  return [...rotated, path].filter((p) => {
    try {
      statSync(p);
      return true;
    } catch {
      return false;
    }
  });
}

function outputLines(path: string): string[] {
  for (;;) {
    try {
      return outputFiles(path)
        .map((p) => readFileSync(p, "utf8"))
        .join("")
        .split("\n")
        .filter((l) => l.length > 0);
    } catch (e) {
      // the sink rotated a file between the listing and the read: list again
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}

/** Waits (polling the files) until the output holds at least n lines. */
async function waitForOutput(path: string, n: number, engine: Engine, timeoutMs = 30_000): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const got = outputLines(path);
    if (got.length >= n) return got;
    if (Date.now() > until)
      throw new Error(`${got.length} of ${n} output lines; stderr:\n${engine.stderr().slice(-3000)}`);
    await sleep(50);
  }
}

const finished = (e: Engine) => e.waitForLog((l) => l.finished === true);

describe("file source and sink", () => {
  it("a directory of line files, in name order, to a file", async () => {
    const dir = join(tmp, "in-dir");
    mkdirSync(dir);
    writeFileSync(join(dir, "b.txt"), "b1\r\nb2\n");
    writeFileSync(join(dir, "a.txt"), `a1\n${"x".repeat(100)}\na2\r\n\na3`);
    writeFileSync(join(dir, "c.txt"), "c1\n");
    const out = join(tmp, "dir-out.txt");
    const engine = await startEngine(fixture("lines-app.ts"), [
      "--in-file",
      dir,
      "--out-file",
      out,
      "--max-frame-bytes",
      "50",
      "--workers",
      "2",
    ]);
    try {
      const done = await finished(engine);
      expect(done.messages).toBe(7);
      expect(done.tooLongLines).toBe(1);
      const got = await waitForOutput(out, 7, engine);
      expect(got).toEqual(["a1 #1", "a2 #2", " #3", "a3 #4", "b1 #5", "b2 #6", "c1 #7"]);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
    }
  });

  it("length-framed messages to a file rotated by size", async () => {
    const input = join(tmp, "framed.bin");
    const n = 5000;
    const rows = Array.from({ length: n }, (_, i) => `row ${String(i).padStart(5, "0")} ${"y".repeat(40)}`);
    writeFileSync(input, frame(rows));
    const out = join(tmp, "rotated.txt");
    const maxBytes = 100_000;
    const engine = await startEngine(fixture("lines-app.ts"), [
      "--in-file",
      input,
      "--framing",
      "length",
      "--out-file",
      out,
      "--max-bytes",
      String(maxBytes),
    ]);
    try {
      await finished(engine);
      const got = await waitForOutput(out, n, engine);
      expect(got).toEqual(rows.map((r, i) => `${r} #${i + 1}`));
      const files = outputFiles(out);
      // ~60 bytes an output: at least 3 rotations, and no file over the limit (the workers' runs are smaller)
      expect(files.length).toBeGreaterThanOrEqual(4);
      for (const f of files) expect(statSync(f).size).toBeLessThanOrEqual(maxBytes);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
    }
  });

  // Without rotation the restore truncates PATH's tail; with it, it also removes and renames rotated files.
  it.each([
    ["without rotation", []],
    ["with rotation", ["--max-bytes", "100000"]],
  ])(
    "kill -9 and restart with --resilience-dir (%s): the source resumes at the checkpoint, the output holds each line once",
    async (name, rotation) => {
      const input = join(tmp, `followed-${name}.txt`);
      const out = join(tmp, `exactly-once-${name}.txt`);
      const store = join(tmp, `store-${name}`);
      const row = (i: number) => `line ${String(i).padStart(6, "0")} ${"z".repeat(50)}`;
      const part = (from: number, to: number) =>
        Array.from({ length: to - from }, (_, k) => `${row(from + k)}\n`).join("");
      const args = [
        "--in-file",
        input,
        "--follow",
        "--out-file",
        out,
        ...rotation,
        "--resilience-dir",
        store,
        "--workers",
        "2",
      ];
      const N = 3000;
      writeFileSync(input, part(0, N));
      // 1: a clean stop; its final checkpoint records the source's position and the sink's end
      let engine = await startEngine(fixture("lines-app.ts"), args);
      try {
        await waitForOutput(out, N, engine);
        expect((await engine.stop()).code).toBe(0);
      } finally {
        engine.kill();
      }
      const filesAfter1 = outputFiles(out).length;
      expect(filesAfter1).toBeGreaterThanOrEqual(rotation.length > 0 ? 2 : 1);
      // 2: no periodic checkpoint (a long interval): the file grows, the output grows (and rotates) past the
      // checkpoint, then kill -9
      engine = await startEngine(fixture("lines-app.ts"), [...args, "--checkpoint-interval", "3600"]);
      try {
        appendFileSync(input, part(N, 2 * N));
        const got = await waitForOutput(out, 2 * N, engine);
        expect(got.length).toBe(2 * N);
        if (rotation.length > 0) expect(outputFiles(out).length).toBeGreaterThan(filesAfter1);
        await engine.kill9();
      } finally {
        engine.kill();
      }
      // 3: restored to the checkpoint of run 1: the output past it (run 2's) is removed and written again
      appendFileSync(input, part(2 * N, 2 * N + 10));
      engine = await startEngine(fixture("lines-app.ts"), args);
      try {
        const restored = await engine.waitForLog((l) => l.removedBytes !== undefined);
        expect(restored.removedBytes as number).toBeGreaterThan(0);
        expect(restored.rotations).toBe(filesAfter1 - 1);
        await waitForOutput(out, 2 * N + 10, engine);
        // stopped (everything in flight written) before the output is compared: nothing more may come
        expect((await engine.stop()).code).toBe(0);
        expect(outputLines(out)).toEqual(Array.from({ length: 2 * N + 10 }, (_, i) => `${row(i)} #${i + 1}`));
      } finally {
        engine.kill();
      }
    },
  );
  it("kill -9 at an arbitrary moment while a followed file grows, periodic checkpoints: each line once after the restart", async () => {
    const input = join(tmp, "growing.txt");
    const out = join(tmp, "growing-out.txt");
    const store = join(tmp, "growing-store");
    const row = (i: number) => `g ${String(i).padStart(6, "0")}`;
    const args = [
      "--in-file",
      input,
      "--follow",
      "--out-file",
      out,
      "--max-bytes",
      "65536",
      "--resilience-dir",
      store,
      "--checkpoint-interval",
      "0.05",
      "--workers",
      "2",
    ];
    writeFileSync(input, "");
    let written = 0;
    const append = (n: number) => {
      appendFileSync(input, Array.from({ length: n }, (_, k) => `${row(written + k)}\n`).join(""));
      written += n;
    };
    let engine = await startEngine(fixture("lines-app.ts"), args);
    let growing = true;
    const grower = (async () => {
      while (growing) {
        append(200);
        await sleep(10);
      }
    })();
    try {
      await waitForOutput(out, 4000, engine);
      // a few checkpoints have been committed while lines flowed; then the crash, whatever is in flight
      await engine.waitForLog((l) => typeof l.msg === "string" && /^checkpoint [3-9]\d* committed/.test(l.msg));
      await engine.kill9();
    } finally {
      growing = false;
      await grower;
      engine.kill();
    }
    append(100);
    engine = await startEngine(fixture("lines-app.ts"), args);
    try {
      await waitForOutput(out, written, engine);
      expect((await engine.stop()).code).toBe(0);
      expect(outputLines(out)).toEqual(Array.from({ length: written }, (_, i) => `${row(i)} #${i + 1}`));
    } finally {
      engine.kill();
    }
  });
  it("a write that fails (file size limit, as a full disk) stops the engine with exit 3 and the error; a missing input is refused at start", async () => {
    const input = join(tmp, "big-in.txt");
    writeFileSync(input, Array.from({ length: 2000 }, (_, i) => `${"w".repeat(40)} ${i}\n`).join(""));
    const engine = await startEngine(
      fixture("lines-app.ts"),
      ["--in-file", input, "--out-file", join(tmp, "limited.txt")],
      { fileSizeLimitKiB: 16, waitRunning: false },
    );
    try {
      const exit = await engine.exited;
      expect(exit.code, engine.stderr().slice(-2000)).toBe(3);
      expect(engine.stderr()).toMatch(/file sink .*cannot write .*limited\.txt/);
    } finally {
      engine.kill();
    }
    const missing = await startEngine(
      fixture("lines-app.ts"),
      ["--in-file", join(tmp, "no-such-file.txt"), "--out-file", join(tmp, "unused.txt")],
      { waitRunning: false },
    );
    try {
      expect((await missing.exited).code, missing.stderr().slice(-2000)).toBe(1);
      expect(missing.stderr()).toMatch(
        /no-such-file\.txt does not exist; give an existing file or directory, or \{ follow: true \}/,
      );
    } finally {
      missing.kill();
    }
    const noDir = await startEngine(
      fixture("lines-app.ts"),
      ["--in-file", input, "--out-file", join(tmp, "no-such-dir", "out.txt")],
      { waitRunning: false },
    );
    try {
      expect((await noDir.exited).code).toBe(1);
      expect(noDir.stderr()).toMatch(/no-such-dir of .* does not exist; create it first/);
    } finally {
      noDir.kill();
    }
  });
  it("with --resilience-dir a finished file is not read again after a restart; a replaced, shorter one is read from its start (logged)", async () => {
    const input = join(tmp, "replaced.txt");
    const out = join(tmp, "replaced-out.txt");
    const args = ["--in-file", input, "--out-file", out, "--resilience-dir", join(tmp, "replaced-store")];
    writeFileSync(input, "a\nbb\nccc\n");
    let engine = await startEngine(fixture("lines-app.ts"), args);
    try {
      await finished(engine);
      await waitForOutput(out, 3, engine);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
    }
    // the same file again: nothing new
    engine = await startEngine(fixture("lines-app.ts"), args);
    try {
      expect((await finished(engine)).messages).toBe(0);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
    }
    writeFileSync(input, "x\n");
    engine = await startEngine(fixture("lines-app.ts"), args);
    try {
      const warned = await engine.waitForLog(
        (l) => typeof l.msg === "string" && /is shorter than the 9 bytes/.test(l.msg),
      );
      expect(warned.position).toBe(9);
      await finished(engine);
      expect((await engine.stop()).code).toBe(0);
      expect(outputLines(out)).toEqual(["a #1", "bb #2", "ccc #3", "x #4"]);
    } finally {
      engine.kill();
    }
  });
  it("an idle file sink does not make every checkpoint interval write a checkpoint", async () => {
    const input = join(tmp, "idle.txt");
    writeFileSync(input, "one\ntwo\n");
    const out = join(tmp, "idle-out.txt");
    const engine = await startEngine(fixture("lines-app.ts"), [
      "--in-file",
      input,
      "--out-file",
      out,
      "--resilience-dir",
      join(tmp, "idle-store"),
      "--checkpoint-interval",
      "0.05",
    ]);
    try {
      await waitForOutput(out, 2, engine);
      // long enough for the changes to be checkpointed; then 12 more intervals with nothing new
      await sleep(600);
      const mark = engine.logs().length;
      await sleep(600);
      const committed = engine
        .logs()
        .slice(mark)
        .filter((l) => typeof l.msg === "string" && /^checkpoint \d+ committed/.test(l.msg));
      expect(committed).toEqual([]);
      expect((await engine.stop()).code).toBe(0);
    } finally {
      engine.kill();
    }
  });
});
