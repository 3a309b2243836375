// Which images are pulled from Docker Hub, and so with its login when one is given (ci/src/pull.ts).
import { describe, expect, it } from "vitest";
import { BUILDER_IMAGE, POETRY_IMAGE, PROMTOOL_IMAGE, REGISTRY_IMAGE, RUNTIME_IMAGE } from "../src/image-refs.js";
import { isDockerHub } from "../src/pull.js";

describe("isDockerHub", () => {
  it.each([
    ["node:24.13.1-alpine@sha256:4f69", true],
    ["philpennock/poetry", true],
    ["prom/prometheus:v2.53.0", true],
    ["docker.io/library/node:24", true],
    ["index.docker.io/philpennock/poetry", true],
    ["registry-1.docker.io/prom/prometheus", true],
    ["gcr.io/distroless/nodejs24-debian12:nonroot", false],
    ["registry.example.com/me/poems:1", false],
    ["localhost:5000/poems", false],
    ["localhost/poems", false],
    ["127.0.0.1:5000/poems", false],
  ])("%s: %s", (address, expected) => {
    expect(isDockerHub(address)).toBe(expected);
  });

  it("covers the pipeline's images: all but the distroless runtime come from Docker Hub", () => {
    expect([BUILDER_IMAGE, POETRY_IMAGE, PROMTOOL_IMAGE, REGISTRY_IMAGE].map(isDockerHub)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(isDockerHub(RUNTIME_IMAGE)).toBe(false);
  });
});
