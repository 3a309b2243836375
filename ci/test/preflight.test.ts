// The preflight against what it talks to: a real registry with token auth (Debian's docker-registry and a token
// server, as Docker Hub has) and the Heroku Platform API contract double. Each wrong secret or app fails in one line
// that names it, in seconds, with no secret in it.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Platform, Secret } from "@dagger.io/dagger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HerokuTarget } from "../src/deploy.js";
import { preflight } from "../src/preflight.js";
import type { RegistryTarget } from "../src/publish.js";
import {
  type RegistryProcess,
  registryInstalled,
  registryRequired,
  startTokenAuthRegistry,
  stopProcess,
  type TokenRequests,
} from "./clients/registry-server.js";
import { HerokuContractDouble } from "./heroku-contract-double.js";

const CREDENTIALS = { user: "pusher", password: `hub-token-${randomBytes(12).toString("hex")}` };
const HEROKU_TOKEN = `heroku-token-${randomBytes(12).toString("hex")}`;
const REPOSITORY = "pennocktech/dummyapp";
/** A repository the account may only read, as Docker Hub answers for a team without write access. */
const READ_ONLY = "pennocktech/read-only";
/** "Fails in seconds": every check here is a handful of loopback requests; the bound is for a busy 2-core machine. */
const SECONDS = 5_000;

/** A Secret as the module reads it: only plaintext() is used. */
const secret = (value: string) => ({ plaintext: async () => value }) as unknown as Secret;

let dir: string;
let registry: RegistryProcess;
let tokenServer: Server;
const seen: TokenRequests = { urls: [], agents: [] };
let heroku: HerokuContractDouble;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "preflight-"));
  ({ registry, tokenServer } = await startTokenAuthRegistry(
    dir,
    join(dir, "storage"),
    CREDENTIALS,
    seen,
    (name, asked) => (name === READ_ONLY ? asked.filter((action) => action === "pull") : asked),
  ));
  heroku = await HerokuContractDouble.start(HEROKU_TOKEN);
  heroku.addApp("pt-dummy-app", "container", 3);
  heroku.addApp("on-heroku-24", "heroku-24", 1);
  heroku.addApp("fir-app", "cnb", 1, "fir");
}, 30_000);

afterAll(async () => {
  await Promise.all([stopProcess(registry?.process), heroku?.close()]);
  tokenServer?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const hub = (password = CREDENTIALS.password, repository = REPOSITORY): RegistryTarget => ({
  registry: registry.host,
  repository,
  username: secret(CREDENTIALS.user),
  password: secret(password),
  platforms: ["linux/amd64" as Platform],
});
const app = (name = "pt-dummy-app", token = HEROKU_TOKEN): HerokuTarget => ({
  app: name,
  processType: "web",
  apiUrl: heroku.url,
  registry: "registry.heroku.com",
  token: secret(token),
  rollback: true,
});
const flags = { hub: "--dockerhub-username/--dockerhub-password", heroku: "--heroku-token" };

/** Runs the preflight and returns its error message ("" when it passed) and how long it took. */
async function check(request: Parameters<typeof preflight>[0]): Promise<{ error: string; ms: number }> {
  const started = performance.now();
  const error = await preflight(request).then(
    () => "",
    (err: Error) => err.message,
  );
  return { error, ms: performance.now() - started };
}

describe.skipIf(!registryInstalled && !registryRequired)("preflight", () => {
  it("passes with credentials that may push and a Cedar app on the container stack, asking for a push token", async () => {
    seen.urls.length = 0;
    const { error } = await check({
      registry: { target: hub(), flags: flags.hub },
      heroku: { target: app(), flags: flags.heroku },
      version: "2.0.0-main.0123456",
    });
    expect(error).toBe("");
    expect(seen.urls.map((url) => url.searchParams.get("scope"))).toEqual([`repository:${REPOSITORY}:pull,push`]);
    expect(seen.agents).toContain("dummyapp-ci/2.0.0-main.0123456");
    expect(heroku.requests.at(-1)).toMatchObject({ method: "GET", path: "/apps/pt-dummy-app" });
  });

  it("fails in seconds, in one line naming the flags, on a wrong Docker Hub password, without the password", async () => {
    const wrong = `wrong-${CREDENTIALS.password}`;
    const { error, ms } = await check({ registry: { target: hub(wrong), flags: flags.hub }, version: "1" });
    expect(error).toMatch(
      new RegExp(
        `^preflight: --dockerhub-username/--dockerhub-password cannot push to ${registry.host}/${REPOSITORY}: .*401`,
      ),
    );
    expect(error).not.toContain("\n");
    expect(error).not.toContain(wrong);
    expect(ms).toBeLessThan(SECONDS);
  });

  it("fails when the token server grants pull but not push on the repository", async () => {
    const { error } = await check({ registry: { target: hub(undefined, READ_ONLY), flags: flags.hub }, version: "1" });
    expect(error).toBe(
      `preflight: ${flags.hub} cannot push to ${registry.host}/${READ_ONLY}: the token server grants pull on ${READ_ONLY}, not push: the account may not push there`,
    );
  });

  it.each([
    ["a revoked Heroku token", "pt-dummy-app", "revoked-token", /^preflight: --heroku-token, app pt-dummy-app: .*401/],
    ["an app on another stack", "on-heroku-24", HEROKU_TOKEN, /heroku stack:set container -a on-heroku-24$/],
    [
      "a Fir-generation app",
      "fir-app",
      HEROKU_TOKEN,
      /fir-app is a fir-generation app; container releases need a Cedar/,
    ],
    ["an app that does not exist", "no-such-app", HEROKU_TOKEN, /^preflight: --heroku-token, app no-such-app: .*404/],
  ])("fails in seconds on %s, in one line", async (_, name, token, message) => {
    const { error, ms } = await check({ heroku: { target: app(name, token), flags: flags.heroku }, version: "1" });
    expect(error).toMatch(message);
    expect(error).not.toContain("\n");
    expect(error).not.toContain(HEROKU_TOKEN);
    expect(ms).toBeLessThan(SECONDS);
  });

  it("names every target that failed, in one line", async () => {
    const { error } = await check({
      registry: { target: hub("nope"), flags: flags.hub },
      heroku: { target: app("fir-app"), flags: flags.heroku },
      version: "1",
    });
    expect(error).toMatch(
      /^preflight: --dockerhub-username\/--dockerhub-password cannot push .*; --heroku-token, app fir-app: /,
    );
    expect(error).not.toContain("\n");
  });

  it("checks nothing it is not given", async () => {
    const before = heroku.requests.length;
    seen.urls.length = 0;
    expect((await check({ version: "1" })).error).toBe("");
    expect(heroku.requests.length).toBe(before);
    expect(seen.urls).toEqual([]);
  });
});
