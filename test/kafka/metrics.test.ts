/**
 * Metrics of a Kafka source against a real broker: messages counted exactly, and the
 * consumer lag of every partition reported and back to 0 once everything is consumed.
 */
import { describe, expect, inject, it } from "vitest";
import {
  APP,
  appArgs,
  collect,
  freshTopics,
  makeInput,
  produce,
  sleep,
  uniqueName,
  dropTestKafkaState,
} from "./helpers.js";

process.env.WALLAROO_LOG_LEVEL ??= "warn";
const { runApplication } = await import("../../dist/index.js");

const brokers = inject("kafkaBrokers") ?? "";
const skipReason = inject("kafkaSkipReason") ?? "test/kafka/globalSetup.ts is not a vitest globalSetup";

describe("Kafka metrics", () => {
  it("counts every record and reports each partition's lag, 0 once consumed", async (ctx) => {
    if (!brokers) ctx.skip(`Kafka tests skipped: ${skipReason}`);
    const { kafka, admin, inTopic, outTopic } = await freshTopics(brokers, 3);
    const group = uniqueName("group");
    const input = makeInput(6000, 30);
    await produce(kafka, inTopic, input); // before the engine starts: it begins with a lag
    const app = await runApplication({
      module: APP,
      workers: 2,
      statsInterval: 0,
      kafkaGroup: group,
      metricsPort: 0,
      args: appArgs(brokers, inTopic, outTopic),
    });
    const output = await collect(kafka, outTopic);
    try {
      await output.waitFor(input.length, 60_000);
      // Each partition's lag is written by the source thread after it handed a batch on, which may come after
      // the batch's outputs reached the collector (a thread held off the CPU under load): scrape until every
      // lag is 0, or 30 s passed (then the assertions below say what is wrong).
      const scrape = async () => (await fetch(`http://127.0.0.1:${app.metricsPort}/metrics`)).text();
      const lagsDone = (t: string) =>
        t.split("\n").filter((l) => l.startsWith("wallaroo_kafka_consumer_lag{") && l.endsWith(" 0")).length === 3;
      let text = await scrape();
      for (const deadline = Date.now() + 30_000; !lagsDone(text) && Date.now() < deadline; ) {
        await sleep(100);
        text = await scrape();
      }
      const value = (prefix: string) =>
        text
          .split("\n")
          .filter((l) => l.startsWith(prefix))
          .map((l) => Number(l.slice(l.lastIndexOf(" ") + 1)));
      expect(value("wallaroo_source_messages_total{")).toEqual([input.length]);
      expect(value("wallaroo_sink_messages_total{")).toEqual([input.length]);
      const lags = text.split("\n").filter((l) => l.startsWith("wallaroo_kafka_consumer_lag{"));
      expect(lags.length, text).toBe(3);
      for (let p = 0; p < 3; p++) {
        expect(
          lags.some((l) => l.includes(`topic="${inTopic}"`) && l.includes(`partition="${p}"`) && l.endsWith(" 0")),
          lags.join("\n"),
        ).toBe(true);
      }
      // The dashboard's backlog for this source is its lag summed over the partitions, in records,
      // and its history (embedded in the page, one point a second) holds the measured values.
      const base = `http://127.0.0.1:${app.metricsPort}/`;
      const snap = (await (await fetch(`${base}api/snapshot`)).json()) as { backlog: unknown };
      expect(snap.backlog).toEqual([{ value: 0, unit: "records", partitions: 3 }]);
      type Initial = { backlog: { at: number; values: (number | null)[] }[] };
      const embedded = async () => {
        const html = await (await fetch(base)).text();
        const json = /<script id="initial-state" type="application\/json">(.*?)<\/script>/s.exec(html)![1]!;
        return JSON.parse(json) as Initial;
      };
      let initial = await embedded();
      for (const deadline = Date.now() + 10_000; initial.backlog.at(-1)?.values[0] !== 0 && Date.now() < deadline; ) {
        await sleep(200);
        initial = await embedded();
      }
      expect(initial.backlog.at(-1)?.values, JSON.stringify(initial.backlog)).toEqual([0]);
    } finally {
      await app.stop();
      await output.stop();
      await dropTestKafkaState(admin, group, [inTopic, outTopic]);
    }
  }, 120_000);
});
