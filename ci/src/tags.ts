/**
 * Build tags (which variant of the bundle to build) and the image tags they lead to, following the Go app's scheme:
 * `<version>` then `-<build tags joined by ->`, e.g. `1.2.0-heroku`.
 */

/** The build tags the service's build understands (its build script refuses anything else). */
const KNOWN_BUILD_TAGS = ["heroku"];

/** Docker's rule for an image tag. */
const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * Normalises build tags as given on the command line: entries may themselves hold comma- or space-separated lists;
 * duplicates are dropped and the rest sorted, as the service's build does. Throws at once on a tag the service does
 * not know, so a typo costs no build.
 */
export function parseBuildTags(tags: readonly string[]): string[] {
  const parsed = [...new Set(tags.flatMap((entry) => entry.split(/[\s,]+/)).filter(Boolean))].sort();
  const unknown = parsed.filter((tag) => !KNOWN_BUILD_TAGS.includes(tag));
  if (unknown.length > 0) {
    const names = unknown.map((tag) => `"${tag}"`).join(", ");
    throw new Error(`unknown build tag ${names}; known tags: ${KNOWN_BUILD_TAGS.join(", ")}`);
  }
  return parsed;
}

/**
 * The image tags one build is pushed under: `<version>[-<tags joined by ->]`, with `/` and `,` in the version turned
 * into `_`, plus the moving alias `heroku` for a heroku build unless `movingAlias` is false (`ci` moves it only from
 * the branches it deploys). Every tag is checked against Docker's rule, so a bad version fails before anything is built.
 */
export function imageTags(version: string, buildTags: readonly string[], movingAlias = true): string[] {
  const main = [version.replace(/[/,]/g, "_"), ...buildTags].join("-");
  const tags = movingAlias && buildTags.includes("heroku") ? [main, "heroku"] : [main];
  for (const tag of tags) {
    if (!DOCKER_TAG.test(tag)) {
      throw new Error(`image tag "${tag}" is not a valid Docker tag (${DOCKER_TAG.source}); pass a different version`);
    }
  }
  return tags;
}
