// The OCI registry client (ci/src/clients/oci-registry.ts) against a fetch double — what a real registry does not do
// on request: bytes that do not match their digest, a Location-less upload, odd challenges and token grants. The same
// client against a real docker-registry is in registry-client.test.ts.
import { describe, expect, it } from "vitest";
import { digestOf } from "../../src/clients/oci-content.js";
import { grantedActions, Registry, type RegistryOptions, registryBaseUrl } from "../../src/clients/oci-registry.js";
// failure(): a one-line ApiError without TOKEN, here the registry password.
import { AGENT, failure, TOKEN as PASSWORD } from "../heroku-fixtures.js";

const BASE = "https://registry.example.test/v2/app/web";
const manifest = Buffer.from(
  JSON.stringify({ schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json" }),
);
const MANIFEST_DIGEST = digestOf(manifest);
const blob = Buffer.from("a layer");

interface Seen {
  method: string;
  url: string;
  headers: Headers;
  body: Buffer | undefined;
}

/** A registry as a function of each request; `seen` records what the client sent. */
function registryOf(answer: (req: Seen) => Response, options: Partial<RegistryOptions> = {}) {
  const seen: Seen[] = [];
  const doFetch: typeof fetch = async (url, init) => {
    const req = {
      method: init?.method ?? "GET",
      url: String(url),
      headers: new Headers(init?.headers),
      body: init?.body ? Buffer.from(init.body as Uint8Array) : undefined,
    };
    seen.push(req);
    return answer(req);
  };
  const registry = new Registry({
    registryUrl: "registry.example.test",
    repository: "app/web",
    userAgent: AGENT,
    fetch: doFetch,
    ...options,
  });
  return { registry, seen, calls: () => seen.map((r) => `${r.method} ${r.url}`) };
}

/** The Authorization header of HTTP Basic for `user:password`. */
const basic = (pair: string) => `Basic ${Buffer.from(pair).toString("base64")}`;

/** A JWT-shaped token whose `access` claim is `access` (unsigned: the client only reads it). */
const jwt = (access: unknown) =>
  ["e30", Buffer.from(JSON.stringify({ access })).toString("base64url"), "sig"].join(".");

const bearer = (realm = "https://auth.example.test/token") =>
  new Response(null, {
    status: 401,
    headers: { "WWW-Authenticate": `Bearer realm="${realm}",service="registry.example.test"` },
  });

describe("registryBaseUrl", () => {
  it("uses https except for loopback registries, which run plain http, and Docker Hub's API host for Docker Hub", () => {
    expect(registryBaseUrl("registry.heroku.com")).toBe("https://registry.heroku.com");
    expect(registryBaseUrl("127.0.0.1:5000")).toBe("http://127.0.0.1:5000");
    expect(registryBaseUrl("127.10.20.30:5000")).toBe("http://127.10.20.30:5000");
    expect(registryBaseUrl("localhost:5000")).toBe("http://localhost:5000");
    expect(registryBaseUrl("localhost")).toBe("http://localhost");
    expect(registryBaseUrl("[::1]:5000")).toBe("http://[::1]:5000");
    expect(registryBaseUrl("localhost.example.com")).toBe("https://localhost.example.com");
    expect(registryBaseUrl("my-localhost:5000")).toBe("https://my-localhost:5000");
    expect(registryBaseUrl("127.0.0.1.example.com")).toBe("https://127.0.0.1.example.com");
    for (const hub of ["docker.io", "index.docker.io", "registry-1.docker.io"])
      expect(registryBaseUrl(hub)).toBe("https://registry-1.docker.io");
    expect(registryBaseUrl("http://127.0.0.1:5000//")).toBe("http://127.0.0.1:5000");
  });
});

describe("Registry reads: every byte checked against its digest", () => {
  it("refuses a manifest asked for by digest whose bytes are another's, naming both digests", async () => {
    const { registry } = registryOf(() => new Response(Buffer.from(`${manifest} `)));
    const err = await failure(registry.getManifest(MANIFEST_DIGEST, ["application/vnd.oci.image.index.v1+json"]));
    expect(err.message).toBe(
      `GET ${BASE}/manifests/${MANIFEST_DIGEST}: the manifest's bytes are ${digestOf(`${manifest} `)}, not ${MANIFEST_DIGEST}`,
    );
  });

  it("by tag, checks the bytes against the Docker-Content-Digest the registry reports, and needs none", async () => {
    const lying = registryOf(() => new Response(manifest, { headers: { "Docker-Content-Digest": digestOf("other") } }));
    expect((await failure(lying.registry.getManifest("latest", []))).message).toBe(
      `GET ${BASE}/manifests/latest: the manifest's bytes are ${MANIFEST_DIGEST}, not ${digestOf("other")}`,
    );
    const honest = registryOf(() => new Response(manifest, { headers: { "Docker-Content-Digest": MANIFEST_DIGEST } }));
    await expect(honest.registry.getManifest("latest", ["a", "b"])).resolves.toEqual({
      mediaType: "application/vnd.oci.image.index.v1+json",
      digest: MANIFEST_DIGEST,
      bytes: manifest,
    });
    expect(honest.seen[0]!.headers.get("accept")).toBe("a, b");
    const silent = registryOf(() => new Response(manifest));
    await expect(silent.registry.getManifest("latest", [])).resolves.toMatchObject({ digest: MANIFEST_DIGEST });
  });

  it("takes the media type from the manifest, else from Content-Type, else calls it unknown", async () => {
    const bare = Buffer.from(JSON.stringify({ schemaVersion: 2 }));
    const typed = registryOf(() => new Response(bare, { headers: { "Content-Type": "application/x-typed" } }));
    expect((await typed.registry.getManifest("latest", [])).mediaType).toBe("application/x-typed");
    const untyped = registryOf(() => new Response(bare));
    expect((await untyped.registry.getManifest("latest", [])).mediaType).toBe("unknown");
  });

  it("refuses a blob whose bytes do not hash to its digest", async () => {
    const { registry } = registryOf(() => new Response(Buffer.from("not the layer")));
    const err = await failure(registry.getBlob(digestOf(blob)));
    expect(err.message).toBe(`GET ${BASE}/blobs/${digestOf(blob)}: the blob's bytes are ${digestOf("not the layer")}`);
    const good = registryOf(() => new Response(blob));
    expect(await good.registry.getBlob(digestOf(blob))).toEqual(blob);
  });
});

describe("Registry writes", () => {
  it("puts a manifest and refuses a registry that says it stored other bytes", async () => {
    const lying = registryOf(
      () => new Response(null, { status: 201, headers: { "Docker-Content-Digest": digestOf("x") } }),
    );
    const err = await failure(lying.registry.putManifest("v1", "application/x-m", manifest));
    expect(err.message).toBe(`PUT ${BASE}/manifests/v1: the registry stored ${digestOf("x")}, not ${MANIFEST_DIGEST}`);
    const honest = registryOf(
      () => new Response(null, { status: 201, headers: { "Docker-Content-Digest": MANIFEST_DIGEST } }),
    );
    expect(await honest.registry.putManifest("v1", "application/x-m", manifest)).toBe(MANIFEST_DIGEST);
    expect(honest.seen[0]!.headers.get("content-type")).toBe("application/x-m");
    expect(honest.seen[0]!.body).toEqual(manifest);
  });

  it("uploads nothing when the registry has the blob already", async () => {
    const { registry, calls } = registryOf(() => new Response(null, { status: 200 }));
    expect(await registry.putBlob("application/x-b", blob)).toEqual({
      mediaType: "application/x-b",
      digest: digestOf(blob),
      size: blob.length,
    });
    expect(calls()).toEqual([`HEAD ${BASE}/blobs/${digestOf(blob)}`]);
  });

  it("uploads a missing blob in one PUT to the Location it is given, with its digest", async () => {
    const { registry, seen, calls } = registryOf((req) => {
      if (req.method === "HEAD") return new Response(null, { status: 404 });
      if (req.method === "POST")
        return new Response(null, { status: 202, headers: { Location: "/v2/app/web/blobs/uploads/u1?state=s" } });
      return new Response(null, { status: 201 });
    });
    await registry.putBlob("application/x-b", blob);
    expect(calls()).toEqual([
      `HEAD ${BASE}/blobs/${digestOf(blob)}`,
      `POST ${BASE}/blobs/uploads/`,
      `PUT ${BASE}/blobs/uploads/u1?state=s&digest=${encodeURIComponent(digestOf(blob))}`,
    ]);
    expect(seen[2]!.headers.get("content-type")).toBe("application/octet-stream");
    expect(seen[2]!.body).toEqual(blob);
  });

  it("says so when the registry starts an upload without a Location", async () => {
    const { registry } = registryOf((req) => new Response(null, { status: req.method === "HEAD" ? 404 : 202 }));
    const err = await failure(registry.putBlob("application/x-b", blob));
    expect(err.message).toBe(`POST ${BASE}/blobs/uploads/: no Location for the upload`);
  });
});

describe("Registry credentials", () => {
  const authorization = async (options: Partial<RegistryOptions>) => {
    const { registry, seen } = registryOf(() => new Response(blob), options);
    await registry.getBlob(digestOf(blob));
    return seen[0]!.headers.get("authorization");
  };

  it("sends Basic credentials when given either part, nothing for an anonymous registry", async () => {
    expect(await authorization({})).toBeNull();
    expect(await authorization({ username: "_", password: PASSWORD })).toBe(basic(`_:${PASSWORD}`));
    expect(await authorization({ password: PASSWORD })).toBe(basic(`:${PASSWORD}`));
    expect(await authorization({ username: "me" })).toBe(basic("me:"));
  });

  it("asks the token server once per scope and reuses the token; a write asks for pull,push", async () => {
    const { registry, seen, calls } = registryOf(
      (req) => {
        if (req.url.startsWith("https://auth.example.test/")) return Response.json({ access_token: "tok-1" });
        if (req.headers.get("authorization") !== "Bearer tok-1") return bearer();
        return req.method === "HEAD" ? new Response(null, { status: 200 }) : new Response(blob);
      },
      { username: "_", password: PASSWORD },
    );
    await registry.getBlob(digestOf(blob));
    await registry.getBlob(digestOf(blob));
    await registry.putBlob("application/x-b", blob);
    const token = (scope: string) =>
      `GET https://auth.example.test/token?service=registry.example.test&scope=${encodeURIComponent(`repository:app/web:${scope}`)}`;
    expect(calls()).toEqual([
      `GET ${BASE}/blobs/${digestOf(blob)}`,
      token("pull"),
      `GET ${BASE}/blobs/${digestOf(blob)}`,
      `GET ${BASE}/blobs/${digestOf(blob)}`,
      `HEAD ${BASE}/blobs/${digestOf(blob)}`,
      token("pull,push"),
      `HEAD ${BASE}/blobs/${digestOf(blob)}`,
    ]);
    expect(seen[1]!.headers.get("authorization")).toBe(basic(`_:${PASSWORD}`));
    expect(seen[1]!.headers.get("user-agent")).toBe(AGENT);
  });

  it("starts the token exchange only on a 401 with a Bearer challenge", async () => {
    const notFound = registryOf(() => new Response(null, { status: 404, headers: bearer().headers }));
    expect((await failure(notFound.registry.getBlob(digestOf(blob)))).message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 404`,
    );
    const basicChallenge = registryOf(
      () =>
        new Response(null, {
          status: 401,
          statusText: "Unauthorized",
          headers: { "WWW-Authenticate": 'Basic realm="https://auth.example.test/bearer token"' },
        }),
    );
    expect((await failure(basicChallenge.registry.getBlob(digestOf(blob)))).message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 401 Unauthorized`,
    );
    expect([notFound.seen.length, basicChallenge.seen.length]).toEqual([1, 1]);
  });

  it("sends credentials to a plain-http token realm only when the registry itself is plain http (loopback)", async () => {
    const { registry, seen, calls } = registryOf(
      (req) => {
        if (req.url.startsWith("http://127.0.0.1:5001/")) return Response.json({ token: "tok" });
        return req.headers.get("authorization") === "Bearer tok"
          ? new Response(blob)
          : bearer("http://127.0.0.1:5001/t");
      },
      { registryUrl: "127.0.0.1:5000", username: "_", password: PASSWORD },
    );
    expect(await registry.getBlob(digestOf(blob))).toEqual(blob);
    expect(calls()[1]).toMatch(/^GET http:\/\/127\.0\.0\.1:5001\/t\?/);
    expect(seen[1]!.headers.get("authorization")).toBe(basic(`_:${PASSWORD}`));
    const https = registryOf(() => bearer("http://127.0.0.1:5001/t"), { username: "_", password: PASSWORD });
    expect((await failure(https.registry.getBlob(digestOf(blob)))).message).toBe(
      "registry at registry.example.test sent a non-https token realm http://127.0.0.1:5001; refusing to send credentials",
    );
    expect(https.calls()).toEqual([`GET ${BASE}/blobs/${digestOf(blob)}`]);
  });

  it("refuses a token response without a token: empty, missing or not JSON", async () => {
    for (const answer of [() => Response.json({ token: "" }), () => Response.json({}), () => new Response("<html>")]) {
      const { registry } = registryOf(
        (req) => (req.url.startsWith("https://auth.example.test/") ? answer() : bearer()),
        { username: "_", password: PASSWORD },
      );
      expect((await failure(registry.getBlob(digestOf(blob)))).message).toBe(
        "token request to https://auth.example.test/token: response has no token",
      );
    }
  });

  it("reports each of the registry's errors, codes or not, a non-JSON body as text, and no password", async () => {
    const errors = registryOf(
      () =>
        Response.json(
          { errors: [{ code: "DENIED", message: `no push for ${PASSWORD}` }, { message: "second" }] },
          { status: 403, statusText: "Forbidden" },
        ),
      { username: "_", password: PASSWORD },
    );
    const denied = await failure(errors.registry.getBlob(digestOf(blob)));
    expect(denied.message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 403 Forbidden (DENIED: no push for ***; ?: second)`,
    );
    expect([denied.status, denied.code]).toEqual([403, "DENIED"]);
    const proxy = registryOf(() => new Response("upstream\nunavailable", { status: 502, statusText: "Bad Gateway" }));
    expect((await failure(proxy.registry.getBlob(digestOf(blob)))).message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 502 Bad Gateway (upstream unavailable)`,
    );
    const terse = registryOf(() => Response.json({ errors: [{ code: "DENIED" }] }, { status: 403 }));
    expect((await failure(terse.registry.getBlob(digestOf(blob)))).message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 403 (DENIED: )`,
    );
    const empty = registryOf(() => Response.json({}, { status: 500 }));
    expect((await failure(empty.registry.getBlob(digestOf(blob)))).message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 500`,
    );
    const cut = new ReadableStream({ start: (controller) => controller.error(new Error("connection reset")) });
    const unread = registryOf(() => new Response(cut, { status: 502 }));
    expect((await failure(unread.registry.getBlob(digestOf(blob)))).message).toBe(
      `GET ${BASE}/blobs/${digestOf(blob)}: 502`,
    );
  });
});

describe("Registry.checkPushAccess", () => {
  const tokenServer = (token: string, ping = bearer()) =>
    registryOf((req) => (req.url.startsWith("https://auth.example.test/") ? Response.json({ token }) : ping), {
      username: "_",
      password: PASSWORD,
    });

  it("passes a registry that takes the Basic credentials without a challenge, saying who it is", async () => {
    const { registry, seen, calls } = registryOf(() => new Response("{}"), { username: "_", password: PASSWORD });
    await registry.checkPushAccess();
    expect(calls()).toEqual(["GET https://registry.example.test/v2/"]);
    expect(seen[0]!.headers.get("user-agent")).toBe(AGENT);
    expect(seen[0]!.headers.get("authorization")).toBe(basic(`_:${PASSWORD}`));
    const anonymous = registryOf(() => new Response("{}"));
    await anonymous.registry.checkPushAccess();
    expect(anonymous.seen[0]!.headers.get("authorization")).toBeNull();
  });

  it("fails on a refusal that is not a Bearer challenge, hiding the password the registry echoes", async () => {
    for (const [status, statusText, headers] of [
      [401, "Unauthorized", { "WWW-Authenticate": 'Basic realm="registry"' }],
      [404, "Not Found", bearer().headers],
    ] as const) {
      const { registry } = registryOf(
        () => Response.json({ errors: [{ code: "X", message: PASSWORD }] }, { status, statusText, headers }),
        { username: "_", password: PASSWORD },
      );
      expect((await failure(registry.checkPushAccess())).message).toBe(
        `GET https://registry.example.test/v2/: ${status} ${statusText} (X: ***)`,
      );
    }
  });

  it("fails when the token server grants less than push on the repository, and says what it grants", async () => {
    const grants = [
      [[{ type: "repository", name: "app/web", actions: ["pull", "delete"] }], "pull,delete"],
      [[], "no access"],
      [[{ type: "repository", name: "app/other", actions: ["pull", "push"] }], "no access"],
      [[{ type: "registry", name: "app/web", actions: ["push"] }], "no access"],
    ] as const;
    for (const [access, said] of grants) {
      const err = await failure(tokenServer(jwt(access)).registry.checkPushAccess());
      expect(err.message).toBe(`the token server grants ${said} on app/web, not push: the account may not push there`);
    }
  });

  it("keeps a token that grants push for the pushes that follow, and takes a token it cannot read at its word", async () => {
    const token = jwt([{ type: "repository", name: "app/web", actions: ["pull", "push"] }]);
    const { registry, seen, calls } = registryOf((req) => {
      if (req.url.startsWith("https://auth.example.test/")) return Response.json({ token });
      if (req.url.endsWith("/v2/")) return bearer();
      return new Response(null, { status: 200 });
    });
    await registry.checkPushAccess();
    await registry.putBlob("application/x-b", blob);
    expect(calls()).toEqual([
      "GET https://registry.example.test/v2/",
      `GET https://auth.example.test/token?service=registry.example.test&scope=${encodeURIComponent("repository:app/web:pull,push")}`,
      `HEAD ${BASE}/blobs/${digestOf(blob)}`,
    ]);
    expect(seen[2]!.headers.get("authorization")).toBe(`Bearer ${token}`);
    await expect(tokenServer("opaque-token").registry.checkPushAccess()).resolves.toBeUndefined();
  });
});

describe("grantedActions", () => {
  it("reads the access claim of a JWT, and nothing from a token that is not one", () => {
    expect(grantedActions(jwt([{ type: "repository", name: "a/b", actions: ["pull"] }]), "a/b")).toEqual(["pull"]);
    expect(grantedActions("opaque", "a/b")).toBeUndefined();
    expect(grantedActions(`x.${Buffer.from("42").toString("base64url")}.y`, "a/b")).toBeUndefined();
    expect(grantedActions(jwt(undefined), "a/b")).toEqual([]);
    expect(grantedActions(jwt([{ type: "repository", name: "a/b" }]), "a/b")).toEqual([]);
  });
});
