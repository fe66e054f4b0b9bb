import { describe, expect, it } from "vitest";
import { ApplicationBuilder } from "../../src/api/builder.js";
import { normalizeKey } from "../../src/core/hash.js";
import { KafkaSinkConfig, KafkaSourceConfig, TCPSinkConfig, TCPSourceConfig } from "../../src/api/configs.js";
import { WallarooParameterError } from "../../src/api/errors.js";
import { hours, milliseconds, minutes, seconds } from "../../src/api/durations.js";
import * as w from "../../src/api/wrappers.js";
import { KIND, type ApplicationSpec } from "../../src/topology/spec.js";

// ---- a word count and a market_spread-like application ----

class WordTotals {
  totals = new Map<string, number>();
  add(word: string): { word: string; count: number } {
    const count = (this.totals.get(word) ?? 0) + 1;
    this.totals.set(word, count);
    return { word, count };
  }
}
class SymbolData {
  last = 0;
}
class Other {}

const dec = w.decoder({ headerLength: 4, lengthFmt: ">I" }, (b: Buffer) => b.toString());
const enc = w.encoder((x: { word: string; count: number }) => `${x.word} => ${x.count}\n`);
const split = w.computationMulti("Split", (s: string) => s.split(" "));
const double = w.computation("Double", (n: number) => n * 2);
const countWord = w.stateComputation("Count Word", (word: string, st: WordTotals) => [st.add(word), true]);
const byFirst = w.partition((word: string) => word[0] ?? "_");
const letters = "abcdefghijklmnopqrstuvwxyz".split("");
const updateNbbo = w.stateComputation("Update NBBO", (_m: unknown, st: SymbolData) => [null, true]);
const checkOrder = w.stateComputation("Check Order", (o: unknown, st: SymbolData) => [st.last > 0 ? o : null, false]);
const bySymbol = w.partition((m: { symbol: string }) => m.symbol);
const symbols = ["AAPL", "MSFT", "IBM"];

const src = (port: number | string = 7010) => new TCPSourceConfig("127.0.0.1", port, dec);
const sink = (port: number | string = 7002) => new TCPSinkConfig("127.0.0.1", port, enc);

function wordCount(): ApplicationBuilder {
  const ab = new ApplicationBuilder("Word Count");
  ab.newPipeline("Split and Count", src())
    .toParallel(split)
    .toStatePartition(countWord, WordTotals, "word totals", byFirst, letters)
    .toSink(sink());
  return ab;
}

function marketSpread(snake = false): ApplicationBuilder {
  const ab = new ApplicationBuilder("Market Spread");
  if (snake) {
    ab.new_pipeline("Orders", src(7000))
      .to_state_partition(checkOrder, SymbolData, "symbol-data", bySymbol, symbols)
      .to_sink(sink(7002))
      .new_pipeline("Market Data", src(7001))
      .to_state_partition(updateNbbo, SymbolData, "symbol-data", bySymbol, symbols)
      .done();
  } else {
    ab.newPipeline("Orders", src(7000))
      .toStatePartition(checkOrder, SymbolData, "symbol-data", bySymbol, symbols)
      .toSink(sink(7002))
      .newPipeline("Market Data", src(7001))
      .toStatePartition(updateNbbo, SymbolData, "symbol-data", bySymbol, symbols)
      .done();
  }
  return ab;
}

/** Asserts build() throws a WallarooParameterError whose message matches every pattern. */
function expectBuildError(ab: ApplicationBuilder, ...patterns: (RegExp | string)[]): string {
  let err: unknown;
  try {
    ab.build();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(WallarooParameterError);
  const msg = (err as Error).message;
  for (const p of patterns) {
    if (typeof p === "string") expect(msg).toContain(p);
    else expect(msg).toMatch(p);
  }
  return msg;
}

describe("ApplicationBuilder: happy paths", () => {
  it("builds word count", () => {
    const spec = wordCount().build();
    expect(spec[KIND]).toBe("application");
    expect(spec.name).toBe("Word Count");
    expect(spec.pipelines).toHaveLength(1);
    const p = spec.pipelines[0];
    expect(p.name).toBe("Split and Count");
    expect(p.source).toEqual({
      kind: "tcp-source",
      endpoint: "tcp 127.0.0.1:7010",
      host: "127.0.0.1",
      port: 7010,
      framing: "length",
      decoder: dec,
      eventTime: null,
    });
    expect(p.steps).toEqual([
      { kind: "toParallel", computation: split },
      { kind: "state", computation: countWord, stateName: "word totals" },
    ]);
    expect(p.sinks).toEqual([
      { kind: "tcp-sink", endpoint: "tcp 127.0.0.1:7002", host: "127.0.0.1", port: 7002, encoder: enc },
    ]);
    expect(spec.states).toEqual([
      { name: "word totals", stateClass: WordTotals, partition: { fn: byFirst, keys: letters, u64: false } },
    ]);
  });

  it("merges a state shared by two pipelines into one (market_spread)", () => {
    const spec = marketSpread().build();
    expect(spec.pipelines.map((p) => p.name)).toEqual(["Orders", "Market Data"]);
    expect(spec.pipelines[1].sinks).toEqual([]);
    expect(spec.states).toHaveLength(1);
    expect(spec.states[0]).toMatchObject({
      name: "symbol-data",
      stateClass: SymbolData,
      partition: { keys: symbols, u64: false },
    });
    expect(spec.pipelines.map((p) => p.steps[0])).toEqual([
      { kind: "state", computation: checkOrder, stateName: "symbol-data" },
      { kind: "state", computation: updateNbbo, stateName: "symbol-data" },
    ]);
  });

  it("accepts the shared key set in another order", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p1", src())
      .toStatePartition(checkOrder, SymbolData, "s", bySymbol, ["a", "b"])
      .toSink(sink())
      .newPipeline("p2", src(1))
      .toStatePartition(updateNbbo, SymbolData, "s", bySymbol, ["b", "a"])
      .done();
    expect(ab.build().states[0].partition?.keys).toEqual(["a", "b"]);
  });

  it("snake_case aliases give the same spec", () => {
    expect(marketSpread(true).build()).toEqual(marketSpread(false).build());
    const camel = new ApplicationBuilder("X");
    camel
      .newPipeline("p", src())
      .to(double)
      .toParallel(double)
      .toStateful(countWord, WordTotals, "t")
      .toStatePartitionU64(updateNbbo, SymbolData, "u", bySymbol, [1, 2n])
      .toSinks([sink(), sink(7003)]);
    const snake = new ApplicationBuilder("X");
    snake
      .new_pipeline("p", src())
      .to(double)
      .to_parallel(double)
      .to_stateful(countWord, WordTotals, "t")
      .to_state_partition_u64(updateNbbo, SymbolData, "u", bySymbol, [1, 2n])
      .to_sinks([sink(), sink(7003)]);
    expect(snake.build()).toEqual(camel.build());
  });

  it("toSinks sends to every sink; a pipeline may end with done()", () => {
    const ab = new ApplicationBuilder("Fan out");
    ab.newPipeline("to two", src())
      .to(double)
      .toSinks([sink(7002), new KafkaSinkConfig("out", [["k", "9092"]], "Info", undefined, undefined, enc)])
      .newPipeline("discard", src(7011))
      .to(double)
      .done();
    const spec = ab.build();
    expect(spec.pipelines[0].sinks).toEqual([
      { kind: "tcp-sink", endpoint: "tcp 127.0.0.1:7002", host: "127.0.0.1", port: 7002, encoder: enc },
      {
        kind: "kafka-sink",
        endpoint: "kafka topic out",
        topic: "out",
        brokers: [["k", 9092]],
        logLevel: "Info",
        maxProduceBufferMs: 0,
        maxMessageSize: 100000,
        encoder: enc,
        security: { tls: null, sasl: null },
      },
    ]);
    expect(spec.pipelines[1]).toMatchObject({ name: "discard", sinks: [] });
  });

  it("a pipeline with no steps and a Kafka source", () => {
    const ab = new ApplicationBuilder("Passthrough");
    ab.newPipeline(
      "p",
      new KafkaSourceConfig(
        "in",
        [
          ["k1", 9092],
          ["k2", "9093"],
        ],
        "Warn",
        dec,
      ),
    ).toSink(sink());
    expect(ab.build().pipelines[0]).toEqual({
      name: "p",
      source: {
        kind: "kafka-source",
        endpoint: "kafka topic in",
        topic: "in",
        brokers: [
          ["k1", 9092],
          ["k2", 9093],
        ],
        logLevel: "Warn",
        decoder: dec,
        eventTime: null,
        security: { tls: null, sasl: null },
      },
      steps: [],
      sinks: [{ kind: "tcp-sink", endpoint: "tcp 127.0.0.1:7002", host: "127.0.0.1", port: 7002, encoder: enc }],
    });
  });

  it("normalizes string ports, allows source port 0, keeps the stateful state unpartitioned", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src("0")).toStateful(countWord, WordTotals, "totals").toSink(sink(" 7002 "));
    const spec = ab.build();
    expect(spec.pipelines[0].source).toMatchObject({ port: 0 });
    expect(spec.pipelines[0].sinks[0]).toMatchObject({ port: 7002 });
    expect(spec.states).toEqual([{ name: "totals", stateClass: WordTotals, partition: null }]);
  });

  it("the same computation object may be used more than once", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).to(double).to(double).toSink(sink()).newPipeline("q", src(1)).toParallel(double).done();
    expect(ab.build().pipelines[1].steps).toEqual([{ kind: "toParallel", computation: double }]);
  });

  it("done() after a sink is harmless; partition keys are optional", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toStatePartition(countWord, WordTotals, "t", byFirst).toSink(sink()).done().done();
    expect(ab.build().states[0].partition?.keys).toEqual([]);
  });

  it("u64 keys: safe bigints become numbers, big ones stay bigints, order is kept", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartitionU64(updateNbbo, SymbolData, "u", bySymbol, [
        3,
        0n,
        2n ** 64n - 1n,
        Number.MAX_SAFE_INTEGER,
        2n ** 53n,
      ])
      .toSink(sink());
    expect(ab.build().states[0].partition).toEqual({
      fn: bySymbol,
      u64: true,
      keys: [3, 0, 2n ** 64n - 1n, Number.MAX_SAFE_INTEGER, 2n ** 53n],
    });
  });

  it("general keys may mix strings, numbers and bigints", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartition(countWord, WordTotals, "t", byFirst, ["1", 1, 2n, 1.5, -0, 2n ** 70n])
      .toSink(sink());
    const keys = ab.build().states[0].partition!.keys;
    expect(keys).toEqual(["1", 1, 2, 1.5, 0, 2n ** 70n]);
    expect(Object.is(keys[4], 0)).toBe(true);
  });

  it("build() can be called again and the spec is frozen", () => {
    const ab = wordCount();
    const a: ApplicationSpec = ab.build();
    expect(ab.build()).toEqual(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a.pipelines)).toBe(true);
    expect(Object.isFrozen(a.pipelines[0].steps)).toBe(true);
    expect(Object.isFrozen(a.states[0])).toBe(true);
  });

  it("normalizeKey", () => {
    expect(normalizeKey(5n)).toBe(5);
    expect(normalizeKey(-5n)).toBe(-5);
    expect(normalizeKey(2n ** 53n)).toBe(2n ** 53n);
    expect(Object.is(normalizeKey(-0), 0)).toBe(true);
    expect(normalizeKey("5")).toBe("5");
  });
});

describe("ApplicationBuilder: methods record, build() validates", () => {
  it("no method but build() throws, whatever it is given", () => {
    const ab = new ApplicationBuilder(42 as never);
    const junk = [undefined, null, 3, "x", {}, () => 1] as never[];
    for (const j of junk) {
      expect(() =>
        ab
          .to(j)
          .toParallel(j)
          .toStateful(j, j, j)
          .toStatePartition(j, j, j, j, j)
          .toStatePartitionU64(j, j, j, j, j)
          .toSink(j)
          .toSinks(j)
          .done()
          .newPipeline(j, j)
          .to_parallel(j)
          .to_stateful(j, j, j)
          .to_state_partition(j, j, j, j, j)
          .to_state_partition_u64(j, j, j, j, j)
          .to_sink(j)
          .to_sinks(j)
          .new_pipeline(j, j),
      ).not.toThrow();
    }
    expect(() => ab.build()).toThrow(WallarooParameterError);
  });

  it("every method returns the builder", () => {
    const ab = new ApplicationBuilder("A");
    expect(ab.newPipeline("p", src())).toBe(ab);
    expect(ab.to(double)).toBe(ab);
    expect(ab.done()).toBe(ab);
  });
});

describe("ApplicationBuilder: build() errors name what to fix", () => {
  it("an application name that is not a string", () => {
    expectBuildError(
      new ApplicationBuilder("" as never),
      "the application name must be a non-empty string",
      "new ApplicationBuilder(name)",
    );
  });

  it("an empty application", () => {
    expectBuildError(
      new ApplicationBuilder("Empty"),
      'Application "Empty"',
      "has no pipeline",
      "newPipeline(name, sourceConfig)",
    );
  });

  it("a step before any newPipeline", () => {
    const ab = new ApplicationBuilder("A");
    ab.to(double).newPipeline("p", src()).toSink(sink());
    expectBuildError(
      ab,
      'to("Double") comes before any newPipeline()',
      "start a pipeline with newPipeline(name, sourceConfig) first",
    );
    expectBuildError(new ApplicationBuilder("A").toSink(sink()), "toSink() comes before any newPipeline()");
    expectBuildError(new ApplicationBuilder("A").done(), "done() comes before any newPipeline()");
  });

  it("a step after a sink", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toSink(sink()).to(double);
    expectBuildError(
      ab,
      'pipeline "p", step 2 to("Double")',
      "comes after its sink",
      "newPipeline(name, sourceConfig) before adding steps",
    );
  });

  it("a second toSink points to toSinks", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toSink(sink()).toSink(sink(7003));
    expectBuildError(ab, 'pipeline "p", step 2 toSink()', "after its sink", "use toSinks([a, b])");
  });

  it("a step after done()", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toSink(sink()).newPipeline("q", src(1)).done().toStateful(countWord, WordTotals, "t");
    expectBuildError(ab, 'pipeline "q", step 2 toStateful("Count Word")', "comes after done()");
  });

  it("two pipelines with one name", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toSink(sink()).newPipeline("p", src(1)).done();
    expectBuildError(ab, 'pipeline "p"', 'two pipelines are named "p"', "unique name");
  });

  it("a pipeline name that is not a non-empty string", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toSink(sink())
      .newPipeline("" as never, src(1))
      .done();
    expectBuildError(ab, "pipeline #2", "newPipeline(name, sourceConfig): the name must be a non-empty string");
  });

  it("no pipeline ending in a sink", () => {
    const ab = new ApplicationBuilder("No Sink");
    ab.newPipeline("p", src()).to(double).done().newPipeline("q", src(1)).done();
    expectBuildError(ab, 'Application "No Sink"', "no pipeline ends in a sink", "toSink(sinkConfig)");
  });

  it("a pipeline left open when the next one starts", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("open", src()).to(double).newPipeline("q", src(1)).toSink(sink());
    expectBuildError(
      ab,
      'pipeline "open"',
      'left open when newPipeline("q") starts the next one',
      "toSink(sinkConfig), toSinks([...]) or done()",
    );
  });

  it("a pipeline left open at build()", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toSink(sink()).newPipeline("open", src(1)).to(double);
    expectBuildError(ab, 'pipeline "open"', "left open at build()", "done()");
  });

  it("a state name reused with another class", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStateful(countWord, WordTotals, "s")
      .toSink(sink())
      .newPipeline("q", src(1))
      .toStateful(countWord, Other, "s")
      .done();
    expectBuildError(
      ab,
      'pipeline "q", step 1 toStateful("Count Word")',
      'the state "s" is already declared at pipeline "p", step 1',
      "class WordTotals, not Other",
    );
  });

  it.each([
    [
      "stateful then partitioned",
      (ab: ApplicationBuilder) => ab.toStateful(countWord, WordTotals, "s"),
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst, []),
      "toStateful (one instance), not toStatePartition",
    ],
    [
      "partitioned then u64",
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst, [1]),
      (ab: ApplicationBuilder) => ab.toStatePartitionU64(countWord, WordTotals, "s", byFirst, [1]),
      "toStatePartition, not toStatePartitionU64",
    ],
    [
      "u64 then stateful",
      (ab: ApplicationBuilder) => ab.toStatePartitionU64(countWord, WordTotals, "s", byFirst, [1]),
      (ab: ApplicationBuilder) => ab.toStateful(countWord, WordTotals, "s"),
      "toStatePartitionU64, not toStateful",
    ],
    [
      "another key set",
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst, ["a", "b"]),
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst, ["a", "c"]),
      "another key set",
    ],
    [
      "keys given once, left out once",
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst, ["a"]),
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst),
      "another key set (1 keys there, 0 here)",
    ],
    [
      "another partition function",
      (ab: ApplicationBuilder) => ab.toStatePartition(countWord, WordTotals, "s", byFirst, ["a"]),
      (ab: ApplicationBuilder) =>
        ab.toStatePartition(
          countWord,
          WordTotals,
          "s",
          w.partition((x: string) => x),
          ["a"],
        ),
      "another partition function",
    ],
  ])("a state name reused with another partition scheme: %s", (_l, first, second, clash) => {
    const ab = new ApplicationBuilder("A");
    first(ab.newPipeline("p", src())).toSink(sink());
    second(ab.newPipeline("q", src(1))).done();
    expectBuildError(
      ab,
      'pipeline "q", step 1',
      'the state "s" is already declared at pipeline "p"',
      clash,
      "one partition scheme per state name",
    );
  });

  it("duplicate partition keys, strings and numbers compared by value", () => {
    const dup = (keys: unknown[], u64 = false) => {
      const ab = new ApplicationBuilder("A").newPipeline("p", src());
      (u64 ? ab.toStatePartitionU64 : ab.toStatePartition)
        .call(ab, countWord, WordTotals, "s", byFirst, keys as never)
        .toSink(sink());
      return ab;
    };
    expectBuildError(
      dup(["a", "b", "a"]),
      'pipeline "p", step 1 toStatePartition("Count Word")',
      'partition "s": key "a" is listed twice',
    );
    expectBuildError(dup([1, 2, 1]), "key 1 is listed twice");
    expectBuildError(dup([1, 1n]), "key 1 is listed twice");
    expectBuildError(dup([0, -0]), "key 0 is listed twice");
    expectBuildError(dup([5, 5n], true), "toStatePartitionU64", "key 5 is listed twice");
    expect(() => dup(["1", 1]).build()).not.toThrow();
  });

  it.each([
    [{}, "(object) is not hashable"],
    [[1], "(object) is not hashable"],
    [null, "(null) is not hashable"],
    [undefined, "(undefined) is not hashable"],
    [true, "(boolean) is not hashable"],
    [Symbol("k"), "(symbol) is not hashable"],
    [NaN, "key NaN is not a finite number"],
    [Infinity, "key Infinity is not a finite number"],
  ])("non-hashable partition key %s", (key, msg) => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartition(countWord, WordTotals, "s", byFirst, ["ok", key] as never)
      .toSink(sink());
    expectBuildError(ab, 'pipeline "p", step 1', 'partition "s"', msg);
  });

  it("partition keys that are not an array", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartition(countWord, WordTotals, "s", byFirst, "abc" as never)
      .toSink(sink());
    expectBuildError(ab, 'the partition keys of "s" must be an array');
  });

  it.each([
    [-1, "u64 key -1 is not a non-negative integer"],
    [1.5, "u64 key 1.5 is not a non-negative integer"],
    [-1n, "u64 key -1n is outside 0 .. 2^64-1"],
    [2n ** 64n, "u64 key 18446744073709551616n is outside 0 .. 2^64-1"],
    [
      2 ** 53,
      "is above Number.MAX_SAFE_INTEGER and may have been rounded; write it as a bigint (e.g. 9007199254740992n)",
    ],
    ["7", 'u64 key "7" (string) must be a non-negative integer number or bigint below 2^64'],
    [NaN, "u64 key NaN is not a non-negative integer"],
  ])("bad u64 key %s", (key, msg) => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartitionU64(countWord, WordTotals, "s", byFirst, [1, key] as never)
      .toSink(sink());
    expectBuildError(ab, 'pipeline "p", step 1 toStatePartitionU64("Count Word")', msg);
  });

  it("a partition function not made by partition()", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartition(countWord, WordTotals, "s", ((x: string) => x) as never, [])
      .toSink(sink());
    expectBuildError(
      ab,
      'pipeline "p", step 1',
      'the partition function of "s" must be made by wallaroo.partition(fn), got a plain function',
    );
  });

  it("a computation not made by the wrappers", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .to(((x: number) => x) as never)
      .toSink(sink());
    expectBuildError(
      ab,
      'pipeline "p", step 1 to()',
      "to() needs a computation made by wallaroo.computation(name, fn) or computationMulti(name, fn), got a plain function",
    );
    const ab2 = new ApplicationBuilder("A");
    ab2
      .newPipeline("p", src())
      .toParallel({ name: "fake", fn: () => 1 } as never)
      .toSink(sink());
    expectBuildError(ab2, "toParallel() needs a computation made by wallaroo.computation", "got an object");
  });

  it("a state computation not made by the wrappers", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStateful(((x: number) => [x, true]) as never, WordTotals, "t")
      .toSink(sink());
    expectBuildError(
      ab,
      'pipeline "p", step 1 toStateful()',
      "needs a state computation made by wallaroo.stateComputation(name, fn)",
    );
  });

  it("a state computation given to to()/toParallel()", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .to(double)
      .toParallel(countWord as never)
      .toSink(sink());
    expectBuildError(
      ab,
      'pipeline "p", step 2 toParallel("Count Word")',
      "needs a stateless computation but got a state computation",
      "toStateful()/toStatePartition()",
    );
  });

  it("a stateless computation given where a state computation is needed", () => {
    for (const call of [
      (ab: ApplicationBuilder) => ab.toStateful(double as never, WordTotals, "t"),
      (ab: ApplicationBuilder) => ab.toStatePartition(double as never, WordTotals, "t", byFirst),
      (ab: ApplicationBuilder) => ab.toStatePartitionU64(double as never, WordTotals, "t", byFirst),
    ]) {
      const ab = new ApplicationBuilder("A");
      call(ab.newPipeline("p", src())).toSink(sink());
      expectBuildError(
        ab,
        'pipeline "p", step 1',
        '("Double")',
        "needs a state computation but got a stateless one",
        "wallaroo.stateComputation(name",
      );
    }
  });

  it("two different computations with one name", () => {
    const other = w.computation("Double", (n: number) => n + n);
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).to(double).toSink(sink()).newPipeline("q", src(1)).to(other).done();
    expectBuildError(
      ab,
      'pipeline "q", step 1 to("Double")',
      'two different computations are named "Double"',
      'the other one is at pipeline "p", step 1 to("Double")',
      "unique name",
    );
    // the name space is shared by stateless and state computations
    const ab2 = new ApplicationBuilder("A");
    ab2
      .newPipeline("p", src())
      .to(w.computation("X", (n: number) => n))
      .toStateful(
        w.stateComputation("X", (n: number, s: object) => [n, false]),
        WordTotals,
        "t",
      )
      .toSink(sink());
    expectBuildError(ab2, 'two different computations are named "X"');
  });

  it("an empty toSinks([])", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).to(double).toSinks([]);
    expectBuildError(ab, 'pipeline "p", step 2 toSinks()', "toSinks([]) has no sink", "done()");
    const ab2 = new ApplicationBuilder("A");
    ab2.newPipeline("p", src()).toSinks(sink() as never);
    expectBuildError(ab2, "toSinks() needs an array of sink configs");
  });

  it("a source config that is not one of the config classes", () => {
    for (const bad of [{ host: "h", port: 1, decoder: dec }, sink(), dec, undefined]) {
      const ab = new ApplicationBuilder("A");
      ab.newPipeline("p", bad as never).toSink(sink());
      expectBuildError(
        ab,
        'pipeline "p"',
        "the source must be a TCPSourceConfig, a KafkaSourceConfig or a FileSourceConfig",
      );
    }
  });

  it("a sink config that is not one of the config classes", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src()).toSink(src() as never);
    expectBuildError(
      ab,
      'pipeline "p", step 1 toSink()',
      "a sink must be a TCPSinkConfig, a KafkaSinkConfig or a FileSinkConfig",
      "got a tcpSourceConfig",
    );
    const ab2 = new ApplicationBuilder("A");
    ab2.newPipeline("p", src()).toSinks([sink(), { host: "h" } as never]);
    expectBuildError(ab2, 'pipeline "p", step 1 toSinks(), sink 2', "a sink must be a TCPSinkConfig");
  });

  it("a bad port, reported with the pipeline", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("Ingest", src("http")).toSink(sink());
    expectBuildError(ab, 'pipeline "Ingest"', 'TCPSourceConfig: port "http" is not a port number');
    const ab2 = new ApplicationBuilder("A");
    ab2.newPipeline("Ingest", src()).toSink(sink(0));
    expectBuildError(
      ab2,
      'pipeline "Ingest", step 1 toSink()',
      "TCPSinkConfig: port 0 is not a port number",
      "from 1 to 65535",
    );
    const ab3 = new ApplicationBuilder("A");
    ab3.newPipeline("Ingest", src(65536)).toSink(sink());
    expectBuildError(ab3, "from 0 to 65535");
  });

  it("a decoder or encoder not made by the wrappers", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", new TCPSourceConfig("h", 1, ((b: Buffer) => b) as never)).toSink(sink());
    expectBuildError(
      ab,
      'pipeline "p"',
      "TCPSourceConfig: the decoder must be made by wallaroo.decoder(options, fn), got a plain function",
    );
    const ab2 = new ApplicationBuilder("A");
    ab2.newPipeline("p", src()).toSink(new TCPSinkConfig("h", 1, dec as never));
    expectBuildError(ab2, "TCPSinkConfig: the encoder must be made by wallaroo.encoder(fn), got a decoder");
  });

  it("bad Kafka configs", () => {
    const build = (source: unknown, sinkCfg: unknown = sink()) => {
      const ab = new ApplicationBuilder("A");
      ab.newPipeline("k", source as never).toSink(sinkCfg as never);
      return ab;
    };
    expectBuildError(
      build(new KafkaSourceConfig("", [["k", 1]], "Warn", dec)),
      "KafkaSourceConfig: topic must be a non-empty string",
    );
    expectBuildError(
      build(new KafkaSourceConfig("t", [], "Warn", dec)),
      "brokers must be a non-empty array of [host, port] pairs",
    );
    expectBuildError(
      build(new KafkaSourceConfig("t", ["k:1"] as never, "Warn", dec)),
      "brokers must be a non-empty array of [host, port] pairs",
    );
    expectBuildError(build(new KafkaSourceConfig("t", [["k", "x"]], "Warn", dec)), 'broker k: port "x"');
    expectBuildError(
      build(new KafkaSourceConfig("t", [["k", 1]], "Debug" as never, dec)),
      "logLevel must be one of Fine, Info, Warn, Error",
    );
    expectBuildError(
      build(src(), new KafkaSinkConfig("t", [["k", 1]], "Warn", -1, undefined, enc)),
      "KafkaSinkConfig: maxProduceBufferMs must be an integer >= 0",
    );
    expectBuildError(
      build(src(), new KafkaSinkConfig("t", [["k", 1]], "Warn", 0, 0, enc)),
      "maxMessageSize must be an integer >= 1",
    );
    expectBuildError(
      build(src(), new KafkaSinkConfig("t", [["k", 1]], "Warn", 0, 10, dec as never)),
      "the encoder must be made by wallaroo.encoder(fn)",
    );
  });

  it("a StateClass that is not a constructor", () => {
    for (const bad of [() => new WordTotals(), { a: 1 }, undefined, "WordTotals"]) {
      const ab = new ApplicationBuilder("A");
      ab.newPipeline("p", src())
        .toStateful(countWord, bad as never, "totals")
        .toSink(sink());
      expectBuildError(
        ab,
        'pipeline "p", step 1 toStateful("Count Word")',
        'the state class of "totals" must be a class',
      );
    }
  });

  it("a state name that is not a non-empty string", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .toStatePartition(countWord, WordTotals, "" as never, byFirst)
      .toSink(sink());
    expectBuildError(ab, 'pipeline "p", step 1', "the state name must be a non-empty string");
  });

  it("reports the first mistake in declaration order", () => {
    const ab = new ApplicationBuilder("A");
    ab.newPipeline("p", src())
      .to(countWord as never)
      .toSink(src() as never)
      .newPipeline("p", src());
    expectBuildError(ab, 'pipeline "p", step 1 to("Count Word")');
  });
});

describe("ApplicationBuilder: state options (ttl)", () => {
  const ttlApp = (...rest: unknown[]) => {
    const ab = new ApplicationBuilder("ttl");
    (ab.newPipeline("p", src()) as unknown as ApplicationBuilder)
      // biome-ignore lint/suspicious/noExplicitAny: the untyped call a JavaScript user can make
      .toStatePartition(countWord, WordTotals, "word totals", byFirst, ...(rest as [any, any]))
      .toSink(sink());
    return ab;
  };

  it("options in place of the keys or after them; build() twice gives the same spec", () => {
    const inPlace = ttlApp({ ttl: minutes(30) });
    for (let i = 0; i < 2; i++) {
      const st = inPlace.build().states[0];
      expect(st.ttl).toBe(1_800_000);
      expect(st.partition?.keys).toEqual([]);
    }
    const after = ttlApp(["a", "b"], { ttl: seconds(1.5) }).build().states[0];
    expect(after.ttl).toBe(1500);
    expect(after.partition?.keys).toEqual(["a", "b"]);
    expect(ttlApp(["a"], {}).build().states[0].ttl).toBeUndefined();
    expect(ttlApp(undefined, { ttl: hours(1) }).build().states[0].ttl).toBe(3_600_000);
    expect(wordCount().build().states[0].ttl).toBeUndefined();
  });

  it("refuses a bad ttl, an unknown option, two options objects, and options on toStateful, naming the fix", () => {
    for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, "30m"]) {
      expectBuildError(
        ttlApp({ ttl: bad }),
        'partition "word totals": ttl must be a duration in ms of at least 1, such as wallaroo.minutes(30)',
      );
    }
    expectBuildError(ttlApp({ tll: 5 }), 'unknown option "tll"; the options are: ttl');
    expectBuildError(ttlApp({ ttl: 5 }, { ttl: 6 }), "pass one options object");
    expectBuildError(ttlApp(["a"], "fast"), "the options must be an object such as { ttl: wallaroo.minutes(30) }");
    expectBuildError(ttlApp(["a"], { ttl: 5 }, { more: 1 }), "takes at most 6 arguments");
    const one = new ApplicationBuilder("one");
    // biome-ignore lint/suspicious/noExplicitAny: the untyped call a JavaScript user can make
    (one as any).newPipeline("p", src()).toStateful(countWord, WordTotals, "total", { ttl: 5 }).toSink(sink());
    expectBuildError(
      one,
      "toStateful(computation, StateClass, stateName) takes no further argument (got 1)",
      'toStatePartition(..., { ttl }); to end the one instance of "total", return [output, saveState, wallaroo.DELETE]',
    );
  });

  it("a state shared by two pipelines must have one ttl", () => {
    const ab = new ApplicationBuilder("shared");
    ab.newPipeline("p1", src(7000)).toStatePartition(countWord, WordTotals, "w", byFirst, { ttl: 1000 }).toSink(sink());
    ab.newPipeline("p2", src(7001)).toStatePartition(countWord, WordTotals, "w", byFirst).done();
    expectBuildError(ab, 'the state "w" is already declared at', "with ttl 1000 ms, not no ttl");
  });
});

describe("durations", () => {
  it("are numbers of milliseconds; anything but a finite number >= 0 is refused where it is written", () => {
    expect([milliseconds(250), seconds(2), minutes(30), hours(1.5), seconds(0)]).toEqual([
      250, 2000, 1_800_000, 5_400_000, 0,
    ]);
    expect(() => seconds(-1)).toThrow(new WallarooParameterError("seconds(n): n must be a finite number >= 0, got -1"));
    expect(() => minutes(Number.NaN)).toThrow("minutes(n): n must be a finite number >= 0, got NaN");
    // biome-ignore lint/suspicious/noExplicitAny: the untyped call a JavaScript user can make
    expect(() => hours("1" as any)).toThrow('hours(n): n must be a finite number >= 0, got "1"');
    expect(() => milliseconds(Number.POSITIVE_INFINITY)).toThrow(WallarooParameterError);
  });
});
