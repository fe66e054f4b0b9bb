/**
 * Sliding average per sensor: readings "SENSOR TS TENTHS" (event time TS in ms, the
 * temperature in tenths of a degree) into windows of 10 s every 5 s per sensor, with 2 s
 * for readings to arrive out of order; each window's average goes out as
 * "SENSOR START END AVERAGE COUNT\n" (AVERAGE in degrees, two decimals).
 */
import * as wallaroo from "wallaroo";

export class Reading {
  constructor(
    readonly sensor: string,
    readonly ts: number,
    readonly tenths: number,
  ) {}
}

export function applicationSetup(args: string[]) {
  const [inHost, inPort] = wallaroo.tcpParseInputAddrs(args)[0];
  const [outHost, outPort] = wallaroo.tcpParseOutputAddrs(args)[0];
  const ab = new wallaroo.ApplicationBuilder("Sensor Windows");
  ab.newPipeline("readings", new wallaroo.TCPSourceConfig(inHost, inPort, decoder, { eventTime: (r: Reading) => r.ts }))
    .toWindows(
      wallaroo
        .rangeWindows(wallaroo.seconds(10))
        .withSlide(wallaroo.seconds(5))
        .withDelay(wallaroo.seconds(2))
        .over(average),
      bySensor,
    )
    .toSink(new wallaroo.TCPSinkConfig(outHost, outPort, encoder));
  return ab.build();
}

export const decoder = wallaroo.decoder({ headerLength: 4, lengthFmt: ">I" }, (b: Buffer) => {
  const [sensor, ts, tenths] = b.toString("utf8").split(" ");
  return new Reading(sensor!, Number(ts), Number(tenths));
});

export const bySensor = wallaroo.partition((r: Reading) => r.sensor);

/** Sums of integers (tenths) are exact, so the average does not depend on the order panes combine in. */
export const average = wallaroo.aggregation({
  name: "average temperature",
  initial: () => ({ sum: 0, n: 0 }),
  update: (r: Reading, acc) => {
    acc.sum += r.tenths;
    acc.n += 1;
  },
  combine: (a, b) => ({ sum: a.sum + b.sum, n: a.n + b.n }),
  output: (sensor, w, acc) => `${String(sensor)} ${w.start} ${w.end} ${(acc.sum / acc.n / 10).toFixed(2)} ${acc.n}\n`,
});

export const encoder = wallaroo.encoder((line: string) => line);
