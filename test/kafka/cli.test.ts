/**
 * `wallaroo kafka` against the real broker: topics create / list / delete, produce lines
 * (keyed by their first word) and consume them back, and the errors of a missing topic and
 * a bad flag.
 */
import { describe, expect, inject, it } from "vitest";
import { uniqueName, wallarooKafka } from "./helpers.js";

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "no broker";

describe("wallaroo kafka", () => {
  it("creates, lists and deletes a topic; produces lines and consumes them back", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const b = ["--brokers", brokers];
    const topic = uniqueName("cli");
    try {
      expect(await wallarooKafka(["topics", "create", topic, "--partitions", "3", ...b])).toMatchObject({ code: 0 });
      expect((await wallarooKafka(["topics", "create", topic, ...b])).err).toMatch(/already exists/);
      expect((await wallarooKafka(["topics", "list", ...b])).out.split("\n")).toContain(topic);
      const lines = Array.from({ length: 30 }, (_, i) => `w${i % 4} line ${i}`);
      const produced = await wallarooKafka(["produce", topic, "--key-words", ...b], `${lines.join("\n")}\n\n`);
      expect(produced).toMatchObject({ code: 0, err: `produced 30 records to ${topic}\n` });
      const consumed = await wallarooKafka(["consume", topic, "--keys", "--count", "30", ...b]);
      expect(consumed.code).toBe(0);
      const got = consumed.out.trimEnd().split("\n");
      expect(got.sort()).toEqual(lines.map((l) => `${l.split(" ")[0]}\t${l}`).sort());
      // Lines of one key went to one partition, so they come back in the order written.
      for (const k of ["w0", "w1", "w2", "w3"]) {
        const theirs = consumed.out.split("\n").filter((l) => l.startsWith(`${k}\t`));
        expect(theirs).toEqual(lines.filter((l) => l.startsWith(`${k} `)).map((l) => `${k}\t${l}`));
      }
    } finally {
      expect(await wallarooKafka(["topics", "delete", topic, ...b])).toMatchObject({ code: 0 });
    }
    expect((await wallarooKafka(["topics", "list", ...b])).out.split("\n")).not.toContain(topic);
    expect(await wallarooKafka(["consume", topic, "--timeout", "1", ...b])).toMatchObject({
      code: 1,
      err: `wallaroo kafka: topic ${topic} does not exist\n`,
    });
  }, 60_000);

  it("explains itself, and refuses what it cannot do before connecting", async () => {
    const help = await wallarooKafka(["--help"]);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/topics create TOPIC/);
    expect(help.out).toMatch(/--sasl-password-file FILE \| --sasl-password-env VARIABLE/);
    expect((await wallarooKafka(["topics", "list", "--sasl-password", "x"])).code).toBe(2); // no such flag
    const noVar = await wallarooKafka([
      "topics",
      "list",
      "--sasl-mechanism",
      "plain",
      "--sasl-username",
      "u",
      "--sasl-password-env",
      "WALLAROO_TEST_UNSET_VARIABLE",
    ]);
    expect(noVar).toMatchObject({ code: 2 });
    expect(noVar.err).toMatch(/WALLAROO_TEST_UNSET_VARIABLE is not set/);
    expect((await wallarooKafka(["frobnicate"])).err).toMatch(/unknown command "frobnicate"/);
  });
});
