/**
 * cosign-compatible signatures (sigstore/cosign specs/SIGNATURE_SPEC.md): a "simple signing" payload naming the
 * signed digest, signed with an ECDSA P-256 key, stored as an OCI manifest under the tag `sha256-<hex>.sig` in the
 * image's repository, where `cosign verify --key cosign.pub` looks. Node's crypto only: no npm dependency in `ci/`.
 */
import { createPrivateKey, createPublicKey, type KeyObject, sign, verify } from "node:crypto";
import { digestOf, type ImageManifest, ociImageManifest } from "./clients/oci-content.js";

export const SIMPLE_SIGNING_LAYER = "application/vnd.dev.cosign.simplesigning.v1+json";
export const SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";
const SIGNATURE_TYPE = "cosign container image signature";

/** The tag cosign stores the signatures of `digest` under. */
export function signatureTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

/** The payload cosign signs for `digest` pushed as `dockerReference` (`index.docker.io/pennocktech/dummyapp`). */
export function simpleSigningPayload(dockerReference: string, digest: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": dockerReference },
        image: { "docker-manifest-digest": digest },
        type: SIGNATURE_TYPE,
      },
      optional: null,
    }),
  );
}

/** What a payload says it signs, or undefined when it is not a simple-signing payload. */
export function payloadClaims(payload: Buffer): { dockerReference: string; digest: string } | undefined {
  try {
    const { critical } = JSON.parse(payload.toString()) as {
      critical?: {
        identity?: { "docker-reference"?: unknown };
        image?: { "docker-manifest-digest"?: unknown };
        type?: unknown;
      };
    };
    const dockerReference = critical?.identity?.["docker-reference"];
    const digest = critical?.image?.["docker-manifest-digest"];
    if (critical?.type !== SIGNATURE_TYPE || typeof dockerReference !== "string" || typeof digest !== "string")
      return undefined;
    return { dockerReference, digest };
  } catch {
    return undefined;
  }
}

/**
 * The signing key from its PEM text (PKCS#8 or SEC1 `EC PRIVATE KEY`, unencrypted: it arrives as a Dagger Secret).
 * Throws a one-line error naming what is wrong, never quoting the key.
 */
export function signingKeyOf(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error(
      "--signing-key is not an unencrypted PEM private key: give an ECDSA P-256 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)",
    );
  }
  if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
    throw new Error(
      `--signing-key is a ${key.asymmetricKeyType} key${key.asymmetricKeyDetails?.namedCurve ? ` on ${key.asymmetricKeyDetails.namedCurve}` : ""}: cosign's keys are ECDSA P-256`,
    );
  }
  return key;
}

/** The public half of a signing key as PEM (SPKI), what `cosign verify --key` reads. */
export function publicKeyPem(key: KeyObject): string {
  return createPublicKey(key).export({ type: "spki", format: "pem" }).toString();
}

/** base64 of the ASN.1 DER ECDSA-SHA256 signature of `payload`, as cosign's annotation holds it. */
export function signPayload(key: KeyObject, payload: Buffer): string {
  return sign("sha256", payload, key).toString("base64");
}

/** Whether `signature` (base64 DER) signs `payload` for `publicKey`. */
export function verifyPayload(publicKey: KeyObject | string, payload: Buffer, signature: string): boolean {
  return verify("sha256", payload, publicKey, Buffer.from(signature, "base64"));
}

/** The signature manifest for a payload and its signature: one layer, the payload, annotated with the signature. */
export function signatureManifest(payload: Buffer, signature: string): ImageManifest {
  const layer = {
    descriptor: {
      mediaType: SIMPLE_SIGNING_LAYER,
      digest: digestOf(payload),
      size: payload.length,
      annotations: { [SIGNATURE_ANNOTATION]: signature },
    },
    bytes: payload,
  };
  // cosign's own config for a signature image: empty but for the layer's diff id (pkg/oci/static, mutate).
  return ociImageManifest(
    {
      architecture: "",
      created: "0001-01-01T00:00:00Z",
      history: [{ created: "0001-01-01T00:00:00Z" }],
      os: "",
      rootfs: { type: "layers", diff_ids: [layer.descriptor.digest] },
      config: {},
    },
    [layer],
  );
}
