import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The tests StrykerJS runs against each mutant: those that exercise the mutated files (see stryker.config.mjs).
export default defineConfig({
  test: {
    root: fileURLToPath(new URL("../..", import.meta.url)),
    include: [
      "service/src/{poetry-path,poetry-root,poetry-store,poetry-routes,credentials,config,app}*.test.ts",
      "ci/test/{branches,tags,deploy,heroku-release,circleci-config,preflight,pull,verifiable,signature,stamp,transcript-build,transcript-release}*.test.ts",
      "ci/test/clients/{registry-client,oci-registry,heroku-api,service-version}*.test.ts",
    ],
    globalSetup: ["ci/test/runtime/global-setup.ts"],
    testTimeout: 20_000,
    hookTimeout: 30_000,
  },
});
