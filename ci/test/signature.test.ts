// cosign-compatible signing (ci/src/signature.ts) without a registry: which keys it signs with, which payloads it
// believes, and the signature image it stores. verifiable.test.ts checks the same code against a real registry.
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { OCI_CONFIG } from "../src/clients/oci-content.js";
import {
  payloadClaims,
  publicKeyPem,
  SIMPLE_SIGNING_LAYER,
  signatureManifest,
  signingKeyOf,
  signPayload,
  simpleSigningPayload,
  verifyPayload,
} from "../src/signature.js";

const REFERENCE = "index.docker.io/pennocktech/dummyapp";
const DIGEST = `sha256:${"ab".repeat(32)}`;

/** A private key as PEM, as `--signing-key` would carry it. */
const pemOf = (pair: { privateKey: { export(o: object): string | Buffer } }, type: "pkcs8" | "sec1" = "pkcs8") =>
  pair.privateKey.export({ type, format: "pem" }).toString();

describe("payloadClaims", () => {
  it("reads what a simple-signing payload signs", () => {
    expect(payloadClaims(simpleSigningPayload(REFERENCE, DIGEST))).toEqual({
      dockerReference: REFERENCE,
      digest: DIGEST,
    });
  });

  // A payload of another type, or one whose claims are not strings, must not pass as a signature of the image.
  const TYPE = "cosign container image signature";
  const identity = { "docker-reference": REFERENCE };
  const image = { "docker-manifest-digest": DIGEST };
  it.each<[string, Record<string, unknown>]>([
    ["another signature type", { identity, image, type: "atomic container signature" }],
    ["no type", { identity, image }],
    ["a reference that is not a string", { identity: { "docker-reference": 1 }, image, type: TYPE }],
    ["a digest that is not a string", { identity, image: { "docker-manifest-digest": [] }, type: TYPE }],
    ["no identity", { image, type: TYPE }],
    ["no image", { identity, type: TYPE }],
  ])("refuses a payload with %s", (_what, critical) => {
    expect(payloadClaims(Buffer.from(JSON.stringify({ critical, optional: null })))).toBeUndefined();
  });

  it.each(["not json", "null", "[]", "{}"])("refuses %j", (text) => {
    expect(payloadClaims(Buffer.from(text))).toBeUndefined();
  });
});

describe("signingKeyOf", () => {
  it("takes an unencrypted P-256 key as PKCS#8 or SEC1, and signs what its public half verifies", () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    for (const pem of [pemOf(pair), pemOf(pair, "sec1")]) {
      const key = signingKeyOf(pem);
      const payload = simpleSigningPayload(REFERENCE, DIGEST);
      expect(verifyPayload(publicKeyPem(key), payload, signPayload(key, payload))).toBe(true);
    }
  });

  // cosign verify takes ECDSA P-256 only: any other key would sign something no verifier accepts.
  it.each([
    ["an ec key on another curve", () => generateKeyPairSync("ec", { namedCurve: "P-384" }), "a ec key on secp384r1"],
    ["an RSA key", () => generateKeyPairSync("rsa", { modulusLength: 1024 }), "a rsa key"],
    ["an Ed25519 key", () => generateKeyPairSync("ed25519"), "a ed25519 key"],
  ])("refuses %s in one line, without quoting it", (_what, generate, named) => {
    const pem = pemOf(generate());
    expect(() => signingKeyOf(pem)).toThrow(new Error(`--signing-key is ${named}: cosign's keys are ECDSA P-256`));
  });

  it("refuses what is not an unencrypted private key, naming the key it wants", () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const encrypted = pair.privateKey
      .export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" })
      .toString();
    const publicOnly = publicKeyPem(pair.privateKey);
    for (const pem of ["", "not a key", encrypted, publicOnly]) {
      expect(() => signingKeyOf(pem)).toThrow(
        new Error(
          "--signing-key is not an unencrypted PEM private key: give an ECDSA P-256 key (openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256)",
        ),
      );
    }
  });
});

describe("signatureManifest", () => {
  it("stores the payload as the one layer, annotated with the signature, under cosign's config for it", () => {
    const payload = simpleSigningPayload(REFERENCE, DIGEST);
    const { blobs, manifest } = signatureManifest(payload, "c2lnbmF0dXJl");
    const parsed = JSON.parse(manifest.toString());
    const layer = blobs.find((b) => b.descriptor.digest === parsed.layers[0].digest)!;
    expect(parsed.layers).toHaveLength(1);
    expect(layer.descriptor.mediaType).toBe(SIMPLE_SIGNING_LAYER);
    expect(layer.bytes.equals(payload)).toBe(true);
    expect(layer.descriptor.annotations).toEqual({ "dev.cosignproject.cosign/signature": "c2lnbmF0dXJl" });
    // cosign's signature image config (go-containerregistry's empty image plus one layer): zero time, no platform, and
    // the layer's diff id (the payload is stored uncompressed: its digest). Bytes pinned: they make the config digest.
    const config = blobs.find((b) => b.descriptor.digest === parsed.config.digest)!;
    expect(parsed.config.mediaType).toBe(OCI_CONFIG);
    expect(config.bytes.toString()).toBe(
      '{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"",' +
        `"rootfs":{"type":"layers","diff_ids":["${layer.descriptor.digest}"]},"config":{}}`,
    );
  });
});
