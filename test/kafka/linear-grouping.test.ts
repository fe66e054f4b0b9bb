/**
 * src/connectors/kafkajs-linear.ts: the replacement of kafkajs' per-partition
 * grouping gives kafkajs' result (same partitions, same order within each), and
 * it is the one kafkajs' producer uses in a thread that loads the Kafka sink,
 * which is how the engine loads it (a fresh process, as an I/O thread is).
 */
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { REPO } from "./helpers.js";

const { groupMessagesPerPartition } = await import("../../dist/connectors/kafkajs-linear.js");
const require = createRequire(import.meta.url);

describe("kafkajs linear grouping", () => {
  it("groups like kafkajs' own grouping: same partitions, input order within each", () => {
    // kafkajs' function, read from its source file (this test process may already hold the patched one)
    const { readFileSync } = require("node:fs") as typeof import("node:fs");
    const src = readFileSync(require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js"), "utf8");
    const mod = { exports: {} as any };
    new Function("module", src)(mod);
    const original = mod.exports;
    expect(typeof original).toBe("function");

    const messages = Array.from({ length: 3000 }, (_, i) => ({ key: `k${(i * 7919) % 97}`, value: `v${i}` }));
    const partitionMetadata = [{ partitionId: 0 }, { partitionId: 1 }, { partitionId: 2 }, { partitionId: 3 }, { partitionId: 4 }];
    const partitioner = ({ message }: { message: any }) => Number(message.key.slice(1)) % partitionMetadata.length;
    const args = { topic: "t", partitionMetadata, messages, partitioner };
    const ours = groupMessagesPerPartition(args);
    expect(ours).toEqual(original(args));
    expect(Object.keys(ours).sort()).toEqual(["0", "1", "2", "3", "4"]);
    for (const list of Object.values(ours)) {
      const seq = (list as { value: string }[]).map((m) => Number(m.value.slice(1)));
      expect(seq).toEqual([...seq].sort((a, b) => a - b));
    }
    expect(groupMessagesPerPartition({ ...args, partitionMetadata: [] })).toEqual({});
  });

  it("is what kafkajs' producer requires once the Kafka sink module is loaded", () => {
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(${JSON.stringify(`${REPO}/package.json`)});
      await import(${JSON.stringify(`${REPO}/dist/connectors/kafka-sink.js`)});
      const linear = await import(${JSON.stringify(`${REPO}/dist/connectors/kafkajs-linear.js`)});
      const sendPath = require.resolve("kafkajs/src/producer/sendMessages.js");
      const groupPath = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
      console.log(JSON.stringify({
        sendLoaded: require.cache[sendPath] !== undefined,
        patched: require.cache[groupPath]?.exports === linear.groupMessagesPerPartition,
        installed: linear.installLinearGrouping(),
      }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(JSON.parse(out.trim())).toEqual({ sendLoaded: true, patched: true, installed: true });
  });
});
