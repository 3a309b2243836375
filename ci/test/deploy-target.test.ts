// What deployHeroku accepts as a target before anything is built (ci/src/deploy.ts validateHerokuTarget).
import type { Secret } from "@dagger.io/dagger";
import { describe, expect, it } from "vitest";
import { HEROKU_API_URL, HEROKU_REGISTRY, type HerokuTarget, validateHerokuTarget } from "../src/deploy.js";

/** A target that differs from a valid one only in its process type or app; the token is never read by the check. */
const target = (processType: string, app = "pt-dummy-app"): HerokuTarget => ({
  app,
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

describe("validateHerokuTarget's app names", () => {
  // Heroku's rule: a lower-case letter first, then letters, digits and dashes, ending in a letter or digit, 3 to 30.
  it.each(["pt-dummy-app", "abc", "a1b", "my--app2", `a${"b".repeat(29)}`])("accepts %j", (app) => {
    expect(() => validateHerokuTarget(target("web", app))).not.toThrow();
  });

  // A name valid only in part (a bad first or last character, too long at either end) is still refused.
  it.each(["1myapp", "-myapp", "Myapp", "my_app", "myapp!", "myapp-", "myapp/web", "ab", "", `a${"b".repeat(30)}`])(
    "refuses %j, naming the rule",
    (app) => {
      expect(() => validateHerokuTarget(target("web", app))).toThrow(`"${app}" is not a Heroku app name (`);
    },
  );
});
