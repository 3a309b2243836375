// The smoke probes (ci/src/probe.ts) against the real service bundle, built with a stamp as the image build does and
// started with the image's environment (PORT, POETRY_DIR): proof that what `smoke` expects is what the service does.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main, ProbeFailure, runProbes, type SmokeExpectations } from "../src/probe.js";

const SERVICE = join(__dirname, "../../service");
const SAMPLE_POETRY = join(SERVICE, "sample-poetry");
/** The sample poems as Dagger's Directory.entries lists them: directories with a trailing slash. */
const ENTRIES = readdirSync(SAMPLE_POETRY, { withFileTypes: true }).map((e) => (e.isDirectory() ? `${e.name}/` : e.name));
const EXPECTED: SmokeExpectations = { version: "9.9.9-probe", buildTags: ["heroku"], poems: ENTRIES };

let service: ChildProcess;
let baseUrl: string;

beforeAll(async () => {
  const bundle = join(mkdtempSync(join(tmpdir(), "probe-bundle-")), "main.js");
  const built = spawnSync(process.execPath, [join(SERVICE, "build.mjs"), "--outfile", bundle], {
    env: { ...process.env, BUILD_TAGS: "heroku", VERSION: EXPECTED.version, DEFAULT_POETRY_DIR: "/poetry" },
    encoding: "utf8",
  });
  expect(built.status, built.stderr).toBe(0);
  service = spawn(process.execPath, [bundle], {
    env: { PATH: process.env.PATH, PORT: "127.0.0.1:0", POETRY_DIR: SAMPLE_POETRY, CRASH_GUARD: "off" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  baseUrl = await new Promise<string>((resolve, reject) => {
    let log = "";
    service.stdout!.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      const lines = log.split("\n").slice(0, -1).map((line) => JSON.parse(line) as { msg?: string; port?: number });
      const ready = lines.find((line) => line.msg === "accepting connections");
      if (ready) resolve(`http://127.0.0.1:${ready.port}`);
    });
    service.on("exit", (code) => reject(new Error(`service exited with ${code}: ${log}`)));
  });
}, 60_000);

afterAll(() => {
  service?.kill("SIGKILL");
});

/** The failure message of probes run with `expected`. */
async function failure(expected: SmokeExpectations, url = baseUrl): Promise<string> {
  const err = await runProbes(url, expected).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ProbeFailure);
  return (err as Error).message;
}

describe("smoke probes against the real bundle", () => {
  it("pass when the service reports what was built and lists the data image's poems", async () => {
    expect(await runProbes(baseUrl, EXPECTED)).toEqual(["/healthz: ok", "/poetry/: ok", "/version: ok", "/metrics: ok"]);
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
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    expect(await failure(EXPECTED, `http://127.0.0.1:${port}`)).toMatch(/^\/healthz: request failed: .*\(ECONNREFUSED\)/);
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
