/**
 * The images the pipeline starts from, pinned by tag and by digest so a build only changes when someone bumps them.
 * Each digest is the multi-arch index, so the same reference pulls the right variant on amd64 and arm64 engines.
 * All three are constructor arguments of the module, so any of them can be swapped per call.
 */

/**
 * Builder: the official Node.js 24 LTS image on Alpine. This is the exact reference Dagger 0.21's own TypeScript
 * runtime pins, so an engine that has loaded this module usually has it cached already.
 */
export const BUILDER_IMAGE =
  "node:24.13.1-alpine@sha256:4f696fbf39f383c1e486030ba6b289a5d9af541642fc78ab197e584a113b9c03";

/**
 * Runtime: Google's distroless Node.js 24 image, `nonroot` variant: node and glibc, no shell, no npm, no compilers.
 * Distroless publishes no per-Node-patch tags, so the digest is what pins the Node version.
 */
export const RUNTIME_IMAGE =
  "gcr.io/distroless/nodejs24-debian12:nonroot@sha256:14d42e2511532589a7c7e01a753667a74fcc96266e137e8125006b87b0c32d0a";

/**
 * Where the test tools come from: the official images of Prometheus (promtool) and of the CNCF registry, both static Go
 * binaries that run on the Alpine builder. The same tools the project's CI installs from Debian.
 */
export const PROMTOOL_IMAGE = "prom/prometheus:v2.53.0";
export const REGISTRY_IMAGE = "registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373";

/** The poems: a data-only image (`FROM scratch`, poem files at its root). Deliberately unpinned: new poems are welcome. */
export const POETRY_IMAGE = "philpennock/poetry";

/**
 * The Node.js version an image reference names, for the image's labels: `24.13.1` for `node:24.13.1-alpine`, `24` for
 * `…/nodejs24-debian12`, `unknown` when the reference does not say.
 */
export function nodeVersionOf(imageRef: string): string {
  const name = imageRef.split("@")[0]!.split("/").pop()!;
  return /^node(?:js)?:?(\d+(?:\.\d+)*)/.exec(name)?.[1] ?? "unknown";
}
