/**
 * The publish rehearsal: both variants pushed as `publish` and `deploy-heroku` push them, to a registry that runs as a
 * service inside the engine, then read back from it and checked, so `dagger check` proves the publish path with no
 * credentials. The reading is a script run in a client container bound to that registry (the module's own runtime
 * cannot reach a service); the checking is here.
 */
import { DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST } from "./clients/oci-content.js";

/**
 * Where the engine pushes: `localhost`, which it speaks plain HTTP to (engine/server/registryhosts.go, MatchLocalhost)
 * and which `registryService` routes to the bound service (core/container.go ContainerRegistryServiceBinding aliases
 * the address's host).
 */
export const REHEARSAL_HOST = "localhost:5000";

/** The registry service's name for the client container that reads it back. */
export const READBACK_ALIAS = "registry";

/** What to read back: one reference, and whether it must be a multi-platform index or one Docker manifest. */
export interface ReadbackRequest {
  repository: string;
  reference: string;
}

/** What was read: the top manifest's media type, and each platform image's platform and labels. */
export interface Readback {
  reference: string;
  mediaType: string;
  images: { platform: string; labels: Record<string, string> }[];
}

/**
 * `node --input-type=module --eval <READBACK_MAIN> <baseUrl> <requests as JSON>`: prints the {@link Readback} of
 * each request as JSON. Plain JavaScript (the builder's Node runs it as is), no dependency.
 */
export const READBACK_MAIN = `
const [base, requests] = [process.argv[1], JSON.parse(process.argv[2])];
const accept = ${JSON.stringify([OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_V2, DOCKER_MANIFEST_LIST].join(", "))};
const get = async (url, headers) => {
  const response = await fetch(url, { headers });
  if (!response.ok) throw new Error("GET " + url + ": " + response.status);
  return response.json();
};
const image = async (repository, digestOrManifest) => {
  const manifest = typeof digestOrManifest === "string"
    ? await get(base + "/v2/" + repository + "/manifests/" + digestOrManifest, { Accept: accept })
    : digestOrManifest;
  const config = await get(base + "/v2/" + repository + "/blobs/" + manifest.config.digest, {});
  return { platform: config.os + "/" + config.architecture, labels: (config.config && config.config.Labels) || {} };
};
const out = [];
for (const { repository, reference } of requests) {
  const top = await get(base + "/v2/" + repository + "/manifests/" + reference, { Accept: accept });
  const images = top.manifests
    ? await Promise.all(top.manifests.filter((m) => m.platform && m.platform.os !== "unknown").map((m) => image(repository, m.digest)))
    : [await image(repository, top)];
  out.push({ reference: repository + ":" + reference, mediaType: top.mediaType, images });
}
console.log(JSON.stringify(out));
`;

/** What a rehearsal expects of one pushed reference. */
export interface RehearsalExpectation {
  reference: string;
  /** Media types the top manifest may have: an index for Docker Hub, the Docker v2 manifest for Heroku. */
  mediaTypes: readonly string[];
  platforms: readonly string[];
  /** Labels every platform image must carry with these values. */
  labels: Record<string, string>;
}

/**
 * Checks what was read back against what was pushed: each reference's media type, its platforms (exactly those, in
 * order) and every image's labels. Returns one line per reference; throws one line naming the first difference.
 */
export function verifyRehearsal(readbacks: readonly Readback[], expected: readonly RehearsalExpectation[]): string {
  return expected
    .map((want) => {
      const got = readbacks.find((r) => r.reference === want.reference);
      if (!got) throw new Error(`rehearsal: ${want.reference} was not read back`);
      if (!want.mediaTypes.includes(got.mediaType))
        throw new Error(`rehearsal: ${want.reference} is ${got.mediaType}, not ${want.mediaTypes.join(" or ")}`);
      const platforms = got.images.map((i) => i.platform);
      if (platforms.join(",") !== want.platforms.join(","))
        throw new Error(`rehearsal: ${want.reference} has ${platforms.join(", ")}, not ${want.platforms.join(", ")}`);
      for (const image of got.images) {
        for (const [name, value] of Object.entries(want.labels)) {
          if (image.labels[name] !== value)
            throw new Error(
              `rehearsal: ${want.reference} (${image.platform}) label ${name} is ${JSON.stringify(image.labels[name])}, not ${JSON.stringify(value)}`,
            );
        }
      }
      return `${want.reference}: ${got.mediaType === DOCKER_MANIFEST_V2 ? "one Docker manifest" : "index"}, ${platforms.join(" + ")}, labels checked`;
    })
    .join("; ");
}
