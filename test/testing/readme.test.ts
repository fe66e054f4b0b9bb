/** The README's test-driver example is a file that runs (examples/word_count/app.test.ts): keep them the same. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

it("README's 'Testing your application' example is examples/word_count/app.test.ts, verbatim", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Testing your application"));
  const block = /```ts\n([\s\S]*?)```/.exec(section);
  expect(block).not.toBeNull();
  expect(block![1]).toBe(readFileSync(new URL("../../examples/word_count/app.test.ts", import.meta.url), "utf8"));
});
