// The smoke probes (ci/src/probe.ts) against the real service bundle, built with a stamp as the image build does and
// started with the image's environment (PORT, POETRY_DIR) on the image's Node (24.13.1): proof that what `smoke`
// expects is what the service does, and that the probe command `smoke` runs works on the Node it runs on.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
import {
  buildBundle,
  closedPort,
  kill,
  type ServiceProcess,
  serviceDir,
  startService,
} from "../../service/test/service-process.mjs";
import { main, PROBE_MAIN, PROBE_PATH, ProbeFailure, runProbes, type SmokeExpectations } from "../src/probe.js";

const SAMPLE_POETRY = join(serviceDir, "sample-poetry");
/** The sample poems as Dagger's Directory.entries lists them: directories with a trailing slash. */
const ENTRIES = readdirSync(SAMPLE_POETRY, { withFileTypes: true }).map((e) =>
  e.isDirectory() ? `${e.name}/` : e.name,
);
const EXPECTED: SmokeExpectations = { version: "9.9.9-probe", buildTags: ["heroku"], poems: ENTRIES };
/** What the module stamps a build with (ci/src/containers.ts bundle): a commit and its time, never the wall clock. */
const STAMP = { GIT_COMMIT: "0123456789abcdef0123456789abcdef01234567-dirty", SOURCE_DATE_EPOCH: "1764547200" };
/** The Node of the runtime image and of the builder the probe runs in. */
const node = inject("runtimeNode");

let service: ServiceProcess;
let baseUrl: string;

beforeAll(async () => {
  const bundle = join(mkdtempSync(join(tmpdir(), "probe-bundle-")), "main.js");
  const built = buildBundle(bundle, {
    BUILD_TAGS: "heroku",
    VERSION: EXPECTED.version,
    DEFAULT_POETRY_DIR: "/poetry",
    ...STAMP,
  });
  expect(built.status, built.stderr).toBe(0);
  service = await startService({
    node,
    script: bundle,
    env: { PORT: "127.0.0.1:0", POETRY_DIR: SAMPLE_POETRY },
    stderr: "inherit",
  });
  baseUrl = service.url;
}, 60_000);

afterAll(() => {
  kill(service);
});

/** The failure message of probes run with `expected`. */
async function failure(expected: SmokeExpectations, url = baseUrl): Promise<string> {
  const err = await runProbes(url, expected).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProbeFailure);
  return (err as Error).message;
}

describe("smoke probes against the real bundle", () => {
  it("pass when the service reports what was built and lists the data image's poems", async () => {
    expect(await runProbes(baseUrl, EXPECTED)).toEqual([
      "/healthz: ok",
      "/poetry/: ok",
      "/version: ok",
      "/metrics: ok",
    ]);
  });

  it("fail on another version, saying what /version returned", async () => {
    const message = await failure({ ...EXPECTED, version: "1.0.0" });
    expect(message).toMatch(/^\/version: expected version 1\.0\.0; got 200: \{.*"version":"9\.9\.9-probe"/);
  });

  it("fail on other build tags", async () => {
    expect(await failure({ ...EXPECTED, buildTags: [] })).toMatch(/^\/version: expected build tags \[\]; got 200: /);
  });

  it("fail when a poem of the data image is not listed, naming it", async () => {
    const message = await failure({ ...EXPECTED, poems: [...ENTRIES, "missing.txt"] });
    expect(message).toMatch(/^\/poetry\/: expected the listing to include missing\.txt; got 200: \{/);
  });

  it("fail when the data image had nothing to serve", async () => {
    expect(await failure({ ...EXPECTED, poems: [".keep"] })).toMatch(/^\/poetry\/: the poetry image has no entries/);
  });

  it("fail when the service does not answer, naming the first probe", async () => {
    const port = await closedPort();
    expect(await failure(EXPECTED, `http://127.0.0.1:${port}`)).toMatch(
      /^\/healthz: request failed: .*\(ECONNREFUSED\)/,
    );
  });
});

describe("the bundle and the smoke command on Node 24.13.1", () => {
  it("serves the stamp it was built with: the commit and the commit's time", async () => {
    const info = (await (
      await fetch(`${baseUrl}/version`, { headers: { Accept: "application/json" } })
    ).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ commit: STAMP.GIT_COMMIT, buildTime: "2025-12-01T00:00:00Z", node: "v24.13.1" });
  });

  /** `smoke`'s command line exactly, with the probe copied to a temporary path instead of /probe. */
  function smokeCommand(expected: SmokeExpectations) {
    const probe = join(mkdtempSync(join(tmpdir(), "probe-")), "probe.mts");
    copyFileSync(join(__dirname, "../src/probe.ts"), probe);
    const main = PROBE_MAIN.replace(PROBE_PATH, probe);
    expect(main).not.toBe(PROBE_MAIN);
    return spawnSync(node, ["--input-type=module", "--eval", main, baseUrl, JSON.stringify(expected)], {
      encoding: "utf8",
    });
  }

  it("passes, printing each probe", () => {
    const run = smokeCommand(EXPECTED);
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("/healthz: ok\n/poetry/: ok\n/version: ok\n/metrics: ok\n");
  });

  it("fails with exit 1 and the failing probe's message on stderr", () => {
    const run = smokeCommand({ ...EXPECTED, version: "1.0.0" });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^\/version: expected version 1\.0\.0; got 200: /);
  });
});

describe("probe main", () => {
  it("prints each passed probe and leaves the exit code alone", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => undefined);
    try {
      await main([baseUrl, JSON.stringify(EXPECTED)]);
      expect(log.mock.calls.map(([line]) => line)).toHaveLength(4);
      expect(process.exitCode).toBeUndefined();
    } finally {
      log.mockRestore();
    }
  });

  it("prints why and sets exit code 1 on a failure", async () => {
    const error = vi.spyOn(console, "error").mockImplementation(() => undefined);
    try {
      await main([baseUrl, JSON.stringify({ ...EXPECTED, version: "1.0.0" })]);
      expect(process.exitCode).toBe(1);
      expect(String(error.mock.calls[0]?.[0])).toMatch(/^\/version: expected version 1\.0\.0/);
    } finally {
      process.exitCode = undefined;
      error.mockRestore();
    }
  });
});
