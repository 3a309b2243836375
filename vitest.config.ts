import { defineConfig } from "vitest/config";

// Unit, HTTP and transcript tests. The reliability suite and the real-engine suite have their own commands.
export default defineConfig({
  test: {
    include: ["service/src/**/*.test.ts", "service/test/**/*.test.ts", "ci/test/**/*.test.ts"],
    globalSetup: ["ci/test/runtime/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
