// What deploy refuses before building, and what it asks the release logic for (ci/src/deploy.ts).
import type { Secret } from "@dagger.io/dagger";
import { describe, expect, it } from "vitest";
import { deployRequest, type HerokuTarget, validateHerokuTarget } from "../src/deploy.js";

describe("validateHerokuTarget: --release-timeout", () => {
  const target = (releaseTimeout?: number): HerokuTarget => ({
    app: "pt-dummy-app",
    processType: "web",
    apiUrl: "https://api.heroku.com",
    registry: "registry.heroku.com",
    token: {} as Secret,
    rollback: true,
    releaseTimeout,
  });

  it("takes whole seconds from 60 to 7200, or the default", () => {
    for (const seconds of [undefined, 60, 3900, 7200])
      expect(() => validateHerokuTarget(target(seconds))).not.toThrow();
  });

  it("refuses anything else with one line naming the value and what is allowed", () => {
    for (const seconds of [59, 7201, 0, -1, 90.5, Number.NaN]) {
      expect(() => validateHerokuTarget(target(seconds))).toThrow(
        new Error(
          `--release-timeout ${seconds} is not whole seconds from 60 to 7200 (Heroku's release phase may run 1 h; default 3900)`,
        ),
      );
    }
  });
});

describe("deployRequest", () => {
  const target: HerokuTarget = {
    app: "pt-dummy-app",
    processType: "web",
    apiUrl: "https://api.heroku.com",
    registry: "registry.heroku.com",
    token: {} as Secret,
    commit: "abc123",
    rollback: false,
  };
  const image = `sha256:${"c".repeat(64)}`;

  it("follows the release for --release-timeout seconds, 3900 by default, and verifies at --verify-url or the web URL", () => {
    expect(deployRequest(target, image, "https://app.herokuapp.com/")).toEqual({
      app: "pt-dummy-app",
      processType: "web",
      imageId: image,
      verifyUrl: "https://app.herokuapp.com/",
      commit: "abc123",
      rollback: false,
      timeoutMs: 3_900_000,
    });
    const custom = deployRequest({ ...target, releaseTimeout: 120, verifyUrl: "https://x.test" }, image, undefined);
    expect(custom).toMatchObject({ timeoutMs: 120_000, verifyUrl: "https://x.test" });
  });
});
