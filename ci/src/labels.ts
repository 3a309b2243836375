import { nodeVersionOf } from "./image-refs.js";
import { type BuildStamp, buildTimeOf } from "./stamp.js";

/** Where the source lives, for `org.opencontainers.image.source`. */
export const SOURCE_URL = "https://github.com/PennockTech/dummyapp";

/** Namespace for this project's own labels (reverse DNS, as the OCI annotation rules ask). */
const LABEL_PREFIX = "com.pennock-tech.dummyapp.";

/**
 * The image's labels: the OCI ones, plus which build tags, poetry image and Node version went in, so `docker inspect`
 * answers "what is this image" without the registry.
 */
export function imageLabels(stamp: BuildStamp, images: { runtime: string; poetry: string }): Record<string, string> {
  const { manifest } = stamp;
  return {
    "org.opencontainers.image.title": manifest.name,
    "org.opencontainers.image.description": manifest.description,
    "org.opencontainers.image.version": stamp.version,
    "org.opencontainers.image.revision": stamp.commit,
    "org.opencontainers.image.source": SOURCE_URL,
    "org.opencontainers.image.created": buildTimeOf(stamp.sourceDateEpoch),
    "org.opencontainers.image.licenses": manifest.license,
    "org.opencontainers.image.base.name": images.runtime,
    [`${LABEL_PREFIX}build-tags`]: stamp.buildTags.join(","),
    [`${LABEL_PREFIX}poetry-image`]: images.poetry,
    [`${LABEL_PREFIX}node-version`]: nodeVersionOf(images.runtime),
  };
}
