// Call: every function run the way `dagger call` runs it — the runtime's entrypoint under tsx 4.15.6 on Node 24.13.1,
// in its own process, told which call it is by an engine double and answering through returnValue / returnError
// (runtime/entrypoint-call.ts). The assertions are on what the engine receives back. Calls run concurrently, each
// with its own double.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { BUILDER_IMAGE, POETRY_IMAGE, RUNTIME_IMAGE } from "../src/image-refs.js";
import { type RegistryProcess, startRegistry as startDockerRegistry, stopProcess } from "./clients/registry-server.js";
import { type Answers, type Call, decodeId, EngineError } from "./engine-double.js";
import { HerokuContractDouble } from "./heroku-contract-double.js";
import { type RegistryStub, startRegistry } from "./registry-stub.js";
import { type CallOutcome, callThroughEntrypoint } from "./runtime/entrypoint-call.js";
import { layOutModule, type ModuleLayout } from "./runtime/module-layout.js";
import {
  builderChainOf,
  COMMIT_TIME,
  callsOf,
  GIT_ID,
  HEAD,
  MANIFEST,
  publishInto,
  rehearsalRegistry,
  SOURCE_ID,
} from "./transcript.js";

const node = inject("runtimeNode");
const TOKEN = "heroku-token-d0-n0t-l3ak-1c9e";
const CONFIG_DIGEST = `sha256:${"c0".repeat(32)}`;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const SECRET_VALUES: Record<string, string> = {
  "secret:HEROKU_TOKEN": TOKEN,
  "secret:USER": "bot",
  "secret:PASS": "hub-pass",
};
const TESTS_PASSED = "Test Files 24 passed (24)\n";
const PROBES_PASSED = "/healthz: ok\n/poetry/: ok\n/version: ok\n/metrics: ok\n";
const PROBE_FAILED = '/version: expected version 2.0.0; got 200: {"version":"0.0.0-dev"}';

let layout: ModuleLayout;
let heroku: HerokuContractDouble;
let registry: RegistryStub;
/** Docker Hub, played by a real registry that the double's publish pushes into. */
let hub: RegistryProcess;
let hubDir: string;
let publishAnswer: (leaf: Call) => Promise<string>;
/** The module object's state, as the constructor call returned it to the engine. */
let state: Record<string, unknown>;

/** Secrets by ID; `npm test` passes; the smoke probes pass unless `smoke` says otherwise. */
function engineAnswers(smoke: "passes" | "fails" = "passes"): Answers {
  return (leaf, chain) => {
    if (leaf.field === "plaintext") return SECRET_VALUES[String(chain[0]?.args.id)];
    if (leaf.field === "publish") return publishAnswer(leaf);
    if (leaf.field !== "stdout") return undefined;
    const argv = callsOf(chain, "withExec").at(-1)?.args.args as string[] | undefined;
    if (argv?.[0] === "npm") return TESTS_PASSED;
    // The probes; any other node (the runtime image's version) is the double's.
    if (argv?.[0] !== "node" || !argv.includes("--eval")) return undefined;
    if (smoke === "passes") return PROBES_PASSED;
    return new EngineError("exit code: 1", { _type: "EXEC_ERROR", exitCode: 1, stderr: `${PROBE_FAILED}\n` });
  };
}

/** The functions that stamp a build, which the engine hands the checkout (their contextual `git` argument). */
const STAMPING = new Set(["build", "sbom", "serve", "smoke", "publish", "deployHeroku", "ci", "rehearsePublish"]);

/** `dagger call <name> [args]` on the module as the CLI constructs it. */
function call(name: string, inputArgs: Record<string, unknown> = {}, answers = engineAnswers()): Promise<CallOutcome> {
  const routes = { "https://registry-1.docker.io": hub.url };
  const contextual = STAMPING.has(name) ? { git: GIT_ID } : {};
  return callThroughEntrypoint(
    { parentName: "Dummyapp", name, parent: state, inputArgs: { ...contextual, ...inputArgs } },
    layout,
    node,
    answers,
    routes,
  );
}

/** The chain an ID the engine received stands for. */
function chain(id: unknown): Call[] {
  const decoded = decodeId(id);
  if (!decoded) throw new Error(`not an engine-double ID: ${JSON.stringify(id)}`);
  return decoded;
}

/** Expects a call that answered with a value, and returns it. */
function returned(outcome: CallOutcome): unknown {
  expect(outcome.error, outcome.stderr).toBeUndefined();
  expect(outcome.exitCode, outcome.stderr).toBe(0);
  return outcome.value;
}

beforeAll(async () => {
  layout = layOutModule();
  heroku = await HerokuContractDouble.start(TOKEN);
  heroku.addApp("pt-dummy-app", "container", 3);
  heroku.pushImage("pt-dummy-app", "web", CONFIG_DIGEST);
  registry = await startRegistry(TOKEN, CONFIG_DIGEST);
  hubDir = mkdtempSync(join(tmpdir(), "runtime-call-hub-"));
  hub = await startDockerRegistry(hubDir, "hub", join(hubDir, "storage"));
  publishAnswer = publishInto(hub.url, () => registry);
  // The constructor, as the engine calls it first: the source from defaultPath, images at their defaults.
  const construct = { parentName: "Dummyapp", name: "", inputArgs: { source: SOURCE_ID } };
  state = returned(await callThroughEntrypoint(construct, layout, node, engineAnswers())) as Record<string, unknown>;
}, 300_000);

afterAll(async () => {
  await Promise.all([heroku?.close(), registry?.close(), stopProcess(hub?.process)]);
  if (hubDir) rmSync(hubDir, { recursive: true, force: true });
});

// Each call takes a few seconds of CPU (tsx, the SDK, the introspector's scan): the bound is for a busy 2-core machine.
describe.concurrent("functions called through the Dagger runtime's entrypoint", { timeout: 300_000 }, () => {
  it("constructor: the object's state is the source and the default images", () => {
    expect(state).toEqual({
      source: expect.any(String),
      builderImage: BUILDER_IMAGE,
      runtimeImage: RUNTIME_IMAGE,
      poetryImage: POETRY_IMAGE,
    });
    expect(chain(state.source)).toEqual([{ field: "node", args: { id: SOURCE_ID } }]);
  });

  it("build: returns the runtime image, built from the source with the tags asked for", async () => {
    const image = chain(returned(await call("build", { tags: ["heroku"], commit: COMMIT })));
    expect(image.slice(0, 2)).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: RUNTIME_IMAGE } },
    ]);
    expect(callsOf(image, "withEntrypoint")).toHaveLength(1);
    const env = Object.fromEntries(
      callsOf(builderChainOf(image), "withEnvVariable").map((c) => [c.args.name, c.args.value]),
    );
    expect(env).toMatchObject({ BUILD_TAGS: "heroku", VERSION: MANIFEST.version, GIT_COMMIT: COMMIT });
  });

  it("build: the same commit sends the same queries and returns the same image, whenever it runs", async () => {
    const first = await call("build");
    await new Promise((resolve) => setTimeout(resolve, 1100)); // a wall-clock stamp has whole seconds
    const second = await call("build");
    // Sorted: the manifest and the revision are read concurrently.
    expect(second.queries.map((q) => q.text).sort()).toEqual(first.queries.map((q) => q.text).sort());
    expect(second.value).toEqual(first.value);
    const image = chain(first.value);
    const env = Object.fromEntries(
      callsOf(builderChainOf(image), "withEnvVariable").map((c) => [c.args.name, c.args.value]),
    );
    expect(env).toMatchObject({ GIT_COMMIT: HEAD, SOURCE_DATE_EPOCH: String(COMMIT_TIME) });
    const labels = Object.fromEntries(callsOf(image, "withLabel").map((c) => [c.args.name, c.args.value]));
    expect(labels).toMatchObject({
      "org.opencontainers.image.revision": HEAD,
      "org.opencontainers.image.created": "2025-12-01T00:00:00Z",
    });
  });

  it("build: an unknown tag is an error naming the known ones, before any build query", async () => {
    const refused = await call("build", { tags: ["herokuu"] });
    expect(refused).toMatchObject({ exitCode: 1, error: 'unknown build tag "herokuu"; known tags: heroku' });
    expect(refused.value).toBeUndefined();
    expect(refused.queries).toEqual([]);
  });

  it("poetry: returns the data image's root filesystem", async () => {
    expect(chain(returned(await call("poetry")))).toEqual([
      { field: "container", args: {} },
      { field: "from", args: { address: POETRY_IMAGE } },
      { field: "rootfs", args: {} },
    ]);
  });

  it("test: returns the suite's output from npm test in the builder", async () => {
    const tested = await call("test");
    expect(returned(tested)).toBe(TESTS_PASSED);
    expect(callsOf(tested.queries.at(-1)!.chain, "withExec").at(-1)?.args.args).toEqual(["npm", "test"]);
  });

  it("serve: returns the image as a service started through its entrypoint", async () => {
    expect(chain(returned(await call("serve"))).at(-1)).toEqual({ field: "asService", args: { useEntrypoint: true } });
  });

  it("smoke: returns the probes' output", async () => {
    expect(returned(await call("smoke", { tags: ["heroku"] }))).toBe(PROBES_PASSED);
  });

  it("smoke: a failed probe is an error carrying the probe's message (the SDK's ExecError, recognised by name)", async () => {
    const failed = await call("smoke", {}, engineAnswers("fails"));
    expect(failed).toMatchObject({ exitCode: 1, error: `smoke test failed: ${PROBE_FAILED}` });
  });

  it("publish: returns each pushed reference with its digest", async () => {
    const published = await call("publish", {
      tag: ["heroku"],
      username: "secret:USER",
      password: "secret:PASS",
      version: "1.2.0",
    });
    expect(returned(published)).toEqual([
      expect.stringMatching(/^docker\.io\/pennocktech\/dummyapp:1\.2\.0-heroku@sha256:[a-f0-9]{64}$/),
      expect.stringMatching(/^docker\.io\/pennocktech\/dummyapp:heroku@sha256:[a-f0-9]{64}$/),
    ]);
  });

  it("rehearse-publish: pushes to the in-engine registry, reads back and returns what it checked", async () => {
    const registry = rehearsalRegistry();
    const answers = engineAnswers();
    const rehearsed = await call("rehearsePublish", {}, (leaf, chain) => registry(leaf, chain) ?? answers(leaf, chain));
    expect(String(returned(rehearsed)).split("; ")).toEqual([
      `pennocktech/dummyapp:${MANIFEST.version}: index, linux/amd64 + linux/arm64, labels checked`,
      `pennocktech/dummyapp:${MANIFEST.version}-heroku: index, linux/amd64 + linux/arm64, labels checked`,
      "pt-dummy-app/web:latest: one Docker manifest, linux/amd64, labels checked",
    ]);
  });

  it("deploy-heroku: returns the release report", async () => {
    const deployed = await call("deployHeroku", {
      token: "secret:HEROKU_TOKEN",
      apiUrl: heroku.url,
      registry: registry.host,
      version: "1.2.0",
    });
    expect(returned(deployed)).toBe(`released pt-dummy-app v4 (web) with image ${CONFIG_DIGEST}`);
    expect(deployed.stdout + deployed.stderr).not.toContain(TOKEN);
  });

  it("ci: returns one line per step", async () => {
    const ran = await call("ci", {
      branch: "feature",
      commit: COMMIT,
      dockerhubUsername: "secret:USER",
      dockerhubPassword: "secret:PASS",
    });
    const version = `${MANIFEST.version}-feature.0123456`;
    expect(String(returned(ran)).split("\n")).toEqual([
      `dummyapp ci: branch feature, version ${version}`,
      "test: passed",
      `build: built ${version}, ${version}-heroku`,
      "smoke: passed",
      expect.stringMatching(
        new RegExp(
          `^publish: docker\\.io/pennocktech/dummyapp:${version.replaceAll(".", "\\.")}@sha256:[a-f0-9]{64} \\(SBOM: `,
        ),
      ),
      "deploy: skipped (only master and main deploy)",
    ]);
  });
});
