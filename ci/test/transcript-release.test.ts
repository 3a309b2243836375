// Transcript tests for publish, deployHeroku and ci: the module runs under the real SDK against the engine double, and
// its HTTP calls go to loopback stand-ins: a real registry (Debian's docker-registry) for Docker Hub, into which the
// double's "publish" pushes a real index, and for Heroku the Platform API contract double and a one-route registry.
// So the tests see everything the module would send to Docker Hub, registry.heroku.com and api.heroku.com.
import { generateKeyPairSync, verify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dag, type SecretID } from "@dagger.io/dagger";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DOCKER_MANIFEST_V2 } from "../src/clients/registry-client.js";
import { RUNTIME_IMAGE } from "../src/image-refs.js";
import { isDockerHub } from "../src/pull.js";
import {
  type RegistryProcess,
  registryInstalled,
  registryRequired,
  startRegistry as startDockerRegistry,
  stopProcess,
} from "./clients/registry-server.js";
import { type Call, type EngineDouble, EngineError } from "./engine-double.js";
import { HerokuContractDouble } from "./heroku-contract-double.js";
import { type RegistryStub, startRegistry } from "./registry-stub.js";
import {
  allChains,
  builderChainOf,
  callsOf,
  chainFromId,
  checkout,
  defaultModule,
  HEAD,
  MANIFEST,
  publishInto,
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

if (!registryInstalled && registryRequired)
  throw new Error("docker-registry is not installed (apt-get install docker-registry)");

let engine: EngineDouble;
let heroku: HerokuContractDouble;
let registry: RegistryStub;
/** Docker Hub and any other `--registry`, played by one real registry. */
let hub: RegistryProcess;
let hubDir: string;
/** What the Heroku doubles had received when the engine was asked to publish, in order of publish. */
let herokuRequestsAtPublish: number[];
/** What the engine double answered to each publish. */
let publishedRefs: string[];
let output: string[];

beforeAll(async () => {
  hubDir = mkdtempSync(join(tmpdir(), "transcript-hub-"));
  hub = await startDockerRegistry(hubDir, "hub", join(hubDir, "storage"));
  publishAnswer = publishInto(hub.url, () => registry);
});
afterAll(async () => {
  await stopProcess(hub?.process);
  rmSync(hubDir, { recursive: true, force: true });
});

let publishAnswer: (leaf: Call) => Promise<string>;

beforeEach(async () => {
  herokuRequestsAtPublish = [];
  publishedRefs = [];
  engine = await startEngine((leaf: Call, chain: Call[]) => {
    if (leaf.field === "plaintext") return SECRET_VALUES[String(chain[0]?.args.id)];
    if (leaf.field === "publish") {
      herokuRequestsAtPublish.push(heroku.requests.length);
      return publishAnswer(leaf).then((ref) => {
        publishedRefs.push(ref);
        return ref;
      });
    }
    return undefined;
  });
  heroku = await HerokuContractDouble.start(TOKEN);
  heroku.addApp("pt-dummy-app", "container", 3);
  heroku.pushImage("pt-dummy-app", "web", CONFIG_DIGEST);
  registry = await startRegistry(TOKEN, CONFIG_DIGEST);
  routeToDoubles();
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

/** Sends what the module addresses to Docker Hub, registry.example.com and Heroku's hosts to the loopback stand-ins. */
function routeToDoubles() {
  const realFetch = globalThis.fetch;
  vi.stubGlobal("fetch", (input: string | URL, init?: RequestInit) => {
    const url = String(input)
      .replace(/^https:\/\/(registry-1\.docker\.io|registry\.example\.com)\//, `${hub.url}/`)
      .replace("https://api.heroku.com", heroku.url)
      .replace("https://registry.heroku.com", `http://${registry.host}`);
    return realFetch(url, init);
  });
}

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
  it("pushes one linux/amd64 + linux/arm64 index, attests each image and moves every tag to the attested index", async () => {
    const refs = await engine.run(() =>
      defaultModule().publish(
        checkout(),
        ["heroku"],
        undefined,
        undefined,
        secret("DOCKERHUB_USER"),
        secret("DOCKERHUB_PASS"),
        "1.2.0",
      ),
    );
    // The engine pushes once, under the first tag; the module then pushes the attested index under every tag.
    const pushed = publishes();
    expect(pushed).toHaveLength(1);
    const [chain] = pushed as [Call[]];
    expect(chain.at(-1)!.args.address).toBe("docker.io/pennocktech/dummyapp:1.2.0-heroku");
    const attested = refs[0]!.split("@")[1]!;
    expect(refs).toEqual([
      `docker.io/pennocktech/dummyapp:1.2.0-heroku@${attested}`,
      `docker.io/pennocktech/dummyapp:heroku@${attested}`,
    ]);
    expect(attested).not.toBe(publishedRefs[0]!.split("@")[1]);
    // Read back from the registry, independently of the module's client: both tags at the attested index, which holds
    // the engine's two platform images and one attestation manifest for each.
    for (const tag of ["1.2.0-heroku", "heroku"]) {
      const response = await fetch(`${hub.url}/v2/pennocktech/dummyapp/manifests/${tag}`, {
        headers: { Accept: "application/vnd.oci.image.index.v1+json" },
      });
      expect(response.headers.get("docker-content-digest")).toBe(attested);
      const index = (await response.json()) as {
        manifests: { digest: string; platform: { os: string; architecture: string }; annotations?: object }[];
      };
      expect(index.manifests.map((m) => `${m.platform.os}/${m.platform.architecture}`)).toEqual([
        "linux/amd64",
        "linux/arm64",
        "unknown/unknown",
        "unknown/unknown",
      ]);
      expect(index.manifests.slice(2).map((m) => m.annotations)).toEqual(
        index.manifests.slice(0, 2).map((m) => ({
          "vnd.docker.reference.digest": m.digest,
          "vnd.docker.reference.type": "attestation-manifest",
        })),
      );
    }
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
    // The user name and password are read in plain text (the engine's login takes the name so; the attestations go
    // over the registry API with both), and neither is ever printed or sent in a query.
    const plaintext = engine.queries
      .filter((q) => q.chain.at(-1)!.field === "plaintext")
      .map((q) => q.chain[0]!.args.id);
    expect(new Set(plaintext)).toEqual(new Set(["secret:DOCKERHUB_USER", "secret:DOCKERHUB_PASS"]));
    expect(output.join("\n")).toContain("unsigned (no --signing-key)");
    expectNoSecretLeaked();
  });

  it("signs the attested index as cosign does when given a key, and never prints the key", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    SECRET_VALUES["secret:COSIGN_KEY"] = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    try {
      const [ref] = await engine.run(() =>
        defaultModule().publish(
          checkout(),
          [],
          "me/signed",
          "registry.example.com",
          secret("DOCKERHUB_USER"),
          secret("DOCKERHUB_PASS"),
          "3.0.0",
          undefined,
          secret("COSIGN_KEY"),
        ),
      );
      const digest = ref!.split("@")[1]!;
      expect(output.join("\n")).toContain(
        `signed; verify: cosign verify --key cosign.pub --insecure-ignore-tlog=true registry.example.com/me/signed@${digest}`,
      );
      // cosign's layout, read back by hand: the signature manifest under sha256-<hex>.sig, its one layer the payload
      // naming the index digest, the annotation an ECDSA signature the public key verifies.
      const sigManifest = (await (
        await fetch(`${hub.url}/v2/me/signed/manifests/${digest.replace(":", "-")}.sig`, {
          headers: { Accept: "application/vnd.oci.image.manifest.v1+json" },
        })
      ).json()) as { layers: { digest: string; annotations: Record<string, string> }[] };
      const [layer] = sigManifest.layers;
      const payload = Buffer.from(await (await fetch(`${hub.url}/v2/me/signed/blobs/${layer!.digest}`)).arrayBuffer());
      expect(JSON.parse(payload.toString()).critical).toEqual({
        identity: { "docker-reference": "registry.example.com/me/signed" },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      });
      const signature = Buffer.from(layer!.annotations["dev.cosignproject.cosign/signature"]!, "base64");
      expect(verify("sha256", payload, publicKey, signature)).toBe(true);
      const pem = SECRET_VALUES["secret:COSIGN_KEY"]!;
      const seen = [...engine.queries.map((q) => q.text), ...output].join("\n");
      expect(seen).not.toContain(pem.split("\n")[1]);
      expectNoSecretLeaked();
    } finally {
      delete SECRET_VALUES["secret:COSIGN_KEY"];
    }
  });

  it("turns / and , in the version into _ and tags a plain build with the version alone", async () => {
    const refs = await engine.run(() =>
      defaultModule().publish(
        checkout(),
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
      defaultModule().publish(
        checkout(),
        [],
        undefined,
        undefined,
        secret("DOCKERHUB_USER"),
        secret("DOCKERHUB_PASS"),
        "-1.0",
      ),
    );
    await expect(publish).rejects.toThrow('image tag "-1.0" is not a valid Docker tag');
    // The version was given, so nothing at all was asked of the engine: no image pulled or resolved, nothing built.
    expect(engine.queries).toEqual([]);
  });

  it("fails before any query when credentials are missing, naming them", async () => {
    await expect(engine.run(() => defaultModule().publish(checkout(), ["heroku"]))).rejects.toThrow(
      "publish: missing secret --username, --password",
    );
    await expect(
      engine.run(() => defaultModule().publish(checkout(), [], undefined, undefined, secret("DOCKERHUB_USER"))),
    ).rejects.toThrow("publish: missing secret --password;");
    expect(engine.queries).toEqual([]);
  });
});

describe("deployHeroku", () => {
  const deploy = (overrides: { processType?: string; verifyUrl?: string; commit?: string; rollback?: boolean } = {}) =>
    engine.run(() =>
      defaultModule().deployHeroku(
        checkout(),
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

    // The app's stack was checked before any container ran (the preflight) and again before the push (the release's
    // own check); the release names the config digest.
    expect(herokuRequestsAtPublish).toEqual([2]);
    expect(heroku.requests.slice(0, 2)).toMatchObject([
      { method: "GET", path: "/apps/pt-dummy-app" },
      { method: "GET", path: "/apps/pt-dummy-app" },
    ]);
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

  it("stops before any container when the app is not on the container stack, saying how to fix it", async () => {
    heroku.stacks.set("pt-dummy-app", "heroku-24");
    const error = await deploy().catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /^preflight: --token, app pt-dummy-app: .*heroku stack:set container -a pt-dummy-app$/,
    );
    expect(engine.queries.filter((q) => q.chain.some((c) => c.field === "withExec"))).toEqual([]);
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

  it("reports a failed release with its output and never rolls it back: it never went live", async () => {
    heroku.releasePlan = { pendingReads: 0, outcome: "failed" };
    const failed = await deploy().catch((e: unknown) => e);
    expect((failed as Error).message).toMatch(
      /^Heroku release v4 of pt-dummy-app failed: no release output; .*; not rolled back: a failed release never goes live, so v3 is still the current release$/,
    );
    // No rollback was asked of the Platform API (a rollback is a POST to /apps/<app>/releases).
    expect(heroku.requests.filter((r) => r.method === "POST")).toEqual([]);
    expectNoSecretLeaked(failed);
  });

  it("stops before pushing when the app is a Fir-generation app, saying container releases need Cedar", async () => {
    heroku.addApp("fir-app", "cnb", 2, "fir");
    const error = await engine
      .run(() =>
        defaultModule().deployHeroku(checkout(), "fir-app", secret("HEROKU_TOKEN"), "web", heroku.url, registry.host),
      )
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
      .run(() =>
        defaultModule().deployHeroku(
          checkout(),
          "pt-dummy-app",
          secret("HEROKU_TOKEN"),
          "web",
          wrong.url,
          registry.host,
        ),
      )
      .catch((e: unknown) => e)
      .finally(() => wrong.close());
    expect((error as Error).message).toMatch(/401/);
    expect(publishes()).toEqual([]);
    expectNoSecretLeaked(error);
  });

  it("refuses a bad app name before any query", async () => {
    await expect(
      engine.run(() => defaultModule().deployHeroku(checkout(), "Not_An_App", secret("HEROKU_TOKEN"))),
    ).rejects.toThrow('"Not_An_App" is not a Heroku app name');
    expect(engine.queries).toEqual([]);
  });
});

describe("ci", () => {
  const allSecrets = () => [secret("DOCKERHUB_USER"), secret("DOCKERHUB_PASS"), secret("HEROKU_TOKEN")] as const;

  it.each([
    { branch: "master", publish: true, deploy: true },
    { branch: "main", publish: true, deploy: true },
    { branch: "feature", publish: true, deploy: false },
    { branch: "x-nohub-y", publish: false, deploy: false },
  ])(
    "on $branch: test, build, smoke; publish to Docker Hub: $publish; deploy to Heroku: $deploy",
    async ({ branch, publish, deploy }) => {
      const summary = await engine.run(() => defaultModule().ci(checkout(), branch, COMMIT, ...allSecrets()));
      const version = `${MANIFEST.version}-${branch}.0123456`;
      const lines = summary.split("\n");
      expect(lines.slice(0, 4)).toEqual([
        `dummyapp ci: branch ${branch}, version ${version}`,
        "test: passed",
        `build: built ${version}, ${version}-heroku`,
        "smoke: passed",
      ]);

      const toHub = publishes().filter((chain) => String(chain.at(-1)!.args.address).startsWith("docker.io/"));
      const toHeroku = publishes().filter((chain) =>
        String(chain.at(-1)!.args.address).startsWith("registry.heroku.com/"),
      );
      if (publish) {
        // The engine pushes each variant under its first tag; the module moves every tag to the attested index.
        expect(toHub.map((chain) => chain.at(-1)!.args.address)).toEqual([
          `docker.io/pennocktech/dummyapp:${version}`,
          `docker.io/pennocktech/dummyapp:${version}-heroku`,
        ]);
        const published = [...lines[4]!.matchAll(/docker\.io\/pennocktech\/dummyapp:([^@\s]+)@(sha256:[a-f0-9]{64})/g)];
        // The moving alias follows what is deployed, so only main and master move it.
        expect(published.map((m) => m[1])).toEqual([version, `${version}-heroku`, ...(deploy ? ["heroku"] : [])]);
        for (const [, tag, digest] of published) {
          const head = await fetch(`${hub.url}/v2/pennocktech/dummyapp/manifests/${tag}`, {
            method: "HEAD",
            headers: { Accept: "application/vnd.oci.image.index.v1+json" },
          });
          expect(head.headers.get("docker-content-digest"), tag).toBe(digest);
        }
      } else {
        expect(toHub).toEqual([]);
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
    await engine.run(() => defaultModule().ci(checkout(), "feature", COMMIT, ...allSecrets()));
    const seen = pulls();
    const fromHub = seen.filter((p) => isDockerHub(p.address));
    // The builder (install, tests, revision, smoke client), promtool, the registry and the poems.
    expect(new Set(fromHub.map((p) => p.address.split(/[:@]/)[0]))).toEqual(
      new Set(["node", "prom/prometheus", "registry", "philpennock/poetry"]),
    );
    for (const p of fromHub)
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
    await engine.run(() => defaultModule().ci(checkout(), "try-nohub"));
    expect(pulls().filter((p) => p.login)).toEqual([]);

    engine.queries.length = 0;
    const module = defaultModule({ username: secret("DOCKERHUB_USER"), password: secret("DOCKERHUB_PASS") });
    await engine.run(async () => {
      await (await module.build(checkout())).sync();
      await module.test();
    });
    const fromHub = pulls().filter((p) => isDockerHub(p.address));
    expect(fromHub.length).toBeGreaterThan(3);
    for (const p of fromHub) expect(p.login?.username, p.address).toBe(DOCKERHUB_USER);
  });

  it("refuses a Docker Hub user without a password before any work", async () => {
    const module = defaultModule({ username: secret("DOCKERHUB_USER") });
    await expect(engine.run(() => module.build(checkout()))).rejects.toThrow(
      "Docker Hub pulls need both --dockerhub-username and --dockerhub-password",
    );
    expect(engine.queries).toEqual([]);
  });

  it("checks the secrets the branch's steps need before any work, naming them all", async () => {
    await expect(engine.run(() => defaultModule().ci(checkout(), "main", COMMIT))).rejects.toThrow(
      "ci on branch main: missing secret --dockerhub-username, --dockerhub-password, --heroku-token;",
    );
    await expect(
      engine.run(() => defaultModule().ci(checkout(), "feature", COMMIT, secret("DOCKERHUB_USER"))),
    ).rejects.toThrow("ci on branch feature: missing secret --dockerhub-password;");
    expect(engine.queries).toEqual([]);
    // A nohub branch needs none.
    await expect(engine.run(() => defaultModule().ci(checkout(), "try-nohub"))).resolves.toContain("deploy: skipped");
  });

  it("on a pull request from a fork, with no secrets: test, build and smoke, then publish and deploy skipped saying why", async () => {
    const summary = await engine.run(() =>
      defaultModule().ci(
        checkout(),
        "main",
        COMMIT,
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        undefined,
        true,
      ),
    );
    expect(summary.split("\n").slice(1)).toEqual([
      "test: passed",
      `build: built ${MANIFEST.version}-main.0123456, ${MANIFEST.version}-main.0123456-heroku`,
      "smoke: passed",
      "publish: skipped (a pull request from a fork gets no secrets)",
      "deploy: skipped (a pull request from a fork gets no secrets)",
    ]);
    expect(publishes()).toEqual([]);
    expect(heroku.requests).toEqual([]);
  });

  /** The queries that run a container (any exec). */
  const containersRun = () => engine.queries.filter((q) => q.chain.some((c) => c.field === "withExec"));

  it("refuses a revoked Heroku token on main before any container, in one line naming it; a branch that does not deploy does not check it", async () => {
    SECRET_VALUES["secret:REVOKED"] = "revoked-heroku-token";
    try {
      const [user, pass] = allSecrets();
      const error = await engine
        .run(() => defaultModule().ci(checkout(), "main", COMMIT, user, pass, secret("REVOKED")))
        .catch((e: unknown) => e);
      expect((error as Error).message).toMatch(/^preflight: --heroku-token, app pt-dummy-app: .*401[^\n]*$/);
      expect(containersRun()).toEqual([]);
      expect(publishes()).toEqual([]);
      expectNoSecretLeaked(error);
      heroku.requests.length = 0;
      await engine.run(() => defaultModule().ci(checkout(), "feature", COMMIT, user, pass, secret("REVOKED")));
      expect(heroku.requests).toEqual([]);
    } finally {
      delete SECRET_VALUES["secret:REVOKED"];
    }
  });

  it("refuses Docker Hub credentials the registry rejects before any container, in one line naming them", async () => {
    const realFetch = globalThis.fetch;
    vi.stubGlobal("fetch", (input: string | URL, init?: RequestInit) =>
      String(input) === "https://registry-1.docker.io/v2/"
        ? Promise.resolve(
            new Response(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }), {
              status: 401,
              headers: { "Content-Type": "application/json" },
            }),
          )
        : realFetch(input, init),
    );
    const error = await engine
      .run(() => defaultModule().ci(checkout(), "feature", COMMIT, ...allSecrets()))
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe(
      "preflight: --dockerhub-username/--dockerhub-password cannot push to docker.io/pennocktech/dummyapp: GET https://registry-1.docker.io/v2/: 401 (UNAUTHORIZED: authentication required)",
    );
    expect(containersRun()).toEqual([]);
    // A nohub branch publishes nothing, so it does not check.
    await expect(
      engine.run(() => defaultModule().ci(checkout(), "x-nohub", COMMIT, ...allSecrets())),
    ).resolves.toContain("publish: skipped");
  });

  /** Which simulated step a leaf is: the exec or push that does its work (undefined for everything else). */
  function stepOf(leaf: Call, chain: Call[]): "test" | "build" | "smoke" | "publish" | "deploy" | undefined {
    const argv = callsOf(chain, "withExec").at(-1)?.args.args as string[] | undefined;
    if (leaf.field === "stdout" && argv?.join(" ") === "npm test") return "test";
    if (leaf.field === "sync" && chain[1]?.args.address === RUNTIME_IMAGE) return "build";
    if (leaf.field === "stdout" && callsOf(chain, "withServiceBinding").length > 0) return "smoke";
    if (leaf.field === "publish") return String(leaf.args.address).startsWith("docker.io/") ? "publish" : "deploy";
    return undefined;
  }

  it("runs test alongside build → smoke, publishes when both are done, deploys after: max(test, build + smoke) + publish + deploy, not their sum", {
    timeout: 300_000,
  }, async () => {
    const ci = () => engine.run(() => defaultModule().ci(checkout(), "main", COMMIT, ...allSecrets()));
    // The module's own time on this machine right now, with no simulated work: the overhead the bound allows for.
    let started = performance.now();
    await ci();
    const overhead = performance.now() - started;
    // Simulated work in units of the overhead: the gap between the graph and the sum (4 units) holds 3× the overhead.
    const unit = Math.max(500, overhead);
    const work = { test: 4, build: 2, smoke: 2, publish: 1, deploy: 1 };
    const graph = (Math.max(work.test, work.build + work.smoke) + work.publish + work.deploy) * unit;
    const sum = Object.values(work).reduce((a, b) => a + b) * unit;
    const spans: Record<string, { start: number; end: number }[]> = {};
    engine.delay = (leaf, chain) => {
      const step = stepOf(leaf, chain);
      if (!step) return 0;
      const start = performance.now();
      spans[step] = [...(spans[step] ?? []), { start, end: start + work[step] * unit }];
      return work[step] * unit;
    };
    started = performance.now();
    const summary = await ci();
    const elapsed = performance.now() - started;

    expect(summary.split("\n").map((line) => line.split(":")[0])).toEqual([
      expect.stringMatching(/^dummyapp ci/),
      "test",
      "build",
      "smoke",
      "publish",
      "deploy",
    ]);
    // Each step's work as the engine saw it: both variants at once within a step (one span each).
    expect(Object.fromEntries(Object.entries(spans).map(([step, s]) => [step, s.length]))).toEqual({
      test: 1,
      build: 2,
      smoke: 2,
      publish: 2,
      deploy: 1,
    });
    const first = (step: string) => Math.min(...spans[step]!.map((s) => s.start));
    const last = (step: string) => Math.max(...spans[step]!.map((s) => s.end));
    // test overlaps build and smoke; publish waits for both; deploy for publish.
    expect(first("build")).toBeLessThan(last("test"));
    expect(first("test")).toBeLessThan(last("build"));
    expect(first("smoke")).toBeGreaterThanOrEqual(last("build"));
    expect(first("publish")).toBeGreaterThanOrEqual(Math.max(last("test"), last("smoke")));
    expect(first("deploy")).toBeGreaterThanOrEqual(last("publish"));
    // The serial order takes at least the sum; the graph about max(test, build + smoke) + publish + deploy.
    const report = `elapsed ${Math.round(elapsed)} ms; graph ${graph} ms, sum ${sum} ms, overhead ${Math.round(overhead)} ms`;
    expect(elapsed, report).toBeGreaterThanOrEqual(graph);
    expect(elapsed, report).toBeLessThan(graph + 3 * overhead);
    expect(graph + 3 * overhead).toBeLessThan(sum);
  });

  it("reports a test that fails while build runs and how build and smoke ended, in order, and publishes nothing", async () => {
    const failing = await startEngine((leaf, chain) => {
      if (leaf.field === "plaintext") return SECRET_VALUES[String(chain[0]?.args.id)];
      return stepOf(leaf, chain) === "test"
        ? new EngineError("exit code: 1", { _type: "EXEC_ERROR", exitCode: 1, stderr: "1 test failed" })
        : undefined;
    });
    // The test fails at once; the build is still running then and finishes after.
    failing.delay = (leaf, chain) => (stepOf(leaf, chain) === "build" ? 300 : 0);
    try {
      const error = await failing
        .run(() => defaultModule().ci(checkout(), "feature", COMMIT, ...allSecrets()))
        .catch((e: unknown) => e);
      const version = `${MANIFEST.version}-feature.0123456`;
      expect((error as Error).message.split("\n")).toEqual([
        `dummyapp ci: branch feature, version ${version}`,
        "test: FAILED: exit code: 1",
        `build: built ${version}, ${version}-heroku`,
        "smoke: passed",
      ]);
      expect(failing.queries.filter((q) => q.chain.at(-1)!.field === "publish")).toEqual([]);
    } finally {
      await failing.close();
    }
  });

  it("reports a build that fails while test runs, after test's own line, and neither smokes nor publishes", async () => {
    const failing = await startEngine((leaf, chain) =>
      stepOf(leaf, chain) === "build" ? new EngineError("failed to build: npm run build exited 2") : undefined,
    );
    failing.delay = (leaf, chain) => (stepOf(leaf, chain) === "test" ? 300 : 0);
    try {
      const error = await failing.run(() => defaultModule().ci(checkout(), "x-nohub")).catch((e: unknown) => e);
      expect((error as Error).message.split("\n")).toEqual([
        `dummyapp ci: branch x-nohub, version ${MANIFEST.version}-x-nohub.${HEAD.slice(0, 7)}`,
        "test: passed",
        expect.stringMatching(/^build: FAILED: .*npm run build exited 2/),
      ]);
      expect(failing.queries.some((q) => q.chain.some((c) => c.field === "asService"))).toBe(false);
    } finally {
      await failing.close();
    }
  });
});
