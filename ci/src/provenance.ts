/**
 * SLSA provenance v1 (slsa.dev/spec/v1.0/provenance) for one platform image: who built it (this module on a Dagger
 * engine of a given version), how (the function and its arguments, never a secret) and from what (the commit and
 * every image, by the digest the engine resolved for this build).
 */
import { SOURCE_URL } from "./labels.js";

/** What `buildDefinition` means: a function of this repository's Dagger module, run by `dagger call`. */
export const BUILD_TYPE = `${SOURCE_URL}/blob/main/ci/README.md#provenance`;

/** What one platform image's provenance records. */
export interface ProvenanceParams {
  /** The module function called (`publish`, `ci`). */
  function: string;
  /** Its arguments as given, secrets left out. */
  arguments: Record<string, unknown>;
  /** The commit built: `<sha>`, or `<sha>-dirty` for a tree with uncommitted changes. */
  commit: string;
  version: string;
  buildTags: string[];
  platform: string;
  sourceDateEpoch: number;
  /** Image references as the engine resolved them: `name[:tag]@sha256:…`. */
  images: { builder: string; runtime: string; poetry: string };
  /** The engine's version (`dag.version()`). */
  engineVersion: string;
  /** The CI run's URL (CircleCI's `CIRCLE_BUILD_URL`), when there is one. */
  ciRunUrl?: string;
  /** When the call started and when the image was pushed (ISO 8601). */
  startedOn: string;
  finishedOn: string;
}

/** What the provenance says of the call that built an image, made once per call. */
export type Invocation = Pick<ProvenanceParams, "function" | "arguments" | "ciRunUrl" | "startedOn">;

/** Throws on a `--ci-run-url` that is not a plain https URL (no credentials), before any work. */
export function validateCiRunUrl(url: string | undefined): void {
  if (url === undefined) return;
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed?.protocol !== "https:" || parsed.username || parsed.password) {
    throw new Error(
      "--ci-run-url is not an https URL without credentials: give the CI run's page, e.g. $CIRCLE_BUILD_URL",
    );
  }
}

/** A SLSA ResourceDescriptor. */
interface Resource {
  uri: string;
  digest: Record<string, string>;
  annotations?: Record<string, unknown>;
}

/** The SLSA v1 predicate for one platform image. */
export function slsaProvenance(p: ProvenanceParams): Record<string, unknown> {
  const sha = p.commit.replace(/-dirty$/, "");
  const dirty = p.commit !== sha;
  const source: Resource = {
    uri: `git+${SOURCE_URL}@${sha}`,
    digest: { gitCommit: sha },
    ...(dirty ? { annotations: { uncommittedChanges: true } } : {}),
  };
  return {
    buildDefinition: {
      buildType: BUILD_TYPE,
      externalParameters: { function: p.function, arguments: p.arguments, source: source.uri },
      internalParameters: {
        version: p.version,
        buildTags: p.buildTags,
        platform: p.platform,
        sourceDateEpoch: p.sourceDateEpoch,
      },
      resolvedDependencies: [
        source,
        imageResource(p.images.builder, "builder"),
        imageResource(p.images.runtime, "runtime base", p.platform),
        imageResource(p.images.poetry, "poetry data"),
      ],
    },
    runDetails: {
      builder: { id: `${SOURCE_URL}/tree/${sha}/ci`, version: { "dagger-engine": p.engineVersion } },
      metadata: {
        ...(p.ciRunUrl ? { invocationId: p.ciRunUrl } : {}),
        startedOn: p.startedOn,
        finishedOn: p.finishedOn,
      },
    },
  };
}

/** `name[:tag]@sha256:hex` as BuildKit names an image it used: `pkg:docker/name@tag[?platform=…]`, digest apart. */
function imageResource(ref: string, role: string, platform?: string): Resource {
  const [name, digest] = ref.split("@");
  const tagged = /^(.*?)(?::([^/:]+))?$/.exec(name!)!;
  const query = platform ? `?platform=${encodeURIComponent(platform)}` : "";
  const hex = digest?.replace(/^sha256:/, "");
  return {
    uri: `pkg:docker/${tagged[1]}@${tagged[2] ?? "latest"}${query}`,
    digest: hex ? { sha256: hex } : {},
    annotations: { role },
  };
}
