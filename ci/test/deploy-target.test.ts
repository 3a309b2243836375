// What deployHeroku accepts as a target before anything is built (ci/src/deploy.ts validateHerokuTarget).
import type { Secret } from "@dagger.io/dagger";
import { describe, expect, it } from "vitest";
import { HEROKU_API_URL, HEROKU_REGISTRY, type HerokuTarget, validateHerokuTarget } from "../src/deploy.js";

/** A target that differs from a valid one only in its process type; the token is never read by the check. */
const target = (processType: string): HerokuTarget => ({
  app: "pt-dummy-app",
  processType,
  apiUrl: HEROKU_API_URL,
  registry: HEROKU_REGISTRY,
  token: {} as Secret,
  rollback: true,
});

describe("validateHerokuTarget's process types", () => {
  // Docker's path-component rule joins with ".", "_", "__" or a run of "-"; a Procfile name has no ".".
  it.each(["web", "worker2", "a_b", "a__b", "a-b", "a---b", "a_b-c__d", "x".repeat(30)])("accepts %j", (type) => {
    expect(() => validateHerokuTarget(target(type))).not.toThrow();
  });

  it.each(["a___b", "a____b", "a_-b", "a-_b", "_a", "a_", "-a", "a.b", "Web", "", "x".repeat(31)])(
    "refuses %j, naming what is allowed",
    (type) => {
      expect(() => validateHerokuTarget(target(type))).toThrow(
        `"${type}" is not a process type registry.heroku.com accepts: lower-case letters and digits, joined by _, __ or -`,
      );
    },
  );
});
