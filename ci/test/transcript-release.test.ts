// Transcript tests for publish, deployHeroku and ci: the module runs under the real SDK against the engine double, and
// its HTTP calls go to loopback stand-ins for Heroku (the Platform API contract double and a one-route registry), so
// the tests see everything it would send to Docker Hub, registry.heroku.com and api.heroku.com.
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { dag, type SecretID } from "@dagger.io/dagger";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DOCKER_MANIFEST_V2 } from "../src/clients/registry-client.js";
import { RUNTIME_IMAGE } from "../src/image-refs.js";
import { isDockerHub } from "../src/pull.js";
import { type Call, type EngineDouble, EngineError } from "./engine-double.js";
import { HerokuContractDouble } from "./heroku-contract-double.js";
import { type RegistryStub, startRegistry } from "./registry-stub.js";
import {
  allChains,
  builderChainOf,
  callsOf,
  chainFromId,
  defaultModule,
  HEAD,
  MANIFEST,
  startEngine,
} from "./transcript.js";

const TOKEN = "heroku-token-d0-n0t-l3ak-7f3a9c";
const DOCKERHUB_USER = "pennocktech-bot";
const DOCKERHUB_PASS = "dockerhub-pat-d0-n0t-l3ak-55e1";
/** The image id the registry reports for whatever is pushed (a config digest). */
const CONFIG_DIGEST = `sha256:${"c0".repeat(32)}`;
const COMMIT = "0123456789abcdef0123456789abcdef01234567";

/** Secrets as the engine hands them to a function: references; the double knows their values. */
const SECRET_VALUES: Record<string, string> = {
  "secret:HEROKU_TOKEN": TOKEN,
  "secret:DOCKERHUB_USER": DOCKERHUB_USER,
  "secret:DOCKERHUB_PASS": DOCKERHUB_PASS,
};
const secret = (name: string) => dag.loadSecretFromID(`secret:${name}` as SecretID);

let engine: EngineDouble;
let heroku: HerokuContractDouble;
let registry: RegistryStub;
/** What the Heroku doubles had received when the engine was asked to publish, in order of publish. */
let herokuRequestsAtPublish: number[];
/** What the engine double answered to each publish. */
let publishedRefs: string[];
let output: string[];

beforeEach(async () => {
  herokuRequestsAtPublish = [];
  publishedRefs = [];
  engine = await startEngine((leaf: Call, chain: Call[]) => {
    if (leaf.field === "plaintext") return SECRET_VALUES[String(chain[0]?.args.id)];
    if (leaf.field === "publish") {
      herokuRequestsAtPublish.push(heroku.requests.length);
      const digest = createHash("sha256")
        .update(JSON.stringify([chain, leaf]))
        .digest("hex");
      publishedRefs.push(`${String(leaf.args.address)}@sha256:${digest}`);
      return publishedRefs.at(-1);
    }
    return undefined;
  });
  heroku = await HerokuContractDouble.start(TOKEN);
  heroku.addApp("pt-dummy-app", "container", 3);
  heroku.pushImage("pt-dummy-app", "web", CONFIG_DIGEST);
  registry = await startRegistry(TOKEN, CONFIG_DIGEST);
  // Everything printed while the module runs, to show no secret is ever logged.
  output = [];
  const capture = (...args: unknown[]) => void output.push(args.map(String).join(" "));
  for (const method of ["log", "info", "warn", "error", "debug"] as const)
    vi.spyOn(console, method).mockImplementation(capture);
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, "write").mockImplementation((chunk: unknown) => {
      capture(chunk);
      return true;
    });
  }
});
afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  await Promise.all([engine.close(), heroku.close(), registry.close()]);
});

/** The queries whose leaf is `publish`. */
const publishes = () => engine.queries.filter((q) => q.chain.at(-1)!.field === "publish").map((q) => q.chain);

/** Asserts no query, printed line or `error` message holds a secret's value. */
function expectNoSecretLeaked(error?: unknown) {
  const seen = [...engine.queries.map((q) => q.text), ...output, error instanceof Error ? error.message : ""].join(
    "\n",
  );
  for (const value of [TOKEN, DOCKERHUB_PASS]) expect(seen).not.toContain(value);
}

describe("publish", () => {
  it("pushes one linux/amd64 + linux/arm64 index per tag, every variant assembled around the same natively built bundle", async () => {
    const refs = await engine.run(() =>
      defaultModule().publish(
        ["heroku"],
        undefined,
        undefined,
        secret("DOCKERHUB_USER"),
        secret("DOCKERHUB_PASS"),
        "1.2.0",
      ),
    );
    expect(refs).toEqual([
      expect.stringMatching(/^docker\.io\/pennocktech\/dummyapp:1\.2\.0-heroku@sha256:[a-f0-9]{64}$/),
      expect.stringMatching(/^docker\.io\/pennocktech\/dummyapp:heroku@sha256:[a-f0-9]{64}$/),
    ]);
    const pushed = publishes();
    expect(pushed).toHaveLength(2);
    for (const chain of pushed) {
      expect(chain.slice(0, -1)).toEqual([
        { field: "container", args: {} },
        {
          field: "withRegistryAuth",
          args: { address: "docker.io", username: DOCKERHUB_USER, secret: expect.any(String) },
        },
      ]);
      expect(chainFromId(chain[1]!.args.secret)).toEqual([
        { field: "loadSecretFromID", args: { id: "secret:DOCKERHUB_PASS" } },
      ]);
      const variants = (chain.at(-1)!.args.platformVariants as string[]).map(chainFromId);
      expect(variants.map((v) => v[0])).toEqual([
        { field: "container", args: { platform: "linux/amd64" } },
        { field: "container", args: { platform: "linux/arm64" } },
      ]);
      expect(variants.map((v) => v[1])).toEqual(
        variants.map(() => ({ field: "from", args: { address: RUNTIME_IMAGE } })),
      );
      const [amd64Build, arm64Build] = variants.map(builderChainOf);
      expect(arm64Build).toEqual(amd64Build);
      expect(amd64Build![0]).toEqual({ field: "container", args: {} });
      const env = callsOf(amd64Build!, "withEnvVariable").map((call) => call.args);
      expect(env).toContainEqual({ name: "BUILD_TAGS", value: "heroku" });
    }
    // Only the user name is read in plain text (the registry login takes it so), for the pulls and the push alike.
    const plaintext = engine.queries
      .filter((q) => q.chain.at(-1)!.field === "plaintext")
      .map((q) => q.chain[0]!.args.id);
    expect([...new Set(plaintext)]).toEqual(["secret:DOCKERHUB_USER"]);
    expectNoSecretLeaked();
  });

  it("turns / and , in the version into _ and tags a plain build with the version alone", async () => {
    const refs = await engine.run(() =>
      defaultModule().publish(
        [],
        "me/app",
        "registry.example.com",
        secret("DOCKERHUB_USER"),
        secret("DOCKERHUB_PASS"),
        "feature/x,y",
      ),
    );
    expect(refs).toEqual([expect.stringMatching(/^registry\.example\.com\/me\/app:feature_x_y@sha256:/)]);
  });

  it("refuses a version that makes an invalid Docker tag before building anything", async () => {
    const publish = engine.run(() =>
      defaultModule().publish([], undefined, undefined, secret("DOCKERHUB_USER"), secret("DOCKERHUB_PASS"), "-1.0"),
    );
    await expect(publish).rejects.toThrow('image tag "-1.0" is not a valid Docker tag');
    // Only the stamp was read (service/package.json and the revision); nothing was built or pushed.
    expect(new Set(engine.queries.map((q) => q.chain.at(-1)!.field))).toEqual(
      new Set(["commit", "contents", "id", "isEmpty", "plaintext", "stdout"]),
    );
    expect(engine.queries.filter((q) => q.chain.some((c) => c.field === "publish" || c.field === "withFiles"))).toEqual(
      [],
    );
  });

  it("fails before any query when credentials are missing, naming them", async () => {
    await expect(engine.run(() => defaultModule().publish(["heroku"]))).rejects.toThrow(
      "publish: missing secret --username, --password",
    );
    await expect(
      engine.run(() => defaultModule().publish([], undefined, undefined, secret("DOCKERHUB_USER"))),
    ).rejects.toThrow("publish: missing secret --password;");
    expect(engine.queries).toEqual([]);
  });
});

describe("deployHeroku", () => {
  const deploy = (overrides: { processType?: string; verifyUrl?: string; commit?: string; rollback?: boolean } = {}) =>
    engine.run(() =>
      defaultModule().deployHeroku(
        "pt-dummy-app",
        secret("HEROKU_TOKEN"),
        overrides.processType ?? "web",
        heroku.url,
        registry.host,
        overrides.verifyUrl,
        "1.2.0",
        "commit" in overrides ? overrides.commit : COMMIT,
        overrides.rollback,
      ),
    );

  it("pushes a single linux/amd64 heroku build with Docker media types as _, then releases its config digest", async () => {
    const report = await deploy();
    expect(report).toBe(`released pt-dummy-app v4 (web) with image ${CONFIG_DIGEST}`);

    const [push, ...more] = publishes();
    expect(more).toEqual([]);
    expect(push![0]).toEqual({ field: "container", args: { platform: "linux/amd64" } });
    expect(push!.at(-1)).toEqual({
      field: "publish",
      // ImageMediaTypes.Docker, by its GraphQL enum name: the engine's default (OCI) is what Heroku's registry refuses.
      args: { address: `${registry.host}/pt-dummy-app/web:latest`, mediaTypes: "DOCKER" },
    });
    const auth = push!.at(-2)!;
    expect(auth).toEqual({
      field: "withRegistryAuth",
      args: { address: registry.host, username: "_", secret: expect.any(String) },
    });
    expect(chainFromId(auth.args.secret)).toEqual([{ field: "loadSecretFromID", args: { id: "secret:HEROKU_TOKEN" } }]);
    const build = builderChainOf(push!);
    expect(callsOf(build, "withEnvVariable").map((c) => c.args)).toEqual(
      expect.arrayContaining([
        { name: "BUILD_TAGS", value: "heroku" },
        { name: "GIT_COMMIT", value: COMMIT },
      ]),
    );

    // The config digest is read for the manifest digest publish returned (the stub accepts only `_` with the token).
    const manifestDigest = publishedRefs[0]!.split("@")[1];
    expect(registry.requests.map((r) => [r.path, r.headers.accept])).toEqual([
      [`/v2/pt-dummy-app/web/manifests/${manifestDigest}`, DOCKER_MANIFEST_V2],
    ]);
    // Registry and Platform API learn who is calling, with the version being released.
    for (const r of [...registry.requests, ...heroku.requests])
      expect(r.headers["user-agent"]).toBe("dummyapp-ci/1.2.0");

    // The app's stack was checked before anything was pushed; the release names the config digest.
    expect(herokuRequestsAtPublish).toEqual([1]);
    expect(heroku.requests[0]).toMatchObject({ method: "GET", path: "/apps/pt-dummy-app" });
    const patch = heroku.requests.find((r) => r.method === "PATCH")!;
    expect(patch.path).toBe("/apps/pt-dummy-app/formation");
    expect(JSON.parse(patch.body)).toEqual({ updates: [{ type: "web", docker_image: CONFIG_DIGEST }] });
    expectNoSecretLeaked();
  });

  it("with a commit, waits until the app's web URL serves it: /version polled until the new commit shows", {
    timeout: 30_000,
  }, async () => {
    let probes = 0;
    // The app: the old commit before the deploy and at the first probe after (still booting), then the one released.
    const app = createServer((req, res) => {
      probes += 1;
      const commit = probes < 3 ? "old" : COMMIT;
      res
        .writeHead(req.url === "/version" ? 200 : 404, { "Content-Type": "application/json" })
        .end(JSON.stringify({ commit }));
    });
    await new Promise<void>((resolve) => app.listen(0, "127.0.0.1", resolve));
    const webUrl = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
    heroku.webUrls.set("pt-dummy-app", `${webUrl}/`);
    try {
      // Real time: the probe pauses 5 s between tries (fake timers would also stall the HTTP clients' timeouts).
      const report = await deploy();
      expect(report).toBe(
        `released pt-dummy-app v4 (web) with image ${CONFIG_DIGEST}; ${webUrl}/version reports ${COMMIT}`,
      );
      expect(probes).toBe(3);
    } finally {
      app.close();
    }
  });

  it("stops before pushing when the app is not on the container stack, saying how to fix it", async () => {
    heroku.stacks.set("pt-dummy-app", "heroku-24");
    const error = await deploy().catch((e: unknown) => e);
    expect((error as Error).message).toContain("heroku stack:set container -a pt-dummy-app");
    expect(publishes()).toEqual([]);
    expectNoSecretLeaked(error);
  });

  it("reports an image the app already runs as success, without waiting for a release Heroku does not make", async () => {
    await deploy({ commit: undefined });
    expect(await deploy({ commit: undefined })).toBe(
      `pt-dummy-app (web) is already running ${CONFIG_DIGEST} as v4; no new release`,
    );
    expect(heroku.releasesOf("pt-dummy-app")).toHaveLength(4);
  });

  it("rolls a failed release back by default, and not with --rollback=false", async () => {
    heroku.releasePlan = { pendingReads: 0, outcome: "failed" };
    const rolledBack = await deploy().catch((e: unknown) => e);
    expect((rolledBack as Error).message).toMatch(
      /^Heroku release v4 of pt-dummy-app failed: no release output; .*; rolled back to v3 \(as v5\)$/,
    );
    const kept = await deploy({ rollback: false }).catch((e: unknown) => e);
    expect((kept as Error).message).toMatch(
      /^Heroku release v6 of pt-dummy-app failed: .*; not rolled back \(rollback disabled\)$/,
    );
    expect(heroku.requests.filter((r) => r.method === "POST")).toHaveLength(1);
    expectNoSecretLeaked(kept);
  });

  it("stops before pushing when the app is a Fir-generation app, saying container releases need Cedar", async () => {
    heroku.addApp("fir-app", "cnb", 2, "fir");
    const error = await engine
      .run(() => defaultModule().deployHeroku("fir-app", secret("HEROKU_TOKEN"), "web", heroku.url, registry.host))
      .catch((e: unknown) => e);
    expect((error as Error).message).toContain(
      "Heroku app fir-app is a fir-generation app; container releases need a Cedar-generation app",
    );
    expect((error as Error).message).not.toContain("stack:set");
    expect(publishes()).toEqual([]);
  });

  it.each(["Web", "-web", "_web", "web_", "web.1", "web--", "a".repeat(31)])(
    "refuses process type %j, which registry.heroku.com/<app>/<type> cannot take, before any query",
    async (processType) => {
      await expect(deploy({ processType })).rejects.toThrow(
        `"${processType}" is not a process type registry.heroku.com accepts: lower-case letters and digits, joined by _, __ or -`,
      );
      expect(engine.queries).toEqual([]);
    },
  );

  it("takes process types the registry and Procfiles both allow", async () => {
    for (const processType of ["worker", "web-2", "release__job", "a--b"]) {
      heroku.pushImage("pt-dummy-app", processType, CONFIG_DIGEST);
      await expect(deploy({ processType, commit: undefined })).resolves.toMatch(
        new RegExp(`^released pt-dummy-app v\\d+ \\(${processType}\\)`),
      );
    }
  });

  it("reports a refused token without the token", async () => {
    const wrong = await HerokuContractDouble.start("another-token");
    wrong.addApp("pt-dummy-app", "container", 1);
    const error = await engine
      .run(() => defaultModule().deployHeroku("pt-dummy-app", secret("HEROKU_TOKEN"), "web", wrong.url, registry.host))
      .catch((e: unknown) => e)
      .finally(() => wrong.close());
    expect((error as Error).message).toMatch(/401/);
    expect(publishes()).toEqual([]);
    expectNoSecretLeaked(error);
  });

  it("refuses a bad app name before any query", async () => {
    await expect(engine.run(() => defaultModule().deployHeroku("Not_An_App", secret("HEROKU_TOKEN")))).rejects.toThrow(
      '"Not_An_App" is not a Heroku app name',
    );
    expect(engine.queries).toEqual([]);
  });
});

describe("ci", () => {
  /** Sends what ci addresses to Heroku's real hosts to the loopback doubles instead. */
  function routeHerokuToDoubles() {
    const realFetch = globalThis.fetch;
    vi.stubGlobal("fetch", (input: string | URL, init?: RequestInit) => {
      const url = String(input)
        .replace("https://api.heroku.com", heroku.url)
        .replace("https://registry.heroku.com", `http://${registry.host}`);
      return realFetch(url, init);
    });
  }

  const allSecrets = () => [secret("DOCKERHUB_USER"), secret("DOCKERHUB_PASS"), secret("HEROKU_TOKEN")] as const;

  it.each([
    { branch: "master", publish: true, deploy: true },
    { branch: "main", publish: true, deploy: true },
    { branch: "feature", publish: true, deploy: false },
    { branch: "x-nohub-y", publish: false, deploy: false },
  ])(
    "on $branch: test, build, smoke; publish to Docker Hub: $publish; deploy to Heroku: $deploy",
    async ({ branch, publish, deploy }) => {
      routeHerokuToDoubles();
      const summary = await engine.run(() => defaultModule().ci(branch, COMMIT, ...allSecrets()));
      const version = `${MANIFEST.version}-${branch}.0123456`;
      const lines = summary.split("\n");
      expect(lines.slice(0, 4)).toEqual([
        `dummyapp ci: branch ${branch}, version ${version}`,
        "test: passed",
        `build: built ${version}, ${version}-heroku`,
        "smoke: passed",
      ]);

      const hub = publishes().filter((chain) => String(chain.at(-1)!.args.address).startsWith("docker.io/"));
      const toHeroku = publishes().filter((chain) =>
        String(chain.at(-1)!.args.address).startsWith("registry.heroku.com/"),
      );
      if (publish) {
        expect(hub.map((chain) => chain.at(-1)!.args.address)).toEqual([
          `docker.io/pennocktech/dummyapp:${version}`,
          `docker.io/pennocktech/dummyapp:${version}-heroku`,
          // The moving alias follows what is deployed, so only main and master move it.
          ...(deploy ? ["docker.io/pennocktech/dummyapp:heroku"] : []),
        ]);
        expect(lines[4]).toMatch(/^publish: docker\.io\/pennocktech\/dummyapp:.*@sha256:/);
      } else {
        expect(hub).toEqual([]);
        expect(lines[4]).toBe('publish: skipped (branch name contains "nohub")');
      }
      if (deploy) {
        expect(toHeroku.map((chain) => chain.at(-1)!.args.address)).toEqual([
          "registry.heroku.com/pt-dummy-app/web:latest",
        ]);
        expect(heroku.requests.filter((r) => r.method === "PATCH")).toHaveLength(1);
        for (const r of [...heroku.requests, ...registry.requests])
          expect(r.headers["user-agent"]).toBe(`dummyapp-ci/${version}`);
        expect(lines[5]).toBe(`deploy: released pt-dummy-app v4 (web) with image ${CONFIG_DIGEST}`);
      } else {
        expect(toHeroku).toEqual([]);
        expect(heroku.requests).toEqual([]);
        expect(lines[5]).toBe("deploy: skipped (only master and main deploy)");
      }
      expectNoSecretLeaked();
    },
  );

  /** Each `from` the engine was asked for, and whether a Docker Hub login comes right before it. */
  function pulls(): { address: string; login?: { address: unknown; username: unknown; secret: string } }[] {
    return allChains(engine.queries).flatMap((chain) =>
      chain.flatMap((call, i) => {
        if (call.field !== "from") return [];
        const before = chain[i - 1];
        const login =
          before?.field === "withRegistryAuth"
            ? { ...before.args, secret: chainFromId(before.args.secret)[0]!.args.id as string }
            : undefined;
        return [
          {
            address: String(call.args.address),
            ...(login ? { login: login as { address: unknown; username: unknown; secret: string } } : {}),
          },
        ];
      }),
    );
  }

  it("with Docker Hub credentials, logs in to Docker Hub before every pull from it, and only there", async () => {
    routeHerokuToDoubles();
    await engine.run(() => defaultModule().ci("feature", COMMIT, ...allSecrets()));
    const seen = pulls();
    const hub = seen.filter((p) => isDockerHub(p.address));
    // The builder (install, tests, revision, smoke client), promtool, the registry and the poems.
    expect(new Set(hub.map((p) => p.address.split(/[:@]/)[0]))).toEqual(
      new Set(["node", "prom/prometheus", "registry", "philpennock/poetry"]),
    );
    for (const p of hub)
      expect(p.login, p.address).toEqual({
        address: "docker.io",
        username: DOCKERHUB_USER,
        secret: "secret:DOCKERHUB_PASS",
      });
    const elsewhere = seen.filter((p) => !isDockerHub(p.address));
    expect(elsewhere.map((p) => p.address)).toEqual(elsewhere.map(() => RUNTIME_IMAGE));
    expect(elsewhere.filter((p) => p.login)).toEqual([]);
    expectNoSecretLeaked();
  });

  it("without them, pulls anonymously; given to the module, every function logs in", async () => {
    await engine.run(() => defaultModule().ci("try-nohub"));
    expect(pulls().filter((p) => p.login)).toEqual([]);

    engine.queries.length = 0;
    const module = defaultModule({ username: secret("DOCKERHUB_USER"), password: secret("DOCKERHUB_PASS") });
    await engine.run(async () => {
      await (await module.build()).sync();
      await module.test();
    });
    const hub = pulls().filter((p) => isDockerHub(p.address));
    expect(hub.length).toBeGreaterThan(3);
    for (const p of hub) expect(p.login?.username, p.address).toBe(DOCKERHUB_USER);
  });

  it("refuses a Docker Hub user without a password before any work", async () => {
    const module = defaultModule({ username: secret("DOCKERHUB_USER") });
    await expect(engine.run(() => module.build())).rejects.toThrow(
      "Docker Hub pulls need both --dockerhub-username and --dockerhub-password",
    );
    expect(engine.queries).toEqual([]);
  });

  it("checks the secrets the branch's steps need before any work, naming them all", async () => {
    await expect(engine.run(() => defaultModule().ci("main", COMMIT))).rejects.toThrow(
      "ci on branch main: missing secret --dockerhub-username, --dockerhub-password, --heroku-token;",
    );
    await expect(engine.run(() => defaultModule().ci("feature", COMMIT, secret("DOCKERHUB_USER")))).rejects.toThrow(
      "ci on branch feature: missing secret --dockerhub-password;",
    );
    expect(engine.queries).toEqual([]);
    // A nohub branch needs none.
    await expect(engine.run(() => defaultModule().ci("try-nohub"))).resolves.toContain("deploy: skipped");
  });

  it("stops at the first failing step and reports what already ran", async () => {
    const failing = await startEngine((leaf, chain) =>
      leaf.field === "stdout" && String(chain.at(-1)?.args.args) === "npm,test"
        ? new EngineError("exit code: 1", { _type: "EXEC_ERROR", exitCode: 1, stderr: "1 test failed" })
        : undefined,
    );
    try {
      const error = await failing.run(() => defaultModule().ci("x-nohub")).catch((e: unknown) => e);
      expect((error as Error).message.split("\n")).toEqual([
        `dummyapp ci: branch x-nohub, version ${MANIFEST.version}-x-nohub.${HEAD.slice(0, 7)}`,
        expect.stringMatching(/^test: FAILED: /),
      ]);
      expect(failing.queries.some((q) => q.chain.some((c) => c.field === "asService"))).toBe(false);
    } finally {
      await failing.close();
    }
  });
});
