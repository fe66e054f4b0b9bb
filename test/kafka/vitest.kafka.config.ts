// Runs only the Kafka tests: npx vitest run --config test/kafka/vitest.kafka.config.ts
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    root: fileURLToPath(new URL("../..", import.meta.url)),
    include: ["test/kafka/**/*.test.ts"],
    globalSetup: ["test/kafka/globalSetup.ts"],
    setupFiles: ["test/helpers/quiet-logs.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
