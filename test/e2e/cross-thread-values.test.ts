/**
 * Values that cross between two workers (engine as a CLI child process): message
 * classes from helper modules keep their prototype, cycles and the structured-clone
 * types survive, and what cannot be restored on the other side (a class defined
 * inside a function, a class with #private members, a Symbol) is refused loudly,
 * naming the class or field and the step, while everything else keeps flowing.
 */
import { describe, expect, it } from "vitest";
import { frame, freePort, sendBytes, startCollector } from "../helpers/net.js";
import { fixture, sleep, startEngine, type LogLine } from "../helpers/engine.js";

const APP = fixture("cross-classes/app.ts");
const KEYS = ["a", "b", "c", "d"];
const msgOf = (l: LogLine) => (typeof l.msg === "string" ? l.msg : "");

describe("values crossing workers", () => {
  it("keeps helper-module classes, cycles and structured-clone types; refuses what cannot be restored", async () => {
    const out = await startCollector();
    const inPort = await freePort();
    const engine = await startEngine(APP, [
      "--in",
      `127.0.0.1:${inPort}`,
      "--out",
      `127.0.0.1:${out.port}`,
      "--workers",
      "2",
    ]);
    try {
      let expected = 0;
      const send = async (lines: string[], outputs: number) => {
        await sendBytes(inPort, frame(lines));
        expected += outputs;
        return (await out.waitForLines(expected, 20_000)).slice(expected - outputs);
      };

      // Four declared keys over two workers: two of them are owned by the other worker, whatever worker the connection is on.
      const readings = await send(
        KEYS.flatMap((k) => [1, 2, 3].map((n) => `reading:${k}:${n}`)),
        12,
      );
      expect(readings.sort()).toEqual(
        KEYS.flatMap((k) => [1, 2, 3].map((n) => `reading ${k} true ${2 * n} src#${n}`)).sort(),
      );

      const cyclic = await send(
        KEYS.map((k) => `cyclic:${k}:5`),
        4,
      );
      expect(cyclic.sort()).toEqual(
        KEYS.map((k) => `cyclic ${k} true true cyc#5 true x+y 5000 ${2n ** 70n + 5n} ab+c/gi true 5`),
      );

      // Refused: only the two keys owned by the connection's own worker produce output (no crossing there).
      const refusals: [string, RegExp][] = [
        [
          "local",
          /computation "apply" of pipeline "cross".*cannot serialize field \.v: an instance of class Local, which the engine cannot restore; export class Local from its module/,
        ],
        [
          "secret",
          /computation "apply" of pipeline "cross".*cannot serialize field \.v: an instance of class Secret, which has private member\(s\) #v/,
        ],
        [
          "symbol",
          /computation "apply" of pipeline "cross".*cannot serialize field \.v\.tag: a Symbol \(Symbol\([a-d]\)\)/,
        ],
      ];
      for (const [kind, error] of refusals) {
        const from = engine.lines.length;
        const got = await send(
          KEYS.map((k) => `${kind}:${k}:1`),
          2,
        );
        expect(
          got.every((l) => l.startsWith(`${kind} `)),
          got.join("\n"),
        ).toBe(true);
        const line = await engine.waitForLog((l) => error.test(msgOf(l)), 20_000, from);
        expect(line.level).toBe(50);
        await sleep(1100); // errors are logged at most once a second per step
      }

      // The channels between the workers are still in step after the refused values.
      const again = await send(
        KEYS.map((k) => `reading:${k}:7`),
        4,
      );
      expect(again.sort()).toEqual(KEYS.map((k) => `reading ${k} true 14 src#7`));
      await sleep(300);
      expect(out.lines().length).toBe(expected);
      const exit = await engine.stop("SIGTERM");
      expect(exit, engine.stderr().slice(-3000)).toEqual({ code: 0, signal: null });
    } finally {
      engine.kill();
      await out.close();
    }
  }, 90_000);
});
