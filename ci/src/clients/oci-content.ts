/**
 * What registries store, apart from how they are reached (oci-registry.ts): the OCI and Docker media types, content
 * digests and descriptors, and the OCI image manifest of a config and its layers, built byte for byte.
 */
import { createHash } from "node:crypto";

export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
export const DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
/** The media type Heroku's registry serves and `heroku container:release` asks for. */
export const DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json";

/** A content digest as registries (and Heroku, for an image id) accept it. */
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** An OCI content descriptor. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string; variant?: string };
  annotations?: Record<string, string>;
}

/** `sha256:<hex>` of `bytes`. */
export function digestOf(bytes: Buffer | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/** A blob and its descriptor. */
export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

/** An image manifest and the blobs it names: every blob must be in the registry before the manifest. */
export interface ImageManifest {
  blobs: Blob[];
  manifest: Buffer;
}

/** The OCI image manifest of an image config (an object, serialized as given) and `layers`, with its blobs. */
export function ociImageManifest(config: Record<string, unknown>, layers: Blob[]): ImageManifest {
  const bytes = Buffer.from(JSON.stringify(config));
  const configBlob = { descriptor: { mediaType: OCI_CONFIG, digest: digestOf(bytes), size: bytes.length }, bytes };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: configBlob.descriptor,
      layers: layers.map((layer) => layer.descriptor),
    }),
  );
  return { blobs: [configBlob, ...layers], manifest };
}
