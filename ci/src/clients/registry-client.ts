/**
 * A minimal Docker Registry HTTP API v2 client: reads an image's config digest, which is the "image id" Heroku's
 * release API wants (Dagger's `publish` only returns the manifest digest). Speaks HTTP Basic, and the Bearer token
 * exchange that Docker Hub and registry.heroku.com ask for with `401` + `WWW-Authenticate: Bearer realm=…`.
 */
import { ApiError, type Fetch, oneLine, redact, send } from "./http-util.js";

/** The media type Heroku's registry serves and `heroku container:release` asks for. */
export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";

/** A content digest as Docker and Heroku accept it for an image id. */
export const IMAGE_ID_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** What {@link fetchConfigDigest} reads. */
export interface ConfigDigestRequest {
  /** Registry base URL (`https://registry.heroku.com`) or bare host (`registry.heroku.com`, meaning https). */
  registryUrl: string;
  /** Repository name, e.g. `pt-dummy-app/web`. */
  repository: string;
  /** Tag (`latest`) or manifest digest (`sha256:…`). */
  reference: string;
  /** Basic-auth user (`_` for Heroku); leave user and password out for an anonymous registry. */
  username?: string;
  /** Basic-auth password (the Heroku API token). Never appears in errors. */
  password?: string;
  /** Sent as `User-Agent` to the registry and its token server. */
  userAgent: string;
  /** Injected for tests; the global `fetch` otherwise. */
  fetch?: Fetch;
  /** Per-request timeout; default 30 s. */
  timeoutMs?: number;
}

/**
 * Fetches `GET /v2/<repository>/manifests/<reference>` as a Docker v2 schema2 manifest and returns its
 * `config.digest` (`sha256:<64 hex>`). Throws an {@link ApiError} with a one-line message (status and the
 * registry's `errors[].code: message`) when the registry refuses, the manifest is missing, or it is not a
 * single-platform Docker v2 manifest with a valid config digest.
 */
export async function fetchConfigDigest(request: ConfigDigestRequest): Promise<string> {
  try {
    return await readConfigDigest(request);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    // The registry or token server could echo what it was sent; keep the password out of every message.
    throw new ApiError(redact(err.message, [request.password]), err.status, err.code, err.requestId);
  }
}

async function readConfigDigest(request: ConfigDigestRequest): Promise<string> {
  const doFetch = request.fetch ?? fetch;
  const timeoutMs = request.timeoutMs ?? 30_000;
  const base = request.registryUrl.includes("://") ? request.registryUrl : `https://${request.registryUrl}`;
  const url = `${base.replace(/\/+$/, "")}/v2/${request.repository}/manifests/${request.reference}`;
  const basic =
    request.username === undefined && request.password === undefined
      ? undefined
      : `Basic ${Buffer.from(`${request.username ?? ""}:${request.password ?? ""}`).toString("base64")}`;
  const agent = { "User-Agent": request.userAgent };
  const getManifest = (authorization: string | undefined) =>
    send(
      doFetch,
      url,
      { headers: { Accept: DOCKER_MANIFEST_V2, ...agent, ...(authorization ? { Authorization: authorization } : {}) } },
      timeoutMs,
    );

  let response = await getManifest(basic);
  const challenge = response.status === 401 ? bearerChallenge(response.headers.get("www-authenticate")) : undefined;
  if (challenge) {
    await response.body?.cancel();
    const auth = { ...agent, ...(basic ? { Authorization: basic } : {}) };
    const token = await fetchBearerToken(
      doFetch,
      challenge,
      `repository:${request.repository}:pull`,
      auth,
      url,
      timeoutMs,
    );
    response = await getManifest(`Bearer ${token}`);
  }
  if (!response.ok) throw await registryError(`GET ${url}`, response);

  const manifest = (await response.json().catch(() => undefined)) as
    | { mediaType?: string; config?: { digest?: unknown } }
    | undefined;
  const mediaType = manifest?.mediaType ?? response.headers.get("content-type") ?? "unknown";
  if (mediaType !== DOCKER_MANIFEST_V2) {
    throw new ApiError(
      `GET ${url}: got ${mediaType}, not a Docker v2 image manifest; publish a single-platform image with Docker media types`,
    );
  }
  const digest = manifest?.config?.digest;
  if (typeof digest !== "string" || !IMAGE_ID_PATTERN.test(digest)) {
    throw new ApiError(`GET ${url}: config digest ${oneLine(String(digest), 80)} is not sha256:<64 hex>`);
  }
  return digest;
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

/** The token exchange of the Docker registry auth spec: GET realm?service&scope with `headers` (User-Agent, Basic credentials). */
async function fetchBearerToken(
  doFetch: Fetch,
  challenge: BearerChallenge,
  defaultScope: string,
  headers: Record<string, string>,
  registryUrl: string,
  timeoutMs: number,
): Promise<string> {
  const realm = new URL(challenge.realm);
  // Never send credentials in clear text to a token server the registry named, unless the registry itself is plain http.
  if (realm.protocol !== "https:" && new URL(registryUrl).protocol === "https:") {
    throw new ApiError(
      `registry at ${new URL(registryUrl).host} sent a non-https token realm ${realm.origin}; refusing to send credentials`,
    );
  }
  if (challenge.service) realm.searchParams.set("service", challenge.service);
  realm.searchParams.set("scope", challenge.scope ?? defaultScope);
  const response = await send(doFetch, realm.href, { headers }, timeoutMs);
  if (!response.ok) throw await registryError(`token request to ${realm.origin}${realm.pathname}`, response);
  const body = (await response.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown };
  const token = body.token ?? body.access_token;
  if (typeof token !== "string" || token === "") {
    throw new ApiError(`token request to ${realm.origin}${realm.pathname}: response has no token`, response.status);
  }
  return token;
}

/**
 * One-line error for a failed registry response: status, then the spec's `{"errors":[{code,message}]}` entries
 * (or Docker Hub's token-server `{"details": …}`).
 */
async function registryError(what: string, response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let detail = "";
  let code: string | undefined;
  try {
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[]; details?: string };
    code = body.errors?.[0]?.code;
    detail = body.errors?.map((e) => `${e.code ?? "?"}: ${e.message ?? ""}`).join("; ") ?? body.details ?? "";
  } catch {
    detail = text;
  }
  const status = `${response.status} ${response.statusText}`.trim();
  return new ApiError(oneLine(`${what}: ${status}${detail ? ` (${detail})` : ""}`), response.status, code);
}
