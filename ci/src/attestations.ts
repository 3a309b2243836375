/**
 * Attestations where `docker buildx imagetools inspect` and Docker Scout look for them: BuildKit's layout (Docker's
 * "Image attestation storage"), in-toto statements as the layers of one attestation manifest per platform image,
 * listed in the image index next to that image.
 */
import {
  type Descriptor,
  digestOf,
  type ImageManifest,
  OCI_INDEX,
  OCI_MANIFEST,
  ociImageManifest,
} from "./clients/oci-content.js";

export const IN_TOTO_STATEMENT = "https://in-toto.io/Statement/v1";
export const IN_TOTO_LAYER = "application/vnd.in-toto+json";
export const PREDICATE_TYPE_ANNOTATION = "in-toto.io/predicate-type";
export const SPDX_PREDICATE = "https://spdx.dev/Document";
export const SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1";
export const REFERENCE_TYPE = "vnd.docker.reference.type";
export const REFERENCE_DIGEST = "vnd.docker.reference.digest";
export const ATTESTATION_MANIFEST = "attestation-manifest";
/** The platform BuildKit gives attestation manifests, so a runtime never picks one as an image. */
const UNKNOWN_PLATFORM = { architecture: "unknown", os: "unknown" };

/** What an in-toto statement is about: a platform image, by name and manifest digest. */
export interface Subject {
  name: string;
  digest: { sha256: string };
}

/** An in-toto statement (v1, as BuildKit writes since v0.31) of `predicateType` about `subjects`. */
export function statement(predicateType: string, subjects: Subject[], predicate: unknown): Buffer {
  return Buffer.from(JSON.stringify({ _type: IN_TOTO_STATEMENT, predicateType, subject: subjects, predicate }));
}

/**
 * The subject BuildKit names a platform image by: `pkg:docker/<repository>@<tag>?platform=linux%2Famd64`, with the
 * platform manifest's digest.
 */
export function subjectOf(repository: string, tag: string, platform: string, manifestDigest: string): Subject {
  return {
    name: `pkg:docker/${repository}@${tag}?platform=${encodeURIComponent(platform)}`,
    digest: { sha256: manifestDigest.replace(/^sha256:/, "") },
  };
}

/**
 * The attestation manifest for `statements` (each an in-toto statement's bytes with its predicate type): an OCI image
 * manifest whose layers are the statements and whose config is a minimal image config, present only because the
 * manifest format requires one (as BuildKit does).
 */
export function attestationManifest(statements: { predicateType: string; bytes: Buffer }[]): ImageManifest {
  const layers = statements.map(({ predicateType, bytes }) => ({
    descriptor: {
      mediaType: IN_TOTO_LAYER,
      digest: digestOf(bytes),
      size: bytes.length,
      annotations: { [PREDICATE_TYPE_ANNOTATION]: predicateType },
    },
    bytes,
  }));
  const diffIds = layers.map((l) => l.descriptor.digest);
  return ociImageManifest({ ...UNKNOWN_PLATFORM, config: {}, rootfs: { type: "layers", diff_ids: diffIds } }, layers);
}

/** The index descriptor of an attestation manifest about the platform manifest `subjectDigest`. */
export function attestationDescriptor(manifest: Buffer, subjectDigest: string): Descriptor {
  return {
    mediaType: OCI_MANIFEST,
    digest: digestOf(manifest),
    size: manifest.length,
    platform: UNKNOWN_PLATFORM,
    annotations: { [REFERENCE_TYPE]: ATTESTATION_MANIFEST, [REFERENCE_DIGEST]: subjectDigest },
  };
}

/** An OCI image index as this module reads and writes it. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** The platform images of an index (what is not an attestation), with their platforms as `os/arch[/variant]`. */
export function platformImages(index: ImageIndex): { descriptor: Descriptor; platform: string }[] {
  return index.manifests
    .filter((m) => m.annotations?.[REFERENCE_TYPE] !== ATTESTATION_MANIFEST)
    .map((descriptor) => {
      const p = descriptor.platform;
      return { descriptor, platform: p ? [p.os, p.architecture, p.variant].filter(Boolean).join("/") : "unknown" };
    });
}

/** `index` with its old attestations dropped and `attestations` listed after the images (BuildKit's order). */
export function indexWithAttestations(index: ImageIndex, attestations: Descriptor[]): Buffer {
  const images = platformImages(index).map((i) => i.descriptor);
  return Buffer.from(
    JSON.stringify({ ...index, schemaVersion: 2, mediaType: OCI_INDEX, manifests: [...images, ...attestations] }),
  );
}

/** The attestation manifests of an index, by the digest of the platform manifest each is about. */
export function attestationsOf(index: ImageIndex): Map<string, Descriptor> {
  const found = new Map<string, Descriptor>();
  for (const m of index.manifests) {
    const subject = m.annotations?.[REFERENCE_DIGEST];
    if (m.annotations?.[REFERENCE_TYPE] === ATTESTATION_MANIFEST && subject) found.set(subject, m);
  }
  return found;
}
