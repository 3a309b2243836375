// Build tags and the image tags they lead to (ci/src/tags.ts).
import { describe, expect, it } from "vitest";
import { imageTags, parseBuildTags } from "../src/tags.js";

describe("parseBuildTags", () => {
  it("accepts lists given as separate values, commas or spaces, deduplicated and sorted as the service's build does", () => {
    expect(parseBuildTags([])).toEqual([]);
    expect(parseBuildTags(["heroku", "heroku, heroku"])).toEqual(["heroku"]);
    expect(parseBuildTags([" heroku "])).toEqual(["heroku"]);
  });

  it("names every unknown tag and the known ones", () => {
    expect(() => parseBuildTags(["heroku,aws gcp"])).toThrow('unknown build tag "aws", "gcp"; known tags: heroku');
    // Sorted and deduplicated as the accepted tags are, whatever order and separators they came in.
    expect(() => parseBuildTags(["zeta,,alpha", "  zeta\talpha,"])).toThrow(
      new Error('unknown build tag "alpha", "zeta"; known tags: heroku'),
    );
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
