/**
 * Type-level tests: `tsc --noEmit` under --strict over test/types/fixtures (whose
 * `@ts-expect-error` lines are type mismatches the typed pipelines must reject),
 * every example, the test fixtures and the benchmark apps.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/engine.js";

const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

async function tsc(project: string): Promise<{ code: number; out: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [TSC, "-p", project], { cwd: ROOT });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? 1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

describe("typed pipelines", () => {
  it("accept matching steps and reject every mismatch marked @ts-expect-error (examples compile under --strict)", async () => {
    const r = await tsc(join(ROOT, "test/types/tsconfig.json"));
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  }, 120_000);

  it("the emitted declarations (dist/) type the same way, and tcpParseInputAddr destructures under noUncheckedIndexedAccess", async () => {
    const r = await tsc(join(ROOT, "test/types/tsconfig.unchecked.json"));
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  }, 120_000);

  it("the same configuration reports a mismatch that is not marked (the check can fail)", async () => {
    // Inside the repository, so that @types/node resolves as for the real fixtures.
    const dir = mkdtempSync(join(ROOT, "test/types/tmp-"));
    try {
      writeFileSync(
        join(dir, "bad.ts"),
        [
          'import * as wallaroo from "wallaroo";',
          "const d = wallaroo.decoder((b: Buffer) => b.toString());",
          'const n = wallaroo.computation("n", (x: number) => x + 1);',
          'new wallaroo.ApplicationBuilder("x").newPipeline("p", new wallaroo.TCPSourceConfig("h", 1, d)).to(n).done();',
          "",
        ].join("\n"),
      );
      writeFileSync(
        join(dir, "tsconfig.json"),
        JSON.stringify({
          extends: join(ROOT, "test/types/tsconfig.json"),
          include: [join(dir, "bad.ts")],
        }),
      );
      const r = await tsc(join(dir, "tsconfig.json"));
      expect(r.code).not.toBe(0);
      expect(r.out).toMatch(/bad\.ts\(4,\d+\): error TS2345/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
