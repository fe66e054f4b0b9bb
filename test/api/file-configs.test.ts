/**
 * The options bags of TCPSourceConfig, FileSourceConfig and FileSinkConfig: checked
 * at build() like every config argument, with errors that name the fix.
 */
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { FileSinkConfig, FileSourceConfig, TCPSourceConfig } from "../../src/api/configs.js";
import { decoder, encoder } from "../../src/api/wrappers.js";

const dec = decoder((b: Buffer) => b.toString());
const enc = encoder((s: string) => s);

describe("connector options", () => {
  it("TCPSourceConfig: framing defaults to length; lines is named in the endpoint", () => {
    expect(new TCPSourceConfig("127.0.0.1", 7000, dec).toSpec().framing).toBe("length");
    const s = new TCPSourceConfig("127.0.0.1", 7000, dec, { framing: "lines" }).toSpec();
    expect(s.framing).toBe("lines");
    expect(s.endpoint).toBe("tcp 127.0.0.1:7000 (lines)");
  });

  it("refuses an unknown option, a bad framing, and options that are not an object", () => {
    expect(() => new TCPSourceConfig("h", 1, dec, { framing: "csv" } as never).toSpec()).toThrow(
      /framing must be "length" .* or "lines"/,
    );
    expect(() => new TCPSourceConfig("h", 1, dec, { frameing: "lines" } as never).toSpec()).toThrow(
      /unknown option "frameing"; the options are framing/,
    );
    expect(() => new TCPSourceConfig("h", 1, dec, "lines" as never).toSpec()).toThrow(/options must be an object/);
    expect(() => new FileSourceConfig("f", dec, { follow: "yes" } as never).toSpec()).toThrow(
      /follow must be true or false/,
    );
    expect(() => new FileSinkConfig("f", enc, { maxBytes: -1 }).toSpec()).toThrow(/maxBytes must be an integer >= 0/);
    expect(() => new FileSinkConfig("", enc).toSpec()).toThrow(/path must be a non-empty string/);
    expect(() => new FileSourceConfig("f", enc as never).toSpec()).toThrow(/decoder must be made by wallaroo.decoder/);
  });

  it("file configs resolve their path, read lines by default, never follow or rotate unless asked", () => {
    const src = new FileSourceConfig("data/in.txt", dec).toSpec();
    expect(src).toMatchObject({ kind: "file-source", path: resolve("data/in.txt"), framing: "lines", follow: false });
    expect(src.endpoint).toBe(`file ${resolve("data/in.txt")}`);
    expect(new FileSourceConfig("d", dec, { framing: "length", follow: true }).toSpec()).toMatchObject({
      framing: "length",
      follow: true,
    });
    expect(new FileSinkConfig("o.txt", enc).toSpec()).toMatchObject({ kind: "file-sink", maxBytes: 0 });
    expect(new FileSinkConfig("o.txt", enc, { maxBytes: 1000 }).toSpec().maxBytes).toBe(1000);
  });
});
