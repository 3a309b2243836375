/**
 * Making a pushed image index verifiable, then checking that it is: its attestations (SBOM and provenance per platform
 * image) attached in BuildKit's layout, every tag moved to that index, the index signed as cosign signs, and all of
 * it read back from the registry and checked before `publish` reports success.
 */
import type { KeyObject } from "node:crypto";
import {
  attestationDescriptor,
  attestationManifest,
  attestationsOf,
  type ImageIndex,
  indexWithAttestations,
  platformImages,
  type Subject,
  subjectOf,
} from "./attestations.js";
import { DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from "./clients/oci-content.js";
import { parseJson, type Registry } from "./clients/oci-registry.js";
import { packagesByType } from "./sbom.js";
import {
  payloadClaims,
  SIGNATURE_ANNOTATION,
  signatureManifest,
  signatureTag,
  signPayload,
  simpleSigningPayload,
  verifyPayload,
} from "./signature.js";

/** An in-toto statement's bytes and its predicate type. */
export interface Statement {
  predicateType: string;
  bytes: Buffer;
}

/** What {@link attachAndSign} adds to an index the engine pushed. */
export interface AttachRequest {
  registry: Registry;
  /** `pennocktech/dummyapp`, as subjects name it. */
  repository: string;
  /** Every tag to point at the attested index; the engine pushed its index under the first. */
  tags: string[];
  /** The digest of the index the engine pushed. */
  pushed: string;
  /** The statements about one platform image, given its platform and subjects. */
  statementsFor: (platform: string, subjects: Subject[]) => Promise<Statement[]>;
  /** Signs the attested index as cosign does when given; `dockerReference` is the identity the signature names. */
  signingKey?: KeyObject;
  dockerReference: string;
}

/**
 * Attaches one attestation manifest per platform image of the pushed index, pushes the new index under every tag
 * and, given a key, signs it. Returns the new index's digest.
 */
export async function attachAndSign(request: AttachRequest): Promise<string> {
  const { registry } = request;
  const pushed = await registry.getManifest(request.pushed, [OCI_INDEX, DOCKER_MANIFEST_LIST]);
  const index = parseJson(pushed.bytes) as ImageIndex;
  const attestations = await Promise.all(
    platformImages(index).map(async ({ descriptor, platform }) => {
      const subjects = request.tags.map((tag) => subjectOf(request.repository, tag, platform, descriptor.digest));
      const { blobs, manifest } = attestationManifest(await request.statementsFor(platform, subjects));
      for (const blob of blobs) await registry.putBlob(blob.descriptor.mediaType, blob.bytes);
      const attached = attestationDescriptor(manifest, descriptor.digest);
      await registry.putManifest(attached.digest, OCI_MANIFEST, manifest);
      return attached;
    }),
  );
  const attested = indexWithAttestations(index, attestations);
  let digest = "";
  for (const tag of request.tags) digest = await registry.putManifest(tag, OCI_INDEX, attested);
  if (request.signingKey) {
    const payload = simpleSigningPayload(request.dockerReference, digest);
    const { blobs, manifest } = signatureManifest(payload, signPayload(request.signingKey, payload));
    for (const blob of blobs) await registry.putBlob(blob.descriptor.mediaType, blob.bytes);
    await registry.putManifest(signatureTag(digest), OCI_MANIFEST, manifest);
  }
  return digest;
}

/** What {@link verifyPublished} expects to find. */
export interface VerifyRequest {
  registry: Registry;
  tags: string[];
  /** The attested index's digest. */
  digest: string;
  /** Every platform the index must hold, e.g. `linux/amd64`. */
  platforms: string[];
  /** Every predicate type each platform image's attestations must hold. */
  predicateTypes: string[];
  /** The public key the signature must verify with; undefined when the image was published unsigned. */
  publicKey?: KeyObject | string;
  dockerReference: string;
}

/** What the registry really holds, checked. */
export interface VerifiedImage {
  digest: string;
  platforms: string[];
  /** npm packages in the SBOM of each platform image (the same for all: one bundle). */
  npmPackages: number;
  signed: boolean;
}

/** A published image failed its read-back: the message says what is missing or wrong. */
export class VerificationError extends Error {
  override name = "VerificationError";
}

/**
 * Reads back what was published and checks it: every tag resolves to the attested index; it holds every platform;
 * each platform image has one attestation manifest whose statements are about that image's digest and cover every
 * predicate type; every blob matches its digest (the client checks); the signature, when a key is given, names the
 * index's digest and verifies. Throws a {@link VerificationError} naming the first thing wrong.
 */
export async function verifyPublished(request: VerifyRequest): Promise<VerifiedImage> {
  const { registry, digest } = request;
  const fail = (what: string): never => {
    throw new VerificationError(`published image ${request.dockerReference}@${digest}: ${what}`);
  };
  for (const tag of request.tags) {
    const found = await registry.getManifest(tag, [OCI_INDEX, DOCKER_MANIFEST_LIST]);
    if (found.digest !== digest) fail(`tag ${tag} points at ${found.digest}, not the attested index`);
  }
  const index = parseJson((await registry.getManifest(digest, [OCI_INDEX])).bytes) as ImageIndex;
  const images = platformImages(index);
  const missing = request.platforms.filter((p) => !images.some((i) => i.platform === p));
  if (missing.length) fail(`no image for ${missing.join(", ")}`);
  const attestations = attestationsOf(index);
  const npmCounts = new Set<number>();
  for (const { descriptor, platform } of images) {
    const attestation = attestations.get(descriptor.digest) ?? fail(`no attestation manifest for ${platform}`);
    const manifest = parseJson((await registry.getManifest(attestation.digest, [OCI_MANIFEST])).bytes) as {
      layers?: { digest: string }[];
    };
    const found = new Set<string>();
    for (const layer of manifest.layers ?? []) {
      const statement = parseJson(await registry.getBlob(layer.digest)) as {
        predicateType?: string;
        subject?: Subject[];
        predicate?: Record<string, unknown>;
      };
      const subjects = statement?.subject ?? [];
      if (subjects.length === 0 || subjects.some((s) => `sha256:${s.digest?.sha256}` !== descriptor.digest)) {
        fail(`the ${statement?.predicateType ?? "unknown"} statement of ${platform} is not about ${descriptor.digest}`);
      }
      found.add(statement.predicateType ?? "");
      if (statement.predicateType === "https://spdx.dev/Document") {
        npmCounts.add(packagesByType(statement.predicate ?? {}).npm?.length ?? 0);
      }
    }
    const absent = request.predicateTypes.filter((t) => !found.has(t));
    if (absent.length) fail(`the attestations of ${platform} lack ${absent.join(", ")}`);
  }
  if (request.publicKey) await checkSignature(registry, request, fail);
  const [npmPackages = 0] = npmCounts;
  if (npmCounts.size > 1) fail(`the platform images' SBOMs list different npm packages (${[...npmCounts].join(", ")})`);
  return { digest, platforms: images.map((i) => i.platform), npmPackages, signed: request.publicKey !== undefined };
}

/** The signature stored for the index: its payload names the index and the repository, and it verifies. */
async function checkSignature(
  registry: Registry,
  request: VerifyRequest,
  fail: (what: string) => never,
): Promise<void> {
  const tag = signatureTag(request.digest);
  const manifest = parseJson((await registry.getManifest(tag, [OCI_MANIFEST])).bytes) as {
    layers?: { digest: string; annotations?: Record<string, string> }[];
  };
  const layer = manifest.layers?.[0] ?? fail(`the signature manifest ${tag} has no layer`);
  const signature = layer.annotations?.[SIGNATURE_ANNOTATION] ?? fail(`the signature layer of ${tag} has no signature`);
  const payload = await registry.getBlob(layer.digest);
  const claims = payloadClaims(payload) ?? fail(`the payload of ${tag} is not a cosign simple-signing payload`);
  if (claims.digest !== request.digest) fail(`the signature signs ${claims.digest}`);
  if (claims.dockerReference !== request.dockerReference) fail(`the signature names ${claims.dockerReference}`);
  if (!verifyPayload(request.publicKey!, payload, signature)) fail("the signature does not verify with the key");
}
