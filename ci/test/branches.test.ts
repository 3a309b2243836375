// The branch rules' version naming (ci/src/branches.ts).
import { describe, expect, it } from "vitest";
import { ciVersion } from "../src/branches.js";
import { imageTags } from "../src/tags.js";

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
