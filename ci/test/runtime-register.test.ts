// Register: what `dagger functions` and `dagger call <function> --help` show, as the runtime registers it — its
// introspector over the laid-out module, sending typedefs to the engine double (runtime/registration.ts). Defaults of
// lists are not registered by the 0.21 SDK (register.ts keeps primitive defaults only), so their doc line says them.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { SOURCE_IGNORE } from "../src/containers.js";
import { BUILDER_IMAGE, POETRY_IMAGE, RUNTIME_IMAGE } from "../src/image-refs.js";
import { layOutModule } from "./runtime/module-layout.js";
import { type RegisteredArg, type RegisteredObject, register } from "./runtime/registration.js";

let main: RegisteredObject;

beforeAll(async () => {
  const objects = await register(layOutModule({ entrypoint: false }), inject("runtimeNode"));
  expect(objects.map((o) => o.name)).toEqual(["Dummyapp"]);
  main = objects[0]!;
}, 300_000);

/**
 * Arguments as `name: Type = default` (registered default), `from <path>` for a contextual one (the engine fills it
 * from the module's context), `?` when optional without either, `!` when required.
 */
const signature = (args: RegisteredArg[]) =>
  args.map(
    (a) =>
      `${a.name}: ${a.type}${
        a.default !== undefined
          ? ` = ${a.default}`
          : a.defaultPath !== undefined
            ? ` from ${a.defaultPath}`
            : a.optional
              ? "?"
              : "!"
      }`,
  );

/** The checkout, as the functions that stamp a build take it: first, from the context's git repository. */
const GIT = "git: GitRepository from /";

describe("the module as the Dagger runtime registers it", () => {
  it("is the Dummyapp object, described", () => {
    expect(main.description).toMatch(/^dummyapp's pipeline, as Dagger functions/);
  });

  it("is constructed from the repository (from the context, without .git), overridable images and Docker Hub pull credentials, and not from the checkout", () => {
    const [source, ...rest] = main.constructorArgs;
    const images = rest.slice(0, 3);
    expect(signature(rest.slice(3))).toEqual(["dockerhubUsername: Secret?", "dockerhubPassword: Secret?"]);
    expect(source).toMatchObject({ name: "source", type: "Directory", defaultPath: "/", ignore: SOURCE_IGNORE });
    expect(SOURCE_IGNORE).toEqual(
      expect.arrayContaining([
        ".git",
        "**/node_modules",
        "**/dist",
        "ci/sdk",
        "**/*.tar",
        "**/bench/results*.json",
        "**/*.cpuprofile",
      ]),
    );
    // The constructor's arguments are inputs of every call: a checkout there would put .git in every cache key.
    expect(main.constructorArgs.map((a) => a.type)).not.toContain("GitRepository");
    expect(signature(images)).toEqual([
      `builderImage: String = ${JSON.stringify(BUILDER_IMAGE)}`,
      `runtimeImage: String = ${JSON.stringify(RUNTIME_IMAGE)}`,
      `poetryImage: String = ${JSON.stringify(POETRY_IMAGE)}`,
    ]);
    for (const arg of main.constructorArgs) expect(arg.description, arg.name).not.toBe("");
  });

  it("has the pipeline's functions with their arguments, registered defaults, return types, checks and cache policies", () => {
    const listed = main.functions.map((fn) => ({
      name: fn.name,
      returns: fn.returns,
      args: signature(fn.args),
      cache: fn.cache,
      check: fn.check,
    }));
    const engineDefault = { policy: "Default" };
    const session = { policy: "PerSession" };
    const never = { policy: "Never" };
    expect(listed).toEqual([
      {
        name: "build",
        returns: "Container",
        args: [GIT, "tags: [String]?", "version: String?", "platform: Platform?", "commit: String?"],
        cache: session,
        check: false,
      },
      {
        name: "sbom",
        returns: "File",
        args: [GIT, "tags: [String]?", "version: String?", "platform: Platform?", "commit: String?"],
        cache: session,
        check: false,
      },
      { name: "poetry", returns: "Directory", args: ["image: String?"], cache: session, check: false },
      { name: "test", returns: "String", args: [], cache: engineDefault, check: true },
      { name: "serve", returns: "Service", args: [GIT, "tags: [String]?"], cache: session, check: false },
      { name: "smoke", returns: "String", args: [GIT, "tags: [String]?"], cache: session, check: true },
      {
        name: "publish",
        returns: "[String]",
        args: [
          GIT,
          "tag: [String]?",
          'repository: String = "pennocktech/dummyapp"',
          'registry: String = "docker.io"',
          "username: Secret?",
          "password: Secret?",
          "version: String?",
          "platforms: [String]?",
          "signingKey: Secret?",
          "ciRunUrl: String?",
        ],
        cache: never,
        check: false,
      },
      { name: "rehearsePublish", returns: "String", args: [GIT], cache: session, check: true },
      {
        name: "deployHeroku",
        returns: "String",
        args: [
          GIT,
          'app: String = "pt-dummy-app"',
          "token: Secret!",
          'processType: String = "web"',
          'apiUrl: String = "https://api.heroku.com"',
          'registry: String = "registry.heroku.com"',
          "verifyUrl: String?",
          "version: String?",
          "commit: String?",
          "rollback: Boolean = true",
          "releaseTimeout: Int = 3900",
        ],
        cache: never,
        check: false,
      },
      {
        name: "ci",
        returns: "String",
        args: [
          GIT,
          "branch: String!",
          "commit: String?",
          "dockerhubUsername: Secret?",
          "dockerhubPassword: Secret?",
          "herokuToken: Secret?",
          'herokuApp: String = "pt-dummy-app"',
          "signingKey: Secret?",
          "ciRunUrl: String?",
          "forkPullRequest: Boolean = false",
        ],
        cache: never,
        check: false,
      },
    ]);
  });

  it("gives the checkout only to the functions that stamp a build, so test's and poetry's cache keys ignore .git", () => {
    const takers = main.functions.filter((fn) => fn.args.some((a) => a.type === "GitRepository"));
    expect(takers.map((fn) => fn.name)).toEqual([
      "build",
      "sbom",
      "serve",
      "smoke",
      "publish",
      "rehearsePublish",
      "deployHeroku",
      "ci",
    ]);
    for (const fn of takers) expect(signature(fn.args.slice(0, 1)), fn.name).toEqual([GIT]);
  });

  it("says in the doc line what a list argument defaults to, since the engine is not told", () => {
    const arg = (fn: string, name: string) =>
      main.functions.find((f) => f.name === fn)!.args.find((a) => a.name === name)!;
    for (const [fn, name] of [
      ["build", "tags"],
      ["serve", "tags"],
      ["smoke", "tags"],
      ["sbom", "tags"],
      ["publish", "tag"],
    ]) {
      expect(arg(fn!, name!).description, `${fn} ${name}`).toMatch(/default: none$/);
    }
    expect(arg("publish", "platforms").description).toMatch(/default: linux\/amd64, linux\/arm64$/);
  });

  it("documents every function with a summary and a `dagger call` example, and every argument", () => {
    for (const fn of main.functions) {
      const kebab = fn.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
      expect(fn.description, fn.name).toMatch(/^\S.+\n/);
      expect(fn.description, fn.name).toContain(`Example: \`dagger call ${kebab}`);
      for (const arg of fn.args) expect(arg.description, `${fn.name} ${arg.name}`).not.toBe("");
    }
  });

  it("says in each function's doc how it is cached", () => {
    for (const fn of main.functions) {
      const said = {
        PerSession: /Cached\s+per\s+session/,
        Never: /Never\s+cached/,
        Default: /Cached\s+\(the\s+engine's\s+default/,
      }[fn.cache!.policy];
      expect(fn.description, fn.name).toMatch(said!);
    }
  });

  it("runs test, smoke and the publish rehearsal, and only those, under `dagger check`, which calls them with no arguments", () => {
    const checks = main.functions.filter((fn) => fn.check);
    expect(checks.map((fn) => fn.name)).toEqual(["test", "smoke", "rehearsePublish"]);
    for (const fn of checks)
      expect(
        // The engine makes a contextual argument optional (core/schema/module.go functionWithArg) and fills it itself.
        fn.args.every((a) => a.optional || a.default !== undefined || a.defaultPath !== undefined),
        fn.name,
      ).toBe(true);
  });
});
