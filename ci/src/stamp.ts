import type { Directory } from "@dagger.io/dagger";

/** The fields of `service/package.json` that name and describe the image. */
export interface ServiceManifest {
  name: string;
  version: string;
  description: string;
  license: string;
}

/**
 * What one build is stamped with: the bundle gets it through the build environment, the image through its labels.
 * Made once per call and shared by every step of that call, so `ci` smoke-tests the very image it then publishes.
 * Nothing in it comes from the wall clock: the same commit gives the same stamp, and so the same queries.
 */
export interface BuildStamp {
  manifest: ServiceManifest;
  buildTags: string[];
  version: string;
  /** The commit SHA, `-dirty` when built from a tree with uncommitted changes. */
  commit: string;
  /** The commit's time, seconds since the epoch: the build time, and every file's timestamp in the image. */
  sourceDateEpoch: number;
}

/** Reads `service/package.json` from the source directory (its version is the default image version). */
export async function readServiceManifest(source: Directory): Promise<ServiceManifest> {
  const json = JSON.parse(await source.file("service/package.json").contents()) as Partial<ServiceManifest>;
  const { name, version, description = "", license = "" } = json;
  if (!name || !version) throw new Error("service/package.json must have a name and a version");
  return { name, version, description, license };
}

/** The build time as the service and the OCI `created` label expect it: ISO 8601 UTC without milliseconds. */
export function buildTimeOf(sourceDateEpoch: number): string {
  return new Date(sourceDateEpoch * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}
