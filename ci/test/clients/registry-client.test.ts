// The registry client against a real registry: Debian's docker-registry (CNCF distribution 2.8) on loopback, three ways:
// anonymous, htpasswd Basic auth (what a plain private registry does), and token auth with a Bearer challenge (what
// Docker Hub and registry.heroku.com do). One image is pushed through the HTTP API into storage all three share.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../src/clients/http-util.js";
import { DOCKER_MANIFEST_V2, fetchConfigDigest } from "../../src/clients/registry-client.js";
import {
  type RegistryProcess,
  registryInstalled,
  registryRequired,
  startRegistry,
  startTokenAuthRegistry,
  stopProcess,
  type TokenRequests,
} from "./registry-server.js";

if (!registryInstalled && !registryRequired) {
  console.warn(
    "registry-client tests skipped: docker-registry is not installed (apt-get install docker-registry, as .ci/run does)",
  );
}

const REPO = "pt-dummy-app/web";
const AGENT = "dummyapp-ci/1.2.0";
const TOKEN = `heroku-token-${randomBytes(12).toString("hex")}`;
const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

// A tiny but real image: the layer is an empty tar archive (two zero blocks), gzipped.
const tar = Buffer.alloc(1024);
const layer = gzipSync(tar);
const config = Buffer.from(
  JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [sha256(tar)] },
  }),
);
const manifestOf = (mediaType: string, configType: string, layerType: string) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType,
    config: { mediaType: configType, size: config.length, digest: sha256(config) },
    layers: [{ mediaType: layerType, size: layer.length, digest: sha256(layer) }],
  });
const dockerManifest = manifestOf(
  DOCKER_MANIFEST_V2,
  "application/vnd.docker.container.image.v1+json",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
);
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const ociManifest = manifestOf(
  OCI_MANIFEST,
  "application/vnd.oci.image.config.v1+json",
  "application/vnd.oci.image.layer.v1.tar+gzip",
);

/** The rejection of `promise`, which must be an ApiError. */
async function failure(promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

/** Pushes config + layer blobs (monolithic uploads) and a manifest; returns the manifest digest the registry reports. */
async function pushImage(base: string, tag: string, manifest: string, mediaType: string): Promise<string> {
  for (const blob of [config, layer]) {
    const start = await fetch(`${base}/v2/${REPO}/blobs/uploads/`, { method: "POST" });
    expect(start.status).toBe(202);
    const upload = new URL(start.headers.get("location")!, base);
    upload.searchParams.set("digest", sha256(blob));
    const put = await fetch(upload, {
      method: "PUT",
      headers: { "Content-Type": "application/octet-stream" },
      body: blob,
    });
    expect(put.status).toBe(201);
  }
  const put = await fetch(`${base}/v2/${REPO}/manifests/${tag}`, {
    method: "PUT",
    headers: { "Content-Type": mediaType },
    body: manifest,
  });
  expect(put.status, await put.clone().text()).toBe(201);
  return put.headers.get("docker-content-digest")!;
}

/** An htpasswd line with a bcrypt hash, from the system's crypt(3) via perl (Debian's libxcrypt does `$2b$`). */
function htpasswdLine(user: string, password: string): string {
  const alphabet = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  // 22 salt characters; the last one carries only 2 bits, so pick it from those whose other bits are zero.
  const salt = [...randomBytes(21)].map((b) => alphabet[b % 64]).join("") + ".Oeu"[randomBytes(1)[0]! % 4];
  const hash = execFileSync("perl", ["-e", "print crypt($ARGV[0], $ARGV[1])", password, `$2b$04$${salt}`]).toString();
  if (!hash.startsWith("$2b$04$")) throw new Error(`crypt(3) did not produce a bcrypt hash: ${hash}`);
  return `${user}:${hash}\n`;
}

describe.skipIf(!registryInstalled && !registryRequired)("registry client against a real docker-registry", () => {
  let dir: string;
  const running: RegistryProcess[] = [];
  let tokenServer: Server | undefined;
  const tokenSeen: TokenRequests = { urls: [], agents: [] };
  const { urls: tokenRequests, agents: tokenAgents } = tokenSeen;
  /** User-Agent of every request the client sent to the registries (through a recording fetch). */
  const registryAgents: (string | null)[] = [];
  const recording: typeof fetch = (input, init) => {
    registryAgents.push(new Headers(init?.headers).get("user-agent"));
    return fetch(input, init);
  };
  let open: RegistryProcess;
  let basicAuth: RegistryProcess;
  let tokenAuth: RegistryProcess;
  let configDigest: string;
  let manifestDigest: string;
  let ociDigest: string;

  beforeAll(async () => {
    if (!registryInstalled)
      throw new Error("docker-registry is not installed, and CI=true requires it: apt-get install docker-registry");
    dir = mkdtempSync(join(tmpdir(), "registry-client-test-"));
    const storage = join(dir, "storage");
    open = await startRegistry(dir, "open", storage);
    running.push(open);
    configDigest = sha256(config);
    manifestDigest = await pushImage(open.url, "latest", dockerManifest, DOCKER_MANIFEST_V2);
    ociDigest = await pushImage(open.url, "oci", ociManifest, OCI_MANIFEST);

    writeFileSync(join(dir, "htpasswd"), htpasswdLine("_", TOKEN));
    basicAuth = await startRegistry(
      dir,
      "basic",
      storage,
      `auth: {htpasswd: {realm: test-realm, path: ${join(dir, "htpasswd")}}}`,
    );
    running.push(basicAuth);

    ({ registry: tokenAuth, tokenServer } = await startTokenAuthRegistry(
      dir,
      storage,
      { user: "_", password: TOKEN },
      tokenSeen,
    ));
    running.push(tokenAuth);
  });

  afterAll(async () => {
    await Promise.all(running.map((r) => stopProcess(r.process)));
    await new Promise((resolve) => (tokenServer ? tokenServer.close(resolve) : resolve(undefined)));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const digestOf = (
    registry: RegistryProcess,
    reference: string,
    credentials: { username?: string; password?: string } = {},
  ) =>
    fetchConfigDigest({
      registryUrl: registry.url,
      repository: REPO,
      reference,
      userAgent: AGENT,
      fetch: recording,
      ...credentials,
    });

  it("returns the pushed image's config digest, by tag and by manifest digest", async () => {
    expect(configDigest).not.toBe(manifestDigest);
    expect(await digestOf(open, "latest")).toBe(configDigest);
    expect(await digestOf(open, manifestDigest)).toBe(configDigest);
  });

  it("reports a missing tag with the registry's error code, on one line", async () => {
    const err = await failure(digestOf(open, "nope"));
    expect(err.status).toBe(404);
    expect(err.code).toBe("MANIFEST_UNKNOWN");
    expect(err.message).toMatch(
      /^GET http:\/\/127\.0\.0\.1:\d+\/v2\/pt-dummy-app\/web\/manifests\/nope: 404 Not Found \(MANIFEST_UNKNOWN: /,
    );
    expect(err.message).not.toContain("\n");
  });

  it("reports an OCI manifest, which Docker-only clients (and Heroku) cannot use, by tag and by digest", async () => {
    for (const reference of ["oci", ociDigest]) {
      const err = await failure(digestOf(open, reference));
      expect(err.message).toContain(
        "(MANIFEST_UNKNOWN: OCI manifest found, but accept header does not support OCI manifests)",
      );
    }
  });

  it("authenticates with htpasswd Basic auth as `_` and the token", async () => {
    expect(await digestOf(basicAuth, "latest", { username: "_", password: TOKEN })).toBe(configDigest);
  });

  it("fails clearly with a wrong or missing token, and never shows the token", async () => {
    const wrong = await failure(digestOf(basicAuth, "latest", { username: "_", password: `${TOKEN}-wrong` }));
    expect(wrong.status).toBe(401);
    expect(wrong.message).toContain("401 Unauthorized (UNAUTHORIZED: authentication required)");
    expect(wrong.message).not.toContain(TOKEN);
    const missing = await failure(digestOf(basicAuth, "latest"));
    expect(missing.code).toBe("UNAUTHORIZED");
  });

  it("does the Bearer token exchange with the Basic credentials, as on Docker Hub and Heroku, saying who it is", async () => {
    tokenRequests.length = 0;
    tokenAgents.length = 0;
    registryAgents.length = 0;
    expect(await digestOf(tokenAuth, manifestDigest, { username: "_", password: TOKEN })).toBe(configDigest);
    // Manifest (401), token, manifest again: every one with the module's User-Agent.
    expect(registryAgents).toEqual([AGENT, AGENT, AGENT]);
    expect(tokenAgents).toEqual([AGENT]);
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.searchParams.get("service")).toBe("test-registry");
    expect(tokenRequests[0]!.searchParams.get("scope")).toBe(`repository:${REPO}:pull`);
  });

  it("reports a token-server refusal with its details, without the token", async () => {
    const err = await failure(digestOf(tokenAuth, "latest", { username: "_", password: `x${TOKEN}` }));
    expect(err.message).toMatch(
      /^token request to http:\/\/127\.0\.0\.1:\d+\/token: 401 Unauthorized \(incorrect username or password\)$/,
    );
    expect(err.message).not.toContain(TOKEN);
  });
});

describe("registry client edge cases (fetch double, no registry)", () => {
  const manifestUrl = "https://registry.example.test/v2/app/web/manifests/latest";

  it("scrubs the password from anything the registry echoes back", async () => {
    const echo: typeof fetch = async () =>
      Response.json(
        { errors: [{ code: "DENIED", message: `token ${TOKEN} is revoked` }] },
        { status: 403, statusText: "Forbidden" },
      );
    const err = await failure(
      fetchConfigDigest({
        registryUrl: "registry.example.test",
        repository: "app/web",
        reference: "latest",
        username: "_",
        password: TOKEN,
        fetch: echo,
        userAgent: AGENT,
      }),
    );
    expect(err.message).toBe(`GET ${manifestUrl}: 403 Forbidden (DENIED: token *** is revoked)`);
  });

  it("rejects a manifest that is not a Docker v2 image manifest even if the registry ignores Accept", async () => {
    const index: typeof fetch = async () =>
      Response.json({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json", manifests: [] });
    const err = await failure(
      fetchConfigDigest({
        registryUrl: "registry.example.test",
        repository: "app/web",
        reference: "latest",
        fetch: index,
        userAgent: AGENT,
      }),
    );
    expect(err.message).toBe(
      `GET ${manifestUrl}: got application/vnd.oci.image.index.v1+json, not a Docker v2 image manifest; ` +
        "publish a single-platform image with Docker media types",
    );
  });

  it("refuses a Docker v2 manifest whose config digest is not sha256:<64 hex>, quoting it on one line", async () => {
    for (const [config, quoted] of [
      [
        { mediaType: "application/vnd.docker.container.image.v1+json", digest: `sha256:${"A".repeat(64)}` },
        `sha256:${"A".repeat(64)}`,
      ],
      [{ digest: "sha512:abc\nsha256:def" }, "sha512:abc sha256:def"],
      [{ digest: 42 }, "42"],
      [{}, "undefined"],
      [undefined, "undefined"],
    ] as const) {
      const served: typeof fetch = async () =>
        Response.json({ schemaVersion: 2, mediaType: DOCKER_MANIFEST_V2, config, layers: [] });
      const err = await failure(
        fetchConfigDigest({
          registryUrl: "registry.example.test",
          repository: "app/web",
          reference: "latest",
          fetch: served,
          userAgent: AGENT,
        }),
      );
      expect(err.message).toBe(`GET ${manifestUrl}: config digest ${quoted} is not sha256:<64 hex>`);
    }
  });

  it("gives up on a registry that does not answer, naming the request", async () => {
    const silent: typeof fetch = (_url, init) =>
      new Promise((_resolve, reject) => init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason)));
    const err = await failure(
      fetchConfigDigest({
        registryUrl: "registry.example.test",
        repository: "app/web",
        reference: "latest",
        fetch: silent,
        timeoutMs: 20,
        userAgent: AGENT,
      }),
    );
    expect(err.message).toBe(`GET ${manifestUrl}: The operation was aborted due to timeout`);
  });

  it("refuses to send credentials to a plain-http token realm named by an https registry", async () => {
    const urls: string[] = [];
    const challenge: typeof fetch = async (url) => {
      urls.push(String(url));
      return new Response(null, {
        status: 401,
        headers: { "WWW-Authenticate": 'Bearer realm="http://evil.example.test/token"' },
      });
    };
    const err = await failure(
      fetchConfigDigest({
        registryUrl: "https://registry.example.test",
        repository: "app/web",
        reference: "latest",
        username: "_",
        password: TOKEN,
        fetch: challenge,
        userAgent: AGENT,
      }),
    );
    expect(err.message).toContain("non-https token realm http://evil.example.test; refusing to send credentials");
    expect(urls).toEqual([manifestUrl]);
  });
});
