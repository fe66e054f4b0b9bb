/**
 * The surprises docs/semantics.md states, checked: applicationSetup runs once on
 * the main thread and once per worker with the same args, runApplication's module
 * path is relative to the cwd, and a state computation that throws after changing
 * its state keeps the change.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { fixture } from "../helpers/engine.js";
import { frame, sendBytes, startCollector } from "../helpers/net.js";

// The engine starts its threads from dist/ (built by npm test's pretest).
const { runApplication } = await import("../../dist/index.js");

describe("semantics stated in docs/semantics.md", () => {
  it("applicationSetup runs 1 + workers times with the same args; a throwing state computation keeps its change", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wallaroo-sem-"));
    const calls = join(dir, "calls.jsonl");
    const sink = await startCollector();
    const args = ["--in", "127.0.0.1:0", "--out", `127.0.0.1:${sink.port}`, "--calls", calls];
    // relative to the cwd, as docs/semantics.md says
    const app = await runApplication({
      module: relative(process.cwd(), fixture("semantics-app.ts")),
      args,
      workers: 2,
      statsInterval: 0,
    });
    try {
      const seen = readFileSync(calls, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as { main: boolean; args: string[] });
      expect(seen).toHaveLength(3);
      expect(seen.filter((c) => c.main)).toHaveLength(1);
      for (const c of seen) expect(c.args).toEqual(args);
      const port = app.sourcePorts.tally!;
      expect(port).toBeGreaterThan(0);
      await sendBytes(port, frame(["a", "boom", "b"]));
      // "boom" incremented the count to 2 and then threw: "b" sees 3
      expect(await sink.waitForLines(2)).toEqual(["a 1", "b 3"]);
    } finally {
      await app.stop();
      await sink.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
