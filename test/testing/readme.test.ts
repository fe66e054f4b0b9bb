/** The docs' test-driver example (docs/getting-started.md) is a file that runs (examples/word_count/app.test.ts): keep them the same. */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";

it("docs/getting-started.md's 'Testing your application' example is examples/word_count/app.test.ts, verbatim", () => {
  const page = readFileSync(new URL("../../docs/getting-started.md", import.meta.url), "utf8");
  const section = page.slice(page.indexOf("## Testing your application"));
  const block = /```ts[^\n]*\n([\s\S]*?)```/.exec(section);
  expect(block).not.toBeNull();
  expect(block![1]).toBe(readFileSync(new URL("../../examples/word_count/app.test.ts", import.meta.url), "utf8"));
});
