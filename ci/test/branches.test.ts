// The branch rules (ci/src/branches.ts): which branches publish and deploy, and the version naming.
import { describe, expect, it } from "vitest";
import { branchPlan, ciVersion } from "../src/branches.js";
import { imageTags } from "../src/tags.js";

describe("branchPlan", () => {
  it("deploys to production only from a branch named exactly main or master", () => {
    expect(branchPlan("main")).toEqual({ publish: true, deploy: true });
    expect(branchPlan("master")).toEqual({ publish: true, deploy: true });
    // Names that start, end or contain main/master are other branches: a prefix or substring rule would deploy them.
    for (const branch of ["main-experiment", "master2", "mainline", "feature/main", "old-master", "Main", " main"]) {
      expect(branchPlan(branch), branch).toEqual({ publish: true, deploy: false });
    }
  });

  it("publishes every branch except those whose name contains nohub, whatever else they are", () => {
    expect(branchPlan("feat-nohub-x")).toEqual({ publish: false, deploy: false });
    expect(branchPlan("nohub")).toEqual({ publish: false, deploy: false });
    expect(branchPlan("feature/no-hub")).toEqual({ publish: true, deploy: false });
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

  it("leaves the commit out when there is none", () => {
    expect(ciVersion("2.0.0", "main")).toBe("2.0.0-main");
    expect(ciVersion("2.0.0", "main", "")).toBe("2.0.0-main");
  });
});
