/**
 * The spec a Python application builds (src/runtime/python.ts), name by name, in this
 * process: what api_tour.py's application_setup declares becomes the engine's pipelines,
 * steps, states and connectors (Kafka included), and the wrapped functions run.
 */
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { livePythonValues, loadPythonModule, PyRef } from "../../src/runtime/python.js";
import { fixture } from "../helpers/engine.js";

describe("a Python application's spec", () => {
  it("api_tour.py: every builder method, decorator and config maps onto the engine's spec", {
    timeout: 120_000,
  }, async () => {
    const mod = await loadPythonModule(pathToFileURL(fixture("python-app/api_tour.py")).href);
    const setup = mod.application_setup as (args: string[]) => any;
    const spec = setup([
      "api_tour.py",
      "--in",
      "127.0.0.1:7010,127.0.0.1:7011",
      "--out",
      "127.0.0.1:7002",
      "--with-kafka",
      "--with-done",
      "--kafka_source_topic",
      "words",
      "--kafka_source_brokers",
      "127.0.0.1:19092",
      "--kafka_sink_topic",
      "counts",
      "--kafka_sink_brokers",
      "127.0.0.1:19092,127.0.0.2",
      "--kafka_sink_max_message_size",
      "5000",
    ]);
    expect(spec.name).toBe("api tour");
    expect(spec.pipelines.map((p: any) => p.name)).toEqual(["keys", "u64", "kafka", "ignored"]);
    const [keys, u64, kafka, ignored] = spec.pipelines;
    expect(keys.source).toMatchObject({ kind: "tcp-source", port: 7010 });
    expect(keys.source.decoder).toMatchObject({ headerLength: 2, lengthFmt: ">H" });
    expect(keys.steps.map((s: any) => [s.kind, s.computation.name, s.computation.multi])).toEqual([
      ["to", "parse", false],
      ["toParallel", "with none", true],
      ["state", "tally", true],
    ]);
    expect(u64.sinks.map((s: any) => s.kind)).toEqual(["tcp-sink", "tcp-sink"]);
    expect(kafka.source).toMatchObject({ kind: "kafka-source", topic: "words", brokers: [["127.0.0.1", 19092]] });
    expect(kafka.sinks[0]).toMatchObject({
      kind: "kafka-sink",
      topic: "counts",
      brokers: [
        ["127.0.0.1", 19092],
        ["127.0.0.2", 9092],
      ],
      maxMessageSize: 5000,
      maxProduceBufferMs: 0,
    });
    expect(ignored.sinks).toEqual([]);
    const states = Object.fromEntries(spec.states.map((s: any) => [s.name, s]));
    expect(states["u64 counts"].partition).toMatchObject({ u64: true, keys: [0, 1, 2, 3] });
    expect(states.tally.partition.keys).toEqual([]);
    expect(states.tally.stateClass.name).toBe("Tally");

    // the functions run: a message through the "keys" pipeline by hand, values as handles
    const line = keys.source.decoder.fn(Buffer.from("o x 4"));
    expect(line).toBeInstanceOf(PyRef);
    const msg = keys.steps[0].computation.fn(line);
    expect(keys.steps[1].computation.fn(msg)).toHaveLength(1); // [m, None]: the None is left out
    const key = states.tally.partition.fn.fn(msg);
    expect(key).toMatch(/^\0p:/); // a user class: by its pickle
    expect(
      states.tally.partition.fn.fn(keys.steps[0].computation.fn(keys.source.decoder.fn(Buffer.from("o x 9")))),
    ).toBe(key);
    const tally = new states.tally.stateClass();
    const [outs, save] = keys.steps[2].computation.fn(msg, tally);
    expect(save).toBe(true);
    expect(outs.map((o: PyRef) => String(o))).toEqual([`"Name('x') 2.0"`, `"Name('x') seen"`]);
    expect(keys.sinks[0].encoder.fn(outs[0]).toString()).toBe("Name('x') 2.0\n");
    // Kafka: (bytes, None) -> [bytes, undefined]
    const [value, k] = kafka.sinks[0].encoder.fn(msg);
    expect(Buffer.from(value).toString()).toBe("Name('x')");
    expect(k).toBeUndefined();
    // pickle across workers: the same value back, a new handle
    const back = (mod.deserialize as (b: Uint8Array) => PyRef)((mod.serialize as (v: PyRef) => Uint8Array)(outs[0]));
    expect(String(back)).toBe(String(outs[0]));
    expect(back.h).not.toBe(outs[0].h);
    expect(livePythonValues()).toBeGreaterThan(0);
    // u64: keys up to 2^64-1 stay exact (a bigint past 2^53)
    const big = u64.source.decoder.fn(Buffer.from("18446744073709551615 3"));
    expect(states["u64 counts"].partition.fn.fn(big)).toBe(18446744073709551615n);
  });
});
