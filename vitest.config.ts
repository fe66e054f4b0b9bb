import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // test/docs/docs.test.ts writes the docs' code blocks (tests among them) there and runs them itself.
    exclude: [...configDefaults.exclude, "test/docs/tmp-*/**"],
    // The built package runs as Node runs it (as a dependency in node_modules would, which vitest
    // does not transform): wallaroo/testing then loads applications with Node's own loader and the
    // resolve hook that makes "wallaroo" importable from an application file wherever it lives.
    server: { deps: { external: [/\/dist\//] } },
    // A real Kafka broker on 127.0.0.1:19092 for test/kafka (skipped without java/mvn, see the file).
    globalSetup: ["test/kafka/globalSetup.ts"],
    // Engines run in-process log to a file per test, shown when the test fails (see the file).
    setupFiles: ["test/helpers/quiet-logs.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Engine tests start several threads each; two test files at a time suit a 2-core machine.
    maxWorkers: 2,
    pool: "forks",
  },
});
