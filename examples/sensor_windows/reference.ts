/**
 * The sensor_windows output computed single-threaded, written apart from the app: every
 * reading is in the two 10 s windows (starts multiples of 5 s) that hold its time; one line
 * "SENSOR START END AVERAGE COUNT\n" per window holding a reading, ordered by window end,
 * then sensor. `closedBy` keeps the windows the input itself closes: those ending at or
 * before the largest event time less the 2 s delay (the rest close once the input is idle).
 */
const RANGE = 10_000;
const SLIDE = 5_000;
export const DELAY = 2_000;

interface Win {
  sensor: string;
  start: number;
  sum: number;
  n: number;
}

function windows(input: Buffer[]): Win[] {
  const wins = new Map<string, Win>();
  for (const b of input) {
    const [sensor, tsText, tenthsText] = b.toString("utf8").split(" ");
    const ts = Number(tsText);
    for (let start = Math.floor(ts / SLIDE) * SLIDE; start > ts - RANGE; start -= SLIDE) {
      const id = `${sensor} ${start}`;
      const w = wins.get(id) ?? { sensor: sensor!, start, sum: 0, n: 0 };
      w.sum += Number(tenthsText);
      w.n += 1;
      wins.set(id, w);
    }
  }
  return [...wins.values()].sort(
    (a, b) => a.start - b.start || (a.sensor < b.sensor ? -1 : a.sensor > b.sensor ? 1 : 0),
  );
}

const line = (w: Win) => `${w.sensor} ${w.start} ${w.start + RANGE} ${(w.sum / w.n / 10).toFixed(2)} ${w.n}\n`;

export function expected(input: Buffer[]): string[] {
  return windows(input).map(line);
}

export function closedBy(input: Buffer[]): string[] {
  const max = Math.max(...input.map((b) => Number(b.toString("utf8").split(" ")[1])));
  return windows(input)
    .filter((w) => w.start + RANGE <= max - DELAY)
    .map(line);
}
