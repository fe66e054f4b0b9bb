// word_count: the example app on generated English-like lines; throughput counted in words
// (output lines "word => count").
import { generate } from "./data.mjs";

export default {
  name: "word_count",
  description:
    "examples/word_count: lines split into words (`toParallel`), counts in a state partitioned by first letter",
  app: "examples/word_count/app.ts",
  unit: "words",
  unitFrom: "out",
  sources: () => {
    const [file] = generate("word_count", ["words-100k.txt"], ["--lines", "100000", "--out", 0]);
    return [{ name: "lines", input: { kind: "lines", file } }];
  },
  output: { mode: "lines" },
};
