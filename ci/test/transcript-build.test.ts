// Transcript tests for build, poetry, test, serve and smoke: the module runs in-process under the real SDK against the
// engine double, and the tests read the GraphQL it sent, i.e. what a real engine would have been asked to build.
import { readdirSync, readFileSync } from "node:fs";
import { join, matchesGlob } from "node:path";
import type { Platform } from "@dagger.io/dagger";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BUNDLE_INPUTS, MANIFESTS, WORKSPACES } from "../src/containers.js";
import { BUILDER_IMAGE, POETRY_IMAGE, PROMTOOL_IMAGE, REGISTRY_IMAGE, RUNTIME_IMAGE } from "../src/image-refs.js";
import { PROBE_MAIN } from "../src/probe.js";
import { READBACK_MAIN, type Readback } from "../src/rehearsal.js";
import { SBOM_INPUTS, SBOM_INPUTS_SCRIPT, SBOM_MAIN, SBOM_SCRIPT } from "../src/sbom.js";
import { type Call, type EngineDouble, EngineError } from "./engine-double.js";
import {
  builderChainOf,
  COMMIT_TIME,
  callsOf,
  chainFromId,
  chainOf,
  checkout,
  defaultModule,
  ENGINE_PLATFORM,
  execIndex,
  GIT_ID,
  HEAD,
  isSource,
  MANIFEST,
  NODE_VERSION,
  POEMS,
  rehearsalRegistry,
  resolvedRef,
  SOURCE_ID,
  startEngine,
} from "./transcript.js";

let engine: EngineDouble;
beforeEach(async () => {
  engine = await startEngine();
});
afterEach(() => engine.close());

/** `build`'s arguments after the checkout. */
type BuildArgs = Parameters<ReturnType<typeof defaultModule>["build"]> extends [unknown, ...infer Rest] ? Rest : never;

/** The runtime image's chain for `build(checkout(), ...args)`. */
function buildChain(...args: BuildArgs): Promise<Call[]> {
  return engine.run(async () => chainOf(await defaultModule().build(checkout(), ...args)));
}

/** The environment a chain sets before step `index`, as a map. */
function envBefore(chain: Call[], index: number): Record<string, string> {
  const env = callsOf(chain.slice(0, index), "withEnvVariable").map((c) => [c.args.name, c.args.value] as const);
  return Object.fromEntries(env) as Record<string, string>;
}

const FILESYSTEM_INPUTS = new Set([
  "withDirectory",
  "withFile",
  "withFiles",
  "withMountedDirectory",
  "withMountedFile",
]);

/** The repository's files (relative paths), without what the module never uploads. */
function repositoryFiles(): string[] {
  const root = join(__dirname, "../..");
  return (readdirSync(root, { recursive: true }) as string[]).filter(
    (f) => !/(^|\/)(node_modules|dist|\.git|coverage)(\/|$)/.test(f),
  );
}

describe("build", () => {
  it("assembles only the runtime for the asked platform, on the pinned runtime image; the builder runs natively", async () => {
    const runtime = await buildChain([], undefined, "linux/arm64" as Platform);
    expect(runtime.slice(0, 2)).toEqual([
      { field: "container", args: { platform: "linux/arm64" } },
      { field: "from", args: { address: RUNTIME_IMAGE } },
    ]);
    expect(builderChainOf(runtime).slice(0, 2)).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: BUILDER_IMAGE } },
    ]);
  });

  it("installs with npm ci from a filtered view of the manifests and lockfile, with npm's cache in a cache volume", async () => {
    const builder = builderChainOf(await buildChain());
    const install = execIndex(builder, "npm", "ci");
    expect(install).toBeGreaterThan(0);

    const inputs = builder.slice(0, install).filter((call) => FILESYSTEM_INPUTS.has(call.field));
    expect(inputs).toEqual([{ field: "withDirectory", args: { path: "/src", source: expect.any(String) } }]);
    // A filter, not withDirectory's include: the engine keys a filter by the content it keeps, so only a manifest or
    // lockfile change re-runs the install.
    const view = chainFromId(inputs[0]!.args.source);
    expect(view[0]).toEqual({ field: "loadDirectoryFromID", args: { id: SOURCE_ID } });
    expect(view.slice(1).map((c) => c.field)).toEqual(["filter"]);
    expect([...(view[1]!.args.include as string[])].sort()).toEqual([
      "ci/package.json",
      "package-lock.json",
      "package.json",
      "service/package.json",
    ]);

    const cache = callsOf(builder.slice(0, install), "withMountedCache");
    expect(cache.map((c) => c.args.path)).toEqual(["/root/.npm"]);
    expect(chainFromId(cache[0]!.args.cache)).toEqual([{ field: "cacheVolume", args: { key: "dummyapp-npm" } }]);
  });

  it("bundles from a filtered view of what the build reads: never the README, ci/, CI config, benches or tests", async () => {
    const builder = builderChainOf(await buildChain());
    const build = execIndex(builder, "npm", "run", "build", "-w", "service");
    const inputs = builder
      .slice(execIndex(builder, "npm", "ci") + 1, build)
      .filter((call) => FILESYSTEM_INPUTS.has(call.field));
    expect(inputs).toHaveLength(1);
    const view = chainFromId(inputs[0]!.args.source);
    expect(view).toEqual([
      { field: "loadDirectoryFromID", args: { id: SOURCE_ID } },
      { field: "filter", args: BUNDLE_INPUTS },
    ]);

    // Which of the repository's files the view keeps (globs as the engine reads them, for these simple patterns).
    const kept = repositoryFiles().filter(
      (f) =>
        BUNDLE_INPUTS.include.some((g) => matchesGlob(f, g)) && !BUNDLE_INPUTS.exclude.some((g) => matchesGlob(f, g)),
    );
    expect(kept).toEqual(
      expect.arrayContaining(["package.json", "service/build.mjs", "service/src/main.ts", "service/src/app.ts"]),
    );
    expect(kept.filter((f) => /^(README|ci\/|\.circleci\/|service\/(test|bench)\/)|\.test\.ts$/.test(f))).toEqual([]);
  });

  it("lists every workspace manifest the root package.json declares", () => {
    const root = JSON.parse(readFileSync(join(__dirname, "../../package.json"), "utf8")) as { workspaces: string[] };
    expect(WORKSPACES).toEqual(root.workspaces);
    expect(MANIFESTS).toEqual([
      "package.json",
      "package-lock.json",
      ...root.workspaces.map((w) => `${w}/package.json`),
    ]);
  });

  it("stamps the bundle with the build tags, version, commit and the commit's time, and sets every file to that time", async () => {
    const builder = builderChainOf(
      await buildChain(["heroku"], "1.2.3", undefined, "0123abcdef0123abcdef0123abcdef0123abcdef"),
    );
    const build = execIndex(builder, "npm", "run", "build", "-w", "service");
    expect(build).toBeGreaterThan(execIndex(builder, "npm", "ci"));
    const env = envBefore(builder, build);
    expect(env).toMatchObject({
      BUILD_TAGS: "heroku",
      VERSION: "1.2.3",
      GIT_COMMIT: "0123abcdef0123abcdef0123abcdef0123abcdef",
      SOURCE_DATE_EPOCH: String(COMMIT_TIME),
      DEFAULT_POETRY_DIR: "/poetry",
    });
    expect(env).not.toHaveProperty("BUILD_TIME");
    expect(builder.slice(build + 1)).toEqual([
      { field: "directory", args: { path: "/src/service/dist" } },
      { field: "withTimestamps", args: { timestamp: COMMIT_TIME } },
      { field: "file", args: { path: "main.js" } },
    ]);
    // The time is that of the commit asked for, read by git from that commit's own tree.
    const log = engine.queries.find((q) =>
      callsOf(q.chain, "withExec").some((c) => (c.args.args as string[]).includes("--format=%ct")),
    )!;
    const tree = chainFromId(callsOf(log.chain, "withMountedDirectory")[0]!.args.source);
    expect(tree).toEqual([
      { field: "loadGitRepositoryFromID", args: { id: GIT_ID } },
      { field: "commit", args: { id: "0123abcdef0123abcdef0123abcdef0123abcdef" } },
      { field: "tree", args: {} },
    ]);
  });

  it("defaults the version to service/package.json's and the commit to the checkout's HEAD, -dirty when the tree has changes", async () => {
    const builder = builderChainOf(await buildChain());
    expect(envBefore(builder, execIndex(builder, "npm", "run", "build"))).toMatchObject({
      BUILD_TAGS: "",
      VERSION: MANIFEST.version,
      GIT_COMMIT: HEAD,
    });

    const dirty = await startEngine((leaf) => (leaf.field === "isEmpty" ? false : undefined));
    try {
      const image = await dirty.run(async () => chainOf(await defaultModule().build(checkout())));
      expect(envBefore(builderChainOf(image), Infinity).GIT_COMMIT).toBe(`${HEAD}-dirty`);
      expect(
        callsOf(image, "withLabel").find((c) => c.args.name === "org.opencontainers.image.revision")?.args.value,
      ).toBe(`${HEAD}-dirty`);
    } finally {
      await dirty.close();
    }
  });

  it("sends the same queries for the same commit whatever the wall clock says", async () => {
    vi.useFakeTimers({ toFake: ["Date"], now: new Date("2030-01-01T00:00:00Z") });
    try {
      const first = await buildChain(["heroku"]);
      vi.setSystemTime(new Date("2031-06-15T12:34:56Z"));
      const second = await buildChain(["heroku"]);
      expect(second).toEqual(first);
      expect(JSON.stringify(first)).not.toMatch(/203[01]-/);
    } finally {
      vi.useRealTimers();
    }
  });

  it("merges the poetry at /poetry before the bundle, and copies in only the bundle, its source map and the SBOM", async () => {
    const runtime = await buildChain();
    const poetry = runtime.findIndex((c) => c.field === "withDirectory" && c.args.path === "/poetry");
    const app = runtime.findIndex((c) => c.field === "withFiles" && c.args.path === "/app");
    expect(poetry).toBeGreaterThan(0);
    expect(app).toBeGreaterThan(poetry);
    expect(runtime.filter((call) => FILESYSTEM_INPUTS.has(call.field))).toHaveLength(2);

    // Both with every timestamp at the commit's time, so the files' metadata does not depend on when they were built.
    expect(chainFromId(runtime[poetry]!.args.source)).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: POETRY_IMAGE } },
      { field: "rootfs", args: {} },
      { field: "withTimestamps", args: { timestamp: COMMIT_TIME } },
    ]);
    const copied = (runtime[app]!.args.sources as string[]).map((id) => chainFromId(id).slice(-3));
    expect(copied).toEqual([
      ...["main.js", "main.js.map"].map((name) => [
        { field: "directory", args: { path: "/src/service/dist" } },
        { field: "withTimestamps", args: { timestamp: COMMIT_TIME } },
        { field: "file", args: { path: name } },
      ]),
      [
        { field: "file", args: { path: "/sbom.spdx.json" } },
        { field: "withName", args: { name: "sbom.spdx.json" } },
        { field: "withTimestamps", args: { timestamp: COMMIT_TIME } },
      ],
    ]);
  });

  it("makes the SBOM in the builder from the bundle's metafile, the lockfile, the platform's runtime base and the poems", async () => {
    const runtime = await buildChain(["heroku"], "3.1.0", "linux/arm64" as Platform);
    const app = runtime.find((c) => c.field === "withFiles" && c.args.path === "/app")!;
    const sbom = chainFromId((app.args.sources as string[])[2]).slice(0, -3);
    expect(sbom.slice(0, 2)).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: BUILDER_IMAGE } },
    ]);
    const mounts = Object.fromEntries(
      sbom
        .filter((c) => c.field === "withMountedFile" || c.field === "withMountedDirectory")
        .map((c) => [c.args.path, chainFromId(c.args.source)]),
    );
    expect(Object.keys(mounts)).toEqual([
      SBOM_INPUTS.metafile,
      SBOM_INPUTS.lockfile,
      SBOM_INPUTS.runtimeRoot,
      SBOM_INPUTS.poetry,
    ]);
    expect(mounts[SBOM_INPUTS.metafile]!.slice(-3)).toEqual([
      { field: "directory", args: { path: "/src/service/dist" } },
      { field: "withTimestamps", args: { timestamp: COMMIT_TIME } },
      { field: "file", args: { path: "main.meta.json" } },
    ]);
    expect(mounts[SBOM_INPUTS.lockfile]!.at(-1)).toEqual({ field: "file", args: { path: "package-lock.json" } });
    expect(mounts[SBOM_INPUTS.runtimeRoot]).toEqual([
      { field: "container", args: { platform: "linux/arm64" } },
      { field: "from", args: { address: RUNTIME_IMAGE } },
      { field: "rootfs", args: {} },
    ]);
    expect(mounts[SBOM_INPUTS.poetry]).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: POETRY_IMAGE } },
      { field: "rootfs", args: {} },
    ]);
    const scripts = sbom.filter((c) => c.field === "withFile");
    expect(scripts.map((c) => [c.args.path, chainFromId(c.args.source).at(-1)])).toEqual([
      [SBOM_SCRIPT, { field: "file", args: { path: "ci/src/sbom.ts" } }],
      [SBOM_INPUTS_SCRIPT, { field: "file", args: { path: "ci/src/sbom-inputs.ts" } }],
    ]);
    const exec = sbom.at(-1)!;
    expect(exec.field).toBe("withExec");
    expect(exec.args.redirectStdout).toBe("/sbom.spdx.json");
    const [node, inputType, evalFlag, main, params] = exec.args.args as string[];
    expect([node, inputType, evalFlag, main]).toEqual(["node", "--input-type=module", "--eval", SBOM_MAIN]);
    expect(JSON.parse(params!)).toEqual({
      name: MANIFEST.name,
      version: "3.1.0",
      commit: HEAD,
      created: new Date(COMMIT_TIME * 1000).toISOString().replace(".000", ""),
      platform: "linux/arm64",
      nodeVersion: NODE_VERSION,
      runtimeImage: resolvedRef(RUNTIME_IMAGE),
      poetryImage: resolvedRef(POETRY_IMAGE),
      sourceUrl: "https://github.com/PennockTech/dummyapp",
      workspace: "service",
    });
  });

  it("returns that SBOM from sbom, for the engine's platform by default", async () => {
    const chainOfFile = async (file: { id(): Promise<string> }) => chainOf(file);
    const [native, arm] = await engine.run(() =>
      Promise.all([
        defaultModule().sbom(checkout()).then(chainOfFile),
        defaultModule()
          .sbom(checkout(), [], undefined, "linux/arm64" as Platform)
          .then(chainOfFile),
      ]),
    );
    const runtimeRoot = (chain: Call[]) =>
      chainFromId(
        chain.find((c) => c.field === "withMountedDirectory" && c.args.path === SBOM_INPUTS.runtimeRoot)!.args.source,
      );
    expect(runtimeRoot(native)[0]).toEqual({ field: "container", args: { platform: ENGINE_PLATFORM } });
    expect(runtimeRoot(arm)[0]).toEqual({ field: "container", args: { platform: "linux/arm64" } });
    expect(native.at(-1)).toEqual({ field: "file", args: { path: "/sbom.spdx.json" } });
  });

  it("runs as a non-root user, with the service's env, port 8080 and an exec-form entrypoint", async () => {
    const runtime = await buildChain();
    const user = callsOf(runtime, "withUser").at(-1)?.args.name as string | undefined;
    expect(user).toBeDefined();
    expect(user!.split(":")[0]).not.toMatch(/^(|0|root)$/);
    expect(user).toBe("65532:65532");

    expect(envBefore(runtime, runtime.length)).toMatchObject({ PORT: "8080", POETRY_DIR: "/poetry" });
    expect(callsOf(runtime, "withExposedPort").map((c) => c.args.port)).toEqual([8080]);
    expect(callsOf(runtime, "withEntrypoint").map((c) => c.args.args)).toEqual([
      ["node", "--disable-sigusr1", "--enable-source-maps", "/app/main.js"],
    ]);
    // The entrypoint names `node`; the distroless image has it in /nodejs/bin, which the image adds to PATH.
    expect(callsOf(runtime, "withEnvVariable").find((c) => c.args.name === "PATH")?.args).toMatchObject({
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the literal the engine expands.
      value: "/nodejs/bin:${PATH}",
      expand: true,
    });
    expect(callsOf(runtime, "withExec")).toEqual([]);
  });

  it("labels the image with the OCI labels, its build tags, poetry image and Node version", async () => {
    const runtime = await buildChain(["heroku"], "1.2.3", undefined, "0123abcdef0123abcdef0123abcdef0123abcdef");
    const labels = Object.fromEntries(callsOf(runtime, "withLabel").map((c) => [c.args.name, c.args.value]));
    expect(labels).toMatchObject({
      "org.opencontainers.image.title": "dummyapp",
      "org.opencontainers.image.description": MANIFEST.description,
      "org.opencontainers.image.version": "1.2.3",
      "org.opencontainers.image.revision": "0123abcdef0123abcdef0123abcdef0123abcdef",
      "org.opencontainers.image.source": "https://github.com/PennockTech/dummyapp",
      "org.opencontainers.image.licenses": "BSD-2-Clause",
      "org.opencontainers.image.base.name": RUNTIME_IMAGE,
      "com.pennock-tech.dummyapp.build-tags": "heroku",
      "com.pennock-tech.dummyapp.poetry-image": POETRY_IMAGE,
      "com.pennock-tech.dummyapp.node-version": "24",
    });
    // Created when the commit was: 2025-12-01T00:00:00Z is COMMIT_TIME, the same instant the bundle is stamped with.
    expect(labels["org.opencontainers.image.created"]).toBe("2025-12-01T00:00:00Z");
    expect(new Date(labels["org.opencontainers.image.created"]!).getTime() / 1000).toBe(COMMIT_TIME);
  });

  it("refuses a commit that is not a full SHA (the engine's Git API takes no other), before sending any query", async () => {
    await expect(
      engine.run(() => defaultModule().build(checkout(), [], undefined, undefined, "0123abc")),
    ).rejects.toThrow('--commit "0123abc" is not a full commit SHA: give all 40 hex digits (git rev-parse HEAD)');
    expect(engine.queries).toEqual([]);
  });

  it("fails on an unknown build tag, naming the known ones, before sending any query", async () => {
    await expect(engine.run(() => defaultModule().build(checkout(), ["heroku", "herokuu"]))).rejects.toThrow(
      'unknown build tag "herokuu"; known tags: heroku',
    );
    expect(engine.queries).toEqual([]);
  });
});

describe("poetry", () => {
  it("takes the data image's root filesystem and never runs it", async () => {
    const chain = await engine.run(async () =>
      chainOf(await defaultModule().poetry("registry.example.com/private-poems:1")),
    );
    expect(chain).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: "registry.example.com/private-poems:1" } },
      { field: "rootfs", args: {} },
    ]);
  });
});

describe("test", () => {
  it("runs npm test in the builder, on the same cached install as build, with every test tool and CI=true", async () => {
    await engine.run(() => defaultModule().test());
    const { chain } = engine.queries.at(-1)!;
    expect(chain.at(-1)).toEqual({ field: "stdout", args: {} });
    expect(chain.at(-2)).toEqual({ field: "withExec", args: { args: ["npm", "test"] } });

    const builder = builderChainOf(await buildChain());
    const install = execIndex(builder, "npm", "ci") + 1;
    expect(chain.slice(0, install)).toEqual(builder.slice(0, install));
    // The whole repository on top of the install: the suite tests everything.
    const installed = install + 1;
    expect(chain[install]).toEqual({ field: "withDirectory", args: { path: "/src", source: expect.any(String) } });
    expect(isSource(chain[install]!.args.source)).toBe(true);

    // Without the tools (or with CI unset) the suite would skip its promtool and registry tests and still "pass".
    const tools = chain.slice(installed, -2);
    expect(tools[0]).toEqual({
      field: "withExec",
      args: { args: ["apk", "add", "--no-cache", "openssl", "perl", "setpriv", "skopeo"] },
    });
    const copied = callsOf(tools, "withFile").map((c) => [c.args.path, chainFromId(c.args.source).slice(1)]);
    expect(copied).toEqual([
      [
        "/usr/local/bin/promtool",
        [
          { field: "from", args: { address: PROMTOOL_IMAGE } },
          { field: "file", args: { path: "/bin/promtool" } },
        ],
      ],
      [
        "/usr/local/bin/docker-registry",
        [
          { field: "from", args: { address: REGISTRY_IMAGE } },
          { field: "file", args: { path: "/bin/registry" } },
        ],
      ],
    ]);
    expect(tools.at(-1)).toEqual({ field: "withEnvVariable", args: { name: "CI", value: "true" } });
  });
});

describe("serve", () => {
  it("runs the built image as a service through its entrypoint", async () => {
    const chain = await engine.run(async () => chainOf(await defaultModule().serve(checkout(), ["heroku"])));
    expect(chain.at(-1)).toEqual({ field: "asService", args: { useEntrypoint: true } });
    expect(chain.slice(0, 2)).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: RUNTIME_IMAGE } },
    ]);
    expect(envBefore(builderChainOf(chain), Infinity).BUILD_TAGS).toBe("heroku");
  });
});

describe("smoke", () => {
  it("binds the built image as a service and probes it from a client container with what was built", async () => {
    await engine.run(() => defaultModule().smoke(checkout(), ["heroku"]));
    const { chain } = engine.queries.at(-1)!;
    expect(chain.slice(0, 2)).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: BUILDER_IMAGE } },
    ]);

    const binding = callsOf(chain, "withServiceBinding");
    expect(binding.map((c) => c.args.alias)).toEqual(["app"]);
    const service = chainFromId(binding[0]!.args.service);
    expect(service.at(-1)).toEqual({ field: "asService", args: { useEntrypoint: true } });
    expect(service[1]).toEqual({ field: "from", args: { address: RUNTIME_IMAGE } });
    expect(envBefore(builderChainOf(service), Infinity)).toMatchObject({
      BUILD_TAGS: "heroku",
      VERSION: MANIFEST.version,
    });

    const probe = callsOf(chain, "withFile")[0]!;
    expect(probe.args.path).toBe("/probe/probe.mts");
    expect(chainFromId(probe.args.source)).toEqual([
      { field: "loadDirectoryFromID", args: { id: "repository-source-directory" } },
      { field: "file", args: { path: "ci/src/probe.ts" } },
    ]);
    const [node, , , main, url, expectations] = callsOf(chain, "withExec")[0]!.args.args as string[];
    expect([node, main, url]).toEqual(["node", PROBE_MAIN, "http://app:8080"]);
    expect(JSON.parse(expectations!)).toEqual({ version: MANIFEST.version, buildTags: ["heroku"], poems: POEMS });
    expect(chain.at(-1)).toEqual({ field: "stdout", args: {} });
  });

  it("probes anew on every call: each run's exec has its own inputs, so the engine cannot answer from its cache", async () => {
    await engine.run(async () => {
      await defaultModule().smoke(checkout());
      await defaultModule().smoke(checkout());
    });
    const probes = engine.queries.filter((q) => callsOf(q.chain, "withServiceBinding").length > 0).map((q) => q.chain);
    expect(probes).toHaveLength(2);
    const runIds = probes.map((chain) => callsOf(chain, "withEnvVariable").find((c) => c.args.name === "SMOKE_RUN_ID"));
    expect(runIds[0]?.args.value).toMatch(/^[0-9a-f-]{36}$/);
    expect(runIds[1]?.args.value).not.toBe(runIds[0]?.args.value);
  });

  it("fails saying which probe failed and what came back", async () => {
    const stderr = '/version: expected version 2.0.0; got 200: {"version":"0.0.0-dev"}';
    const failing = await startEngine((leaf, chain) =>
      leaf.field === "stdout" && callsOf(chain, "withServiceBinding").length > 0
        ? new EngineError("exit code: 1", { _type: "EXEC_ERROR", exitCode: 1, stderr })
        : undefined,
    );
    try {
      await expect(failing.run(() => defaultModule().smoke(checkout()))).rejects.toThrow(
        `smoke test failed: ${stderr}`,
      );
    } finally {
      await failing.close();
    }
  });
});

describe("rehearsePublish", () => {
  /** Runs the rehearsal against a double holding its registry; what it returned and the engine's queries. */
  async function rehearse(more: (leaf: Call, chain: Call[]) => unknown = () => undefined) {
    const registry = rehearsalRegistry();
    const double = await startEngine((leaf, chain) => more(leaf, chain) ?? registry(leaf, chain));
    try {
      const result = await double
        .run(() => defaultModule().rehearsePublish(checkout()))
        .then(
          (value) => ({ value, error: undefined }),
          (error: Error) => ({ value: undefined, error: error.message }),
        );
      return { ...result, queries: double.queries };
    } finally {
      await double.close();
    }
  }

  it("pushes both variants as indexes and the heroku one as a Docker manifest to an in-engine registry, and checks what it reads back", async () => {
    const { value, error, queries } = await rehearse();
    expect(error).toBeUndefined();
    expect(value).toBe(
      [
        `pennocktech/dummyapp:${MANIFEST.version}: index, linux/amd64 + linux/arm64, labels checked`,
        `pennocktech/dummyapp:${MANIFEST.version}-heroku: index, linux/amd64 + linux/arm64, labels checked`,
        "pt-dummy-app/web:latest: one Docker manifest, linux/amd64, labels checked",
      ].join("; "),
    );
    const publishes = queries.filter((q) => q.chain.at(-1)!.field === "publish").map((q) => q.chain.at(-1)!.args);
    expect(publishes.map((p) => p.address).sort()).toEqual([
      `localhost:5000/pennocktech/dummyapp:${MANIFEST.version}`,
      `localhost:5000/pennocktech/dummyapp:${MANIFEST.version}-heroku`,
      "localhost:5000/pt-dummy-app/web:latest",
    ]);
    // Every push and the reading use one registry: the official image pinned by digest, as a service in the engine.
    const readback = queries.find((q) =>
      callsOf(q.chain, "withExec").some((c) => (c.args.args as string[]).includes(READBACK_MAIN)),
    )!;
    const services = [
      ...publishes.map((p) => p.registryService),
      callsOf(readback.chain, "withServiceBinding")[0]!.args.service,
    ];
    expect(new Set(services).size).toBe(1);
    const service = chainFromId(services[0]);
    expect(service[1]).toEqual({ field: "from", args: { address: REGISTRY_IMAGE } });
    expect(REGISTRY_IMAGE).toMatch(/@sha256:[a-f0-9]{64}$/);
    expect(service.at(-1)).toEqual({ field: "asService", args: { useEntrypoint: true } });
    expect(publishes.find((p) => String(p.address).includes("pt-dummy-app"))!.mediaTypes).toBe("DOCKER");
    // No credentials anywhere: nothing read in plain text, no registry login.
    expect(
      queries.filter((q) => q.chain.some((c) => c.field === "plaintext" || c.field === "withRegistryAuth")),
    ).toEqual([]);
  });

  it("fails naming the difference when what it reads back is not what it pushed", async () => {
    const registry = rehearsalRegistry();
    // A registry that lost the arm64 image of every index.
    const { error } = await rehearse((leaf, chain) => {
      if (
        leaf.field !== "stdout" ||
        !((callsOf(chain, "withExec").at(-1)?.args.args as string[] | undefined) ?? []).includes(READBACK_MAIN)
      )
        return registry(leaf, chain);
      const read = JSON.parse(String(registry(leaf, chain))) as Readback[];
      return JSON.stringify(read.map((r) => ({ ...r, images: r.images.slice(0, 1) })));
    });
    expect(error).toBe(
      `rehearsal: pennocktech/dummyapp:${MANIFEST.version} has linux/amd64, not linux/amd64, linux/arm64`,
    );
  });
});
