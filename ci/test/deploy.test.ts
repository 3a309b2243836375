// Where deploy reaches a registry's HTTP API (ci/src/deploy.ts).
import { describe, expect, it } from "vitest";
import { registryUrl } from "../src/deploy.js";

describe("registryUrl", () => {
  it("uses https except for loopback registries, which run plain http", () => {
    expect(registryUrl("registry.heroku.com")).toBe("https://registry.heroku.com");
    expect(registryUrl("127.0.0.1:5000")).toBe("http://127.0.0.1:5000");
    expect(registryUrl("localhost:5000")).toBe("http://localhost:5000");
    expect(registryUrl("localhost.example.com")).toBe("https://localhost.example.com");
  });
});
