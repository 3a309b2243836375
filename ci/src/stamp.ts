import { type Directory, dag, type Platform } from "@dagger.io/dagger";
import { withNodeOnPath } from "./containers.js";
import type { Pull } from "./pull.js";

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
  /** The images it starts from, as the engine resolved them: the SBOM and the provenance name them by digest. */
  images: ResolvedImages;
}

/** The images a build starts from, as the engine resolved them for this call (`name[:tag]@sha256:…`). */
export interface ResolvedImages {
  builder: string;
  runtime: string;
  poetry: string;
  /** The runtime base's Node.js version, as its `node` reports it. */
  nodeVersion: string;
  /** The engine's own platform: what a build without `--platform` is for. */
  platform: Platform;
}

/**
 * Resolves the images a build starts from to digests (`imageRef` right after `from`: the engine's resolution for this
 * session) and asks the runtime base's `node` for its version, natively.
 */
export async function resolveImages(
  pull: Pull,
  images: { builder: string; runtime: string; poetry: string },
): Promise<ResolvedImages> {
  const [builder, runtime, poetry, node, platform] = await Promise.all([
    pull(images.builder).imageRef(),
    pull(images.runtime).imageRef(),
    pull(images.poetry).imageRef(),
    pull(images.runtime).with(withNodeOnPath).withExec(["node", "-p", "process.versions.node"]).stdout(),
    dag.defaultPlatform(),
  ]);
  const nodeVersion = node.trim();
  if (!/^\d+\.\d+\.\d+$/.test(nodeVersion)) {
    throw new Error(`the runtime image's node reported version ${JSON.stringify(node.slice(0, 80))}, not x.y.z`);
  }
  return { builder, runtime, poetry, nodeVersion, platform };
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
