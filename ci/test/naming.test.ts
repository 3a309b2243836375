// The small pure rules behind the module's names: build tags, image tags, the Node version label, registry URLs.
import { describe, expect, it } from "vitest";
import { ciVersion } from "../src/branches.js";
import { registryUrl } from "../src/deploy.js";
import { nodeVersionOf } from "../src/images.js";
import { imageTags, parseBuildTags } from "../src/tags.js";

describe("parseBuildTags", () => {
  it("accepts lists given as separate values, commas or spaces, deduplicated and sorted as the service's build does", () => {
    expect(parseBuildTags([])).toEqual([]);
    expect(parseBuildTags(["heroku", "heroku, heroku"])).toEqual(["heroku"]);
    expect(parseBuildTags([" heroku "])).toEqual(["heroku"]);
  });

  it("names every unknown tag and the known ones", () => {
    expect(() => parseBuildTags(["heroku,aws gcp"])).toThrow('unknown build tag "aws", "gcp"; known tags: heroku');
  });
});

describe("ciVersion", () => {
  it("turns any branch name into a valid tag: odd characters to _, at most 64 of them", () => {
    const commit = "0123456789abcdef";
    expect(ciVersion("2.0.0", "main", commit)).toBe("2.0.0-main.0123456");
    expect(ciVersion("2.0.0", "feat/#12+x@y", commit)).toBe("2.0.0-feat__12_x_y.0123456");
    const long = ciVersion("2.0.0", "b".repeat(300), commit);
    expect(long).toBe(`2.0.0-${"b".repeat(64)}.0123456`);
    expect(imageTags(long, ["heroku"], false)).toEqual([`${long}-heroku`]);
  });
});

describe("imageTags", () => {
  it("follows the Go app's scheme, with the heroku alias", () => {
    expect(imageTags("1.2.0", [])).toEqual(["1.2.0"]);
    expect(imageTags("1.2.0", ["heroku"])).toEqual(["1.2.0-heroku", "heroku"]);
    expect(imageTags("1.2.0", ["heroku"], false)).toEqual(["1.2.0-heroku"]);
    expect(imageTags("v1.2.0-3-gabc/feature,x", [])).toEqual(["v1.2.0-3-gabc_feature_x"]);
  });

  it("enforces Docker's tag rule", () => {
    expect(() => imageTags(".hidden", [])).toThrow('image tag ".hidden" is not a valid Docker tag');
    expect(() => imageTags("a+b", [])).toThrow("not a valid Docker tag");
    expect(() => imageTags("x".repeat(129), [])).toThrow("not a valid Docker tag");
    expect(imageTags("x".repeat(128), [])).toEqual(["x".repeat(128)]);
  });
});

describe("nodeVersionOf", () => {
  it("reads the Node version an image reference names", () => {
    expect(nodeVersionOf("gcr.io/distroless/nodejs24-debian12:nonroot@sha256:00")).toBe("24");
    expect(nodeVersionOf("node:24.13.1-alpine@sha256:00")).toBe("24.13.1");
    expect(nodeVersionOf("docker.io/library/node:22")).toBe("22");
    expect(nodeVersionOf("cgr.dev/chainguard/node:latest")).toBe("unknown");
  });
});

describe("registryUrl", () => {
  it("uses https except for loopback registries, which run plain http", () => {
    expect(registryUrl("registry.heroku.com")).toBe("https://registry.heroku.com");
    expect(registryUrl("127.0.0.1:5000")).toBe("http://127.0.0.1:5000");
    expect(registryUrl("localhost:5000")).toBe("http://localhost:5000");
    expect(registryUrl("localhost.example.com")).toBe("https://localhost.example.com");
  });
});
