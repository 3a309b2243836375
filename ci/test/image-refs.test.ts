// The Node version an image reference names, for the labels (ci/src/image-refs.ts).
import { describe, expect, it } from "vitest";
import {
  BUILDER_IMAGE,
  nodeVersionOf,
  POETRY_IMAGE,
  PROMTOOL_IMAGE,
  REGISTRY_IMAGE,
  RUNTIME_IMAGE,
} from "../src/image-refs.js";

describe("nodeVersionOf", () => {
  it("reads the Node version an image reference names", () => {
    expect(nodeVersionOf("gcr.io/distroless/nodejs24-debian12:nonroot@sha256:00")).toBe("24");
    expect(nodeVersionOf("node:24.13.1-alpine@sha256:00")).toBe("24.13.1");
    expect(nodeVersionOf("docker.io/library/node:22")).toBe("22");
    expect(nodeVersionOf("cgr.dev/chainguard/node:latest")).toBe("unknown");
  });
});

describe("the module's images", () => {
  it("pins every image but the poems by digest, so a cached step's inputs cannot move with a tag", () => {
    for (const image of [BUILDER_IMAGE, RUNTIME_IMAGE, PROMTOOL_IMAGE, REGISTRY_IMAGE])
      expect(image).toMatch(/^[^@]+:[^@/]+@sha256:[a-f0-9]{64}$/);
    // New poems are welcome: the data image follows its tag, looked up once per session.
    expect(POETRY_IMAGE).not.toContain("@");
  });
});
