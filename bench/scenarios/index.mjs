import passthrough from "./passthrough.mjs";
import word_count from "./word_count.mjs";
import alphabet from "./alphabet.mjs";
import market_spread from "./market_spread.mjs";
import windowed_count from "./windowed_count.mjs";

export const SCENARIOS = { passthrough, word_count, alphabet, market_spread, windowed_count };

/** The systems under test of a scenario: the engine at 1 and 2 workers (and 2 with metrics on) and the two baselines. */
export function systems(scenario) {
  const n = scenario.name;
  return [
    {
      id: "engine-w1",
      kind: "engine",
      workers: 1,
      cmd: ["bin/wallaroo.js", "run", scenario.app],
      extra: ["--workers", "1", "--stats-interval", "0"],
    },
    {
      id: "engine-w2",
      kind: "engine",
      workers: 2,
      cmd: ["bin/wallaroo.js", "run", scenario.app],
      extra: ["--workers", "2", "--stats-interval", "0"],
    },
    // The same with the metrics server on (its cost: counters in shared memory, 1 message in 256 timed);
    // word_count and passthrough only, where the per-message overhead would show most.
    ...(n === "word_count" || n === "passthrough"
      ? [
          {
            id: "engine-w2-metrics",
            kind: "engine",
            workers: 2,
            cmd: ["bin/wallaroo.js", "run", scenario.app],
            extra: ["--workers", "2", "--stats-interval", "0", "--metrics-port", "0"],
          },
        ]
      : []),
    { id: "hand-written", kind: "baseline", workers: 1, cmd: [`bench/baselines/handwritten-${n}.mjs`], extra: [] },
    // (windowed_count has no piscina baseline: its goal is against the hand-written loop)
    ...(scenario.piscina === false
      ? []
      : [
          {
            id: "piscina",
            kind: "baseline",
            workers: 2,
            cmd: [`bench/baselines/piscina-${n}.mjs`],
            extra: ["--threads", "2"],
          },
        ]),
  ];
}
