// windowed_count: the alphabet votes counted per letter in tumbling 1 s windows (ingest time),
// against a hand-written loop doing the same windowing over the same sockets. Counted in input
// events (what the senders wrote in the window: an output line stands for a whole window).
import { generate } from "./data.mjs";

export default {
  name: "windowed_count",
  description:
    "bench/apps/windowed_count.ts: 5-byte votes counted per letter in tumbling 1 s windows of ingest time (`toWindows`)",
  app: "bench/apps/windowed_count.ts",
  unit: "events",
  unitFrom: "in",
  piscina: false,
  sources: () => {
    const [file] = generate("alphabet", ["votes-1m.bin"], ["--count", "1000000", "--out", 0]);
    return [{ name: "votes", input: { kind: "records", file, recordSize: 5 } }];
  },
  output: { mode: "lines" },
};
