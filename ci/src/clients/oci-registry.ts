/**
 * A small client of the OCI Distribution API (Docker Registry HTTP API v2): manifests and blobs, read and written,
 * every byte checked against its digest. It speaks HTTP Basic, and the Bearer token exchange that Docker Hub and
 * registry.heroku.com ask for with `401` + `WWW-Authenticate: Bearer realm=…`. The engine pushes images; this client
 * reads what it pushed and adds what the engine cannot: attestations, the index that carries them, signatures. What it
 * carries (media types, digests, descriptors, manifests) is in oci-content.ts.
 */
import { ApiError, type Fetch, oneLine, redact, send } from "./http-util.js";
import { type Descriptor, DIGEST_PATTERN, digestOf } from "./oci-content.js";

/** A manifest or index as read from the registry: its bytes, their digest and media type. */
export interface Fetched {
  mediaType: string;
  digest: string;
  bytes: Buffer;
}

/** Where a {@link Registry} connects, and as whom. */
export interface RegistryOptions {
  /** Registry base URL (`https://registry.heroku.com`) or bare host (`docker.io`, meaning Docker Hub's API host). */
  registryUrl: string;
  /** Repository name, e.g. `pennocktech/dummyapp`. */
  repository: string;
  /** Basic-auth user; leave user and password out for an anonymous registry. */
  username?: string;
  /** Basic-auth password or token. Never appears in errors. */
  password?: string;
  /** Sent as `User-Agent` to the registry and its token server. */
  userAgent: string;
  /** Injected for tests; the global `fetch` otherwise. */
  fetch?: Fetch;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
}

/** Docker Hub's names for itself in references; its API lives at registry-1.docker.io. */
export const DOCKER_HUB_HOSTS = new Set(["docker.io", "index.docker.io", "registry-1.docker.io"]);

/** The API base URL for a registry as a reference names it. */
export function registryBaseUrl(registry: string): string {
  if (DOCKER_HUB_HOSTS.has(registry)) return "https://registry-1.docker.io";
  if (registry.includes("://")) return registry.replace(/\/+$/, "");
  // Loopback registries run plain http: Docker's own rule for `localhost` registries.
  return /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/.test(registry)
    ? `http://${registry}`
    : `https://${registry}`;
}

/** One repository on one registry, with its credentials; a Bearer token, once granted, is reused per scope. */
export class Registry {
  private readonly base: string;
  private readonly doFetch: Fetch;
  private readonly timeoutMs: number;
  private readonly basic: string | undefined;
  /** Bearer tokens by scope: `pull`, or `pull,push`. */
  private readonly tokens = new Map<string, string>();

  constructor(private readonly options: RegistryOptions) {
    this.base = registryBaseUrl(options.registryUrl);
    this.doFetch = options.fetch ?? fetch;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.basic =
      options.username === undefined && options.password === undefined
        ? undefined
        : `Basic ${Buffer.from(`${options.username ?? ""}:${options.password ?? ""}`).toString("base64")}`;
  }

  /** The repository's API URL for `path` (`manifests/latest`, `blobs/sha256:…`). */
  url(path: string): string {
    return `${this.base}/v2/${this.options.repository}/${path}`;
  }

  /**
   * `GET manifests/<reference>` accepting `accept`; checks the bytes against the digest asked for (or the one the
   * registry reports). Throws an {@link ApiError} when it is missing, refused or not what was asked for.
   */
  async getManifest(reference: string, accept: readonly string[]): Promise<Fetched> {
    const url = this.url(`manifests/${reference}`);
    const response = await this.request(url, { headers: { Accept: accept.join(", ") } }, "pull");
    const bytes = Buffer.from(await response.arrayBuffer());
    const digest = digestOf(bytes);
    const claimed = DIGEST_PATTERN.test(reference) ? reference : response.headers.get("docker-content-digest");
    if (claimed && claimed !== digest)
      throw new ApiError(`GET ${url}: the manifest's bytes are ${digest}, not ${claimed}`);
    const declared = (parseJson(bytes) as { mediaType?: unknown } | undefined)?.mediaType;
    const mediaType = typeof declared === "string" ? declared : (response.headers.get("content-type") ?? "unknown");
    return { mediaType, digest, bytes };
  }

  /** `PUT manifests/<reference>` (a tag or the digest); returns the digest of the bytes, checked against the registry's. */
  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const url = this.url(`manifests/${reference}`);
    const response = await this.request(
      url,
      { method: "PUT", headers: { "Content-Type": mediaType }, body: new Uint8Array(bytes) },
      "push",
    );
    await response.body?.cancel();
    const digest = digestOf(bytes);
    const stored = response.headers.get("docker-content-digest");
    if (stored && stored !== digest) throw new ApiError(`PUT ${url}: the registry stored ${stored}, not ${digest}`);
    return digest;
  }

  /** `GET blobs/<digest>`, checked against the digest. */
  async getBlob(digest: string): Promise<Buffer> {
    const url = this.url(`blobs/${digest}`);
    const bytes = Buffer.from(await (await this.request(url, {}, "pull")).arrayBuffer());
    if (digestOf(bytes) !== digest) throw new ApiError(`GET ${url}: the blob's bytes are ${digestOf(bytes)}`);
    return bytes;
  }

  /** Uploads `bytes` as a blob (one monolithic PUT) unless the registry has it; returns its descriptor. */
  async putBlob(mediaType: string, bytes: Buffer): Promise<Descriptor> {
    const digest = digestOf(bytes);
    const descriptor = { mediaType, digest, size: bytes.length };
    const head = await this.request(this.url(`blobs/${digest}`), { method: "HEAD" }, "push", [404]);
    if (head.ok) return descriptor;
    const start = await this.request(this.url("blobs/uploads/"), { method: "POST" }, "push");
    await start.body?.cancel();
    const location = start.headers.get("location");
    if (!location) throw new ApiError(`POST ${this.url("blobs/uploads/")}: no Location for the upload`);
    const upload = new URL(location, this.base);
    upload.searchParams.set("digest", digest);
    const put = await this.request(
      upload.href,
      { method: "PUT", headers: { "Content-Type": "application/octet-stream" }, body: new Uint8Array(bytes) },
      "push",
    );
    await put.body?.cancel();
    return descriptor;
  }

  /**
   * Checks, pushing nothing, that these credentials may push to the repository: pings `/v2/` and, on a Bearer
   * challenge, asks the token server for `pull,push` on the repository, which must grant `push` (the token's `access`
   * claim; Docker Hub grants a read-only account `pull` alone rather than refusing). A registry that accepts the
   * credentials without a challenge is taken at its word. Throws a one-line {@link ApiError} saying what failed.
   */
  async checkPushAccess(): Promise<void> {
    const url = `${this.base}/v2/`;
    const repository = this.options.repository;
    try {
      const headers: Record<string, string> = { "User-Agent": this.options.userAgent };
      if (this.basic) headers.Authorization = this.basic;
      const ping = await send(this.doFetch, url, { headers }, this.timeoutMs);
      const challenge = ping.status === 401 ? bearerChallenge(ping.headers.get("www-authenticate")) : undefined;
      if (ping.ok || challenge) await ping.body?.cancel();
      else throw await registryError(`GET ${url}`, ping);
      if (!challenge) return;
      const token = await this.fetchToken(challenge, `repository:${repository}:pull,push`);
      const granted = grantedActions(token, repository);
      if (granted && !granted.includes("push")) {
        throw new ApiError(
          `the token server grants ${granted.join(",") || "no access"} on ${repository}, not push: the account may not push there`,
        );
      }
      this.tokens.set("pull,push", token);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      throw new ApiError(redact(err.message, [this.options.password]), err.status, err.code, err.requestId);
    }
  }

  /**
   * One request with the credentials the registry asks for: Basic first; on a Bearer challenge, a token for this
   * repository (`pull`, or `pull,push` for writes), kept for the next requests. Statuses in `allowed` are returned;
   * any other failure throws a one-line {@link ApiError} with no credential in it.
   */
  private async request(
    url: string,
    init: RequestInit,
    access: "pull" | "push",
    allowed: number[] = [],
  ): Promise<Response> {
    const scope = access === "push" ? "pull,push" : "pull";
    const attempt = (authorization: string | undefined) => {
      const headers = new Headers(init.headers);
      headers.set("User-Agent", this.options.userAgent);
      if (authorization) headers.set("Authorization", authorization);
      return send(this.doFetch, url, { ...init, headers }, this.timeoutMs);
    };
    try {
      const cached = this.tokens.get(scope);
      let response = await attempt(cached ? `Bearer ${cached}` : this.basic);
      const challenge = response.status === 401 ? bearerChallenge(response.headers.get("www-authenticate")) : undefined;
      if (challenge) {
        await response.body?.cancel();
        const token = await this.fetchToken(challenge, `repository:${this.options.repository}:${scope}`);
        this.tokens.set(scope, token);
        response = await attempt(`Bearer ${token}`);
      }
      if (!response.ok && !allowed.includes(response.status)) {
        throw await registryError(`${init.method ?? "GET"} ${url}`, response);
      }
      return response;
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      // The registry or token server could echo what it was sent; keep the password out of every message.
      throw new ApiError(redact(err.message, [this.options.password]), err.status, err.code, err.requestId);
    }
  }

  /** The token exchange of the Docker registry auth spec: GET realm?service&scope with Basic credentials. */
  private async fetchToken(challenge: BearerChallenge, scope: string): Promise<string> {
    const realm = new URL(challenge.realm);
    // Never send credentials in clear text to a token server the registry named, unless the registry itself is plain http.
    if (realm.protocol !== "https:" && new URL(this.base).protocol === "https:") {
      throw new ApiError(
        `registry at ${new URL(this.base).host} sent a non-https token realm ${realm.origin}; refusing to send credentials`,
      );
    }
    if (challenge.service) realm.searchParams.set("service", challenge.service);
    realm.searchParams.set("scope", scope);
    const headers: Record<string, string> = { "User-Agent": this.options.userAgent };
    if (this.basic) headers.Authorization = this.basic;
    const response = await send(this.doFetch, realm.href, { headers }, this.timeoutMs);
    if (!response.ok) throw await registryError(`token request to ${realm.origin}${realm.pathname}`, response);
    const body = (await response.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
    const token = body.token ?? body.access_token;
    if (typeof token !== "string" || token === "") {
      throw new ApiError(`token request to ${realm.origin}${realm.pathname}: response has no token`, response.status);
    }
    return token;
  }
}

/**
 * The actions a registry token (a JWT, as the Docker token spec issues) grants on `repository`, from its `access`
 * claim; undefined for a token that is not a JWT, whose grants cannot be read.
 */
export function grantedActions(token: string, repository: string): string[] | undefined {
  const claims = parseJson(Buffer.from(token.split(".")[1] ?? "", "base64url")) as
    | { access?: { type?: string; name?: string; actions?: string[] }[] }
    | undefined;
  if (!claims || typeof claims !== "object") return undefined;
  return (claims.access ?? [])
    .filter((grant) => grant.type === "repository" && grant.name === repository)
    .flatMap((grant) => grant.actions ?? []);
}

/** The parameters of a `WWW-Authenticate: Bearer realm="…",service="…",scope="…"` challenge. */
interface BearerChallenge {
  realm: string;
  service?: string;
  scope?: string;
}

function bearerChallenge(header: string | null): BearerChallenge | undefined {
  if (!header || !/^bearer\s/i.test(header)) return undefined;
  const params = Object.fromEntries(
    [...header.matchAll(/(\w+)="([^"]*)"/g)].map(([, key, value]) => [key!.toLowerCase(), value!]),
  );
  return params.realm ? { realm: params.realm, service: params.service, scope: params.scope } : undefined;
}

/**
 * One-line error for a failed registry response: status, then the spec's `{"errors":[{code,message}]}` entries
 * (or Docker Hub's token-server `{"details": …}`).
 */
async function registryError(what: string, response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  const body = parseJson(text) as { errors?: { code?: string; message?: string }[]; details?: string } | undefined;
  const detail = body
    ? (body.errors?.map((e) => `${e.code ?? "?"}: ${e.message ?? ""}`).join("; ") ?? body.details ?? "")
    : text;
  // oneLine drops the space an empty status text leaves.
  const status = `${response.status} ${response.statusText}`;
  return new ApiError(
    oneLine(`${what}: ${status}${detail ? ` (${detail})` : ""}`),
    response.status,
    body?.errors?.[0]?.code,
  );
}

/** JSON of `text`, or undefined when it is not JSON. */
export function parseJson(text: string | Buffer): unknown {
  try {
    return JSON.parse(text.toString());
  } catch {
    return undefined;
  }
}
