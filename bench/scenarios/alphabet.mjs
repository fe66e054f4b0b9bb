// alphabet: 5-byte votes, a running total per letter (state partitioned by letter).
import { generate } from "./data.mjs";

export default {
  name: "alphabet",
  description: "examples/alphabet: 5-byte votes, running total per letter in a state partitioned by letter",
  app: "examples/alphabet/app.ts",
  unit: "msgs",
  unitFrom: "out",
  inFromOut: (out) => out, // one output per input
  sources: () => {
    const [file] = generate("alphabet", ["votes-1m.bin"], ["--count", "1000000", "--out", 0]);
    return [{ name: "votes", input: { kind: "records", file, recordSize: 5 } }];
  },
  output: { mode: "framed" },
};
