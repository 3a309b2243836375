/**
 * Reads an image's config digest, which is the "image id" Heroku's release API wants (Dagger's `publish` only returns
 * the manifest digest), through the registry client of oci-registry.ts.
 */
import { ApiError, type Fetch, oneLine } from "./http-util.js";
import { DIGEST_PATTERN, DOCKER_MANIFEST_V2 } from "./oci-content.js";
import { parseJson, Registry } from "./oci-registry.js";

export { DOCKER_MANIFEST_V2 } from "./oci-content.js";

/** A content digest as Docker and Heroku accept it for an image id. */
export const IMAGE_ID_PATTERN = DIGEST_PATTERN;

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
  const registry = new Registry(request);
  const url = registry.url(`manifests/${request.reference}`);
  const { mediaType, bytes } = await registry.getManifest(request.reference, [DOCKER_MANIFEST_V2]);
  if (mediaType !== DOCKER_MANIFEST_V2) {
    throw new ApiError(
      `GET ${url}: got ${mediaType}, not a Docker v2 image manifest; publish a single-platform image with Docker media types`,
    );
  }
  const digest = (parseJson(bytes) as { config?: { digest?: unknown } } | undefined)?.config?.digest;
  if (typeof digest !== "string" || !IMAGE_ID_PATTERN.test(digest)) {
    throw new ApiError(`GET ${url}: config digest ${oneLine(String(digest), 80)} is not sha256:<64 hex>`);
  }
  return digest;
}
