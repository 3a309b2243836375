// Where the module reaches a registry's HTTP API (ci/src/clients/oci-registry.ts).
import { describe, expect, it } from "vitest";
import { registryBaseUrl } from "../../src/clients/oci-registry.js";

describe("registryBaseUrl", () => {
  it("uses https except for loopback registries, which run plain http, and Docker Hub's API host for Docker Hub", () => {
    expect(registryBaseUrl("registry.heroku.com")).toBe("https://registry.heroku.com");
    expect(registryBaseUrl("127.0.0.1:5000")).toBe("http://127.0.0.1:5000");
    expect(registryBaseUrl("localhost:5000")).toBe("http://localhost:5000");
    expect(registryBaseUrl("[::1]:5000")).toBe("http://[::1]:5000");
    expect(registryBaseUrl("localhost.example.com")).toBe("https://localhost.example.com");
    expect(registryBaseUrl("127.0.0.1.example.com")).toBe("https://127.0.0.1.example.com");
    for (const hub of ["docker.io", "index.docker.io", "registry-1.docker.io"])
      expect(registryBaseUrl(hub)).toBe("https://registry-1.docker.io");
    expect(registryBaseUrl("http://127.0.0.1:5000/")).toBe("http://127.0.0.1:5000");
  });
});
