import { defineConfig } from "vitest/config";

// The reliability suite (npm run test:reliability): real service processes under load, slow and hostile clients.
// Its files end in .reliability.ts so the root config (*.test.ts) never runs them; they run one at a time, since
// each loads the 2-core machine by itself.
export default defineConfig({
  test: {
    root: new URL("../../..", import.meta.url).pathname,
    include: ["service/test/reliability/**/*.reliability.ts"],
    fileParallelism: false,
    testTimeout: 150_000,
    hookTimeout: 60_000,
    // The soak reads the service's heap over the DevTools Protocol, a WebSocket: Node 20 has the global behind a flag.
    execArgv: typeof WebSocket === "undefined" ? ["--experimental-websocket"] : [],
  },
});
