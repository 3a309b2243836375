// The Node version an image reference names, for the labels (ci/src/image-refs.ts).
import { describe, expect, it } from "vitest";
import { nodeVersionOf } from "../src/image-refs.js";

describe("nodeVersionOf", () => {
  it("reads the Node version an image reference names", () => {
    expect(nodeVersionOf("gcr.io/distroless/nodejs24-debian12:nonroot@sha256:00")).toBe("24");
    expect(nodeVersionOf("node:24.13.1-alpine@sha256:00")).toBe("24.13.1");
    expect(nodeVersionOf("docker.io/library/node:22")).toBe("22");
    expect(nodeVersionOf("cgr.dev/chainguard/node:latest")).toBe("unknown");
  });
});
