/**
 * wallaroo/testing with the line and file connectors: a pipeline whose source is a
 * file (or a TCP source with "lines" framing) takes one payload per line, and a file
 * sink's outputs are read like a TCP sink's (the encoder's bytes). No file is touched.
 */
import { describe, expect, it } from "vitest";
import { fileURLToPath } from "node:url";
import { createTestDriver } from "wallaroo/testing";

const APP = fileURLToPath(new URL("../fixtures/lines-app.ts", import.meta.url));

describe("test driver with file and lines connectors", () => {
  for (const args of [
    ["--in-file", "/nonexistent/in.txt", "--out-file", "/nonexistent/out.txt"],
    ["--in", "127.0.0.1:0", "--out-file", "/nonexistent/out.txt"],
  ]) {
    it(`feeds lines and reads the sink's outputs (${args[0]})`, async () => {
      const d = await createTestDriver({ module: APP, args, workers: 2 });
      try {
        await d.pipeInput("lines", "alpha", "beta", "");
        expect(d.readOutput().map((b) => b.toString())).toEqual(["alpha #1\n", "beta #2\n", " #3\n"]);
      } finally {
        await d.close();
      }
    });
  }
});
