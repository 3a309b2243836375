// Attestations and signature against a real registry: Debian's docker-registry with token auth (as Docker Hub has)
// holds a two-platform index pushed by skopeo (a client this project did not write) from an OCI layout built here;
// the module's attach-and-sign step runs against it; then skopeo reads the index, the attestation manifests and the
// signature back, and openssl verifies the signature over the payload read from the registry.
import { execFileSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ATTESTATION_MANIFEST,
  IN_TOTO_LAYER,
  PREDICATE_TYPE_ANNOTATION,
  SLSA_PROVENANCE_V1,
  SPDX_PREDICATE,
  type Subject,
  statement,
} from "../src/attestations.js";
import { OCI_CONFIG, OCI_INDEX, OCI_MANIFEST } from "../src/clients/oci-content.js";
import { Registry } from "../src/clients/oci-registry.js";
import { slsaProvenance } from "../src/provenance.js";
import { spdxDocument } from "../src/sbom.js";
import { readInputs, type SbomParams } from "../src/sbom-inputs.js";
import { publicKeyPem, SIGNATURE_ANNOTATION, signatureManifest, signatureTag } from "../src/signature.js";
import { attachAndSign, type Statement, verifyPublished } from "../src/verifiable.js";
import {
  type RegistryProcess,
  registryInstalled,
  registryRequired,
  skopeo,
  skopeoInstalled,
  startTokenAuthRegistry,
  stopTokenAuthRegistry,
  writeOciLayout,
} from "./clients/registry-server.js";

const REPOSITORY = "pennocktech/dummyapp";
const TAGS = ["2.0.0", "latest"];
const PLATFORMS = ["linux/amd64", "linux/arm64"];
const CREDENTIALS = { user: "pusher", password: `hub-token-${randomBytes(12).toString("hex")}` };
const ROOT = join(__dirname, "../..");

const toolsInstalled = registryInstalled && skopeoInstalled;
if (!toolsInstalled && !registryRequired)
  console.warn("verifiable tests skipped: they need docker-registry and skopeo (apt-get install, as .ci/run does)");

describe.skipIf(!toolsInstalled && !registryRequired)("attach, sign and read back against a real registry", () => {
  let dir: string;
  let registry: RegistryProcess;
  let tokenServer: Server;
  let key: KeyObject;
  let pushed: string;
  let digest: string;
  let client: Registry;
  /** URL and Accept header of every request the client sent. */
  const accepted: [string, string | null][] = [];
  let dockerReference: string;

  const creds = `${CREDENTIALS.user}:${CREDENTIALS.password}`;
  const inspectRaw = async (reference: string) =>
    JSON.parse(await skopeo("inspect", "--raw", "--tls-verify=false", "--creds", creds, `docker://${reference}`));
  /** Copies one manifest and its blobs out of the registry into a directory (files named by digest hex). */
  const copyOut = async (reference: string, name: string) => {
    const out = join(dir, name);
    await skopeo("copy", "--src-tls-verify=false", "--src-creds", creds, `docker://${reference}`, `dir:${out}`);
    return out;
  };

  /** The statements for one platform image, as publish makes them: the real SBOM of this repository's bundle. */
  const statementsFor = async (platform: string, subjects: Subject[]): Promise<Statement[]> => [
    { predicateType: SPDX_PREDICATE, bytes: statement(SPDX_PREDICATE, subjects, sbomFor(platform)) },
    { predicateType: SLSA_PROVENANCE_V1, bytes: statement(SLSA_PROVENANCE_V1, subjects, provenanceFor(platform)) },
  ];

  beforeAll(async () => {
    if (!toolsInstalled) throw new Error("docker-registry or skopeo is not installed, and CI=true requires both");
    dir = mkdtempSync(join(tmpdir(), "verifiable-test-"));
    ({ registry, tokenServer } = await startTokenAuthRegistry(dir, join(dir, "storage"), CREDENTIALS));
    dockerReference = `${registry.host}/${REPOSITORY}`;
    const layout = writeOciLayout(join(dir, "layout"), TAGS[0]!, PLATFORMS);
    await skopeo(
      "copy",
      "--all",
      "--preserve-digests",
      "--dest-tls-verify=false",
      "--dest-creds",
      creds,
      `oci:${layout.path}:${TAGS[0]}`,
      `docker://${dockerReference}:${TAGS[0]}`,
    );
    pushed = layout.indexDigest;
    ({ privateKey: key } = generateKeyPairSync("ec", { namedCurve: "P-256" }));
    client = new Registry({
      registryUrl: registry.url,
      repository: REPOSITORY,
      username: CREDENTIALS.user,
      password: CREDENTIALS.password,
      userAgent: "dummyapp-ci/test",
      fetch: (url, init) => {
        accepted.push([String(url), new Headers(init?.headers).get("accept")]);
        return fetch(url, init);
      },
    });
    digest = await attachAndSign({
      registry: client,
      repository: REPOSITORY,
      tags: TAGS,
      pushed,
      statementsFor,
      signingKey: key,
      dockerReference,
    });
  }, 60_000);

  afterAll(() => stopTokenAuthRegistry({ registry, tokenServer }, dir));

  it("reads the pushed index accepting either kind: OCI's, or the Docker manifest list docker buildx pushes", async () => {
    const [, accept] = accepted.find(([url]) => url.endsWith(`/manifests/${pushed}`))!;
    expect(accept).toBe(`${OCI_INDEX}, application/vnd.docker.distribution.manifest.list.v2+json`);
  });

  it("moves every tag to one new index: the platform images as pushed, plus one attestation manifest each", async () => {
    expect(digest).not.toBe(pushed);
    const original = await inspectRaw(`${dockerReference}@${pushed}`);
    for (const tag of TAGS) {
      const index = await inspectRaw(`${dockerReference}:${tag}`);
      expect(index.mediaType).toBe(OCI_INDEX);
      expect(index.manifests.slice(0, 2)).toEqual(original.manifests);
      const attestations = index.manifests.slice(2);
      expect(attestations).toHaveLength(2);
      for (const [i, image] of original.manifests.entries()) {
        expect(attestations[i]).toMatchObject({
          mediaType: OCI_MANIFEST,
          platform: { architecture: "unknown", os: "unknown" },
          annotations: {
            "vnd.docker.reference.type": ATTESTATION_MANIFEST,
            "vnd.docker.reference.digest": image.digest,
          },
        });
      }
    }
    // skopeo resolves the tag to the digest attachAndSign reported.
    const resolved = await skopeo(
      "inspect",
      "--tls-verify=false",
      "--creds",
      creds,
      "--format",
      "{{.Digest}}",
      `docker://${dockerReference}:latest`,
    );
    expect(resolved.trim()).toBe(digest);
  });

  it("stores an SBOM and a SLSA v1 provenance about each platform image, read back by skopeo", async () => {
    const index = await inspectRaw(`${dockerReference}:${TAGS[0]}`);
    for (const image of index.manifests.slice(0, 2)) {
      const attestation = index.manifests.find(
        (m: { annotations?: Record<string, string> }) =>
          m.annotations?.["vnd.docker.reference.digest"] === image.digest,
      );
      const out = await copyOut(`${dockerReference}@${attestation.digest}`, `att-${image.platform.architecture}`);
      const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      expect(manifest.config.mediaType).toBe(OCI_CONFIG);
      expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([IN_TOTO_LAYER, IN_TOTO_LAYER]);
      const statements = manifest.layers.map((l: { digest: string; annotations: Record<string, string> }) => {
        const parsed = JSON.parse(readFileSync(join(out, l.digest.replace("sha256:", "")), "utf8"));
        expect(parsed.predicateType).toBe(l.annotations[PREDICATE_TYPE_ANNOTATION]);
        return parsed;
      });
      const platform = `${image.platform.os}/${image.platform.architecture}`;
      for (const s of statements) {
        expect(s._type).toBe("https://in-toto.io/Statement/v1");
        expect(s.subject).toEqual(
          TAGS.map((tag) => ({
            name: `pkg:docker/${REPOSITORY}@${tag}?platform=${encodeURIComponent(platform)}`,
            digest: { sha256: image.digest.replace("sha256:", "") },
          })),
        );
      }
      const [sbom, provenance] = statements;
      expect(sbom.predicateType).toBe(SPDX_PREDICATE);
      expect(sbom.predicate.spdxVersion).toBe("SPDX-2.3");
      expect(sbom.predicate.name).toContain(platform.replace("/", "-"));
      expect(provenance.predicateType).toBe(SLSA_PROVENANCE_V1);
      expect(provenance.predicate.buildDefinition.internalParameters.platform).toBe(platform);
    }
  });

  it("signs the new index as cosign does: openssl verifies the signature over the payload read back", async () => {
    const out = await copyOut(`${dockerReference}:${signatureTag(digest)}`, "signature");
    const manifest = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const [layer] = manifest.layers;
    expect(layer.mediaType).toBe("application/vnd.dev.cosign.simplesigning.v1+json");
    const payloadFile = join(out, layer.digest.replace("sha256:", ""));
    const payload = JSON.parse(readFileSync(payloadFile, "utf8"));
    expect(payload.critical).toEqual({
      identity: { "docker-reference": dockerReference },
      image: { "docker-manifest-digest": digest },
      type: "cosign container image signature",
    });
    expect(opensslVerifies(payloadFile, layer.annotations[SIGNATURE_ANNOTATION])).toBe(true);

    // The same check fails for a payload changed by one byte: openssl is really checking.
    const tampered = join(dir, "tampered-payload");
    writeFileSync(tampered, readFileSync(payloadFile, "utf8").replace(digest, digest.replace(/.$/, "0")));
    expect(opensslVerifies(tampered, layer.annotations[SIGNATURE_ANNOTATION])).toBe(false);
  });

  it("passes its own read-back, and says the SBOM's npm package count", async () => {
    const verified = await verifyPublished({
      registry: client,
      tags: TAGS,
      digest,
      platforms: PLATFORMS,
      predicateTypes: [SPDX_PREDICATE, SLSA_PROVENANCE_V1],
      publicKey: publicKeyPem(key),
      dockerReference,
    });
    expect(verified).toEqual({ digest, platforms: PLATFORMS, npmPackages: expectedNpmCount(), signed: true });
  });

  it("fails the read-back for a wrong key, a tag left behind, a missing platform or predicate type", async () => {
    const base = {
      registry: client,
      tags: TAGS,
      digest,
      platforms: PLATFORMS,
      predicateTypes: [SPDX_PREDICATE, SLSA_PROVENANCE_V1],
      dockerReference,
    };
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    await expect(verifyPublished({ ...base, publicKey: other })).rejects.toThrow(
      "the signature does not verify with the key",
    );
    await expect(verifyPublished({ ...base, tags: [...TAGS, "stale"], publicKey: publicKeyPem(key) })).rejects.toThrow(
      /tag stale|MANIFEST_UNKNOWN/,
    );
    await expect(verifyPublished({ ...base, platforms: [...PLATFORMS, "linux/riscv64"] })).rejects.toThrow(
      "no image for linux/riscv64",
    );
    await expect(
      verifyPublished({ ...base, predicateTypes: [SPDX_PREDICATE, "https://example.com/other"] }),
    ).rejects.toThrow("lack https://example.com/other");
  });

  it("fails the read-back when a statement is about another image than its platform's", async () => {
    const wrong = await attachAndSign({
      registry: client,
      repository: REPOSITORY,
      tags: ["wrong-subject"],
      pushed,
      statementsFor: async (platform, subjects) =>
        statementsFor(
          platform,
          subjects.map((s) => ({ ...s, digest: { sha256: "0".repeat(64) } })),
        ),
      dockerReference,
    });
    await expect(
      verifyPublished({
        registry: client,
        tags: ["wrong-subject"],
        digest: wrong,
        platforms: PLATFORMS,
        predicateTypes: [SPDX_PREDICATE],
        dockerReference,
      }),
    ).rejects.toThrow(/statement of linux\/amd64 is not about sha256:/);
  });

  it("fails the read-back when the signed payload was changed in the registry (run last: it replaces the signature)", async () => {
    const tag = signatureTag(digest);
    const payload = Buffer.from(
      readFileSync(join(await copyOut(`${dockerReference}:${tag}`, "signature-before"), "manifest.json"), "utf8"),
    );
    const { layers } = JSON.parse(payload.toString());
    const original = await client.getBlob(layers[0].digest);
    const changed = Buffer.from(original.toString().replace('"optional":null', '"optional":{"by":"someone else"}'));
    expect(changed.equals(original)).toBe(false);
    const forged = signatureManifest(changed, layers[0].annotations[SIGNATURE_ANNOTATION]);
    for (const blob of forged.blobs) await client.putBlob(blob.descriptor.mediaType, blob.bytes);
    await client.putManifest(tag, OCI_MANIFEST, forged.manifest);
    await expect(
      verifyPublished({
        registry: client,
        tags: TAGS,
        digest,
        platforms: PLATFORMS,
        predicateTypes: [SPDX_PREDICATE],
        publicKey: publicKeyPem(key),
        dockerReference,
      }),
    ).rejects.toThrow("the signature does not verify with the key");
  });

  /** openssl's verdict on a base64 DER ECDSA-SHA256 signature of `file` with the public key. */
  function opensslVerifies(file: string, signatureB64: string): boolean {
    const sig = join(dir, "sig.der");
    const pub = join(dir, "cosign.pub");
    writeFileSync(sig, Buffer.from(signatureB64, "base64"));
    writeFileSync(pub, publicKeyPem(key));
    try {
      return execFileSync("openssl", ["dgst", "-sha256", "-verify", pub, "-signature", sig, file], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      }).includes("Verified OK");
    } catch {
      return false;
    }
  }
});

/** The SBOM inputs as publish gives them: this repository's real bundle metafile and lockfile, the host's dpkg records. */
function sbomParams(platform: string): SbomParams {
  return {
    name: "dummyapp",
    version: "2.0.0",
    commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    created: "2026-12-01T00:00:00Z",
    platform,
    nodeVersion: "24.13.1",
    runtimeImage: `gcr.io/distroless/nodejs24-debian12:nonroot@sha256:${"1".repeat(64)}`,
    poetryImage: `philpennock/poetry@sha256:${"2".repeat(64)}`,
    sourceUrl: "https://github.com/PennockTech/dummyapp",
    workspace: "service",
  };
}

function sbomFor(platform: string) {
  return spdxDocument(
    readInputs(sbomParams(platform), {
      metafile: join(ROOT, "service/dist/main.meta.json"),
      lockfile: join(ROOT, "package-lock.json"),
      runtimeRoot: "/",
      poetry: join(ROOT, "service/sample-poetry"),
    }),
  );
}

function expectedNpmCount(): number {
  return (sbomFor("linux/amd64").packages as { SPDXID: string }[]).filter((p) =>
    p.SPDXID.startsWith("SPDXRef-Package-npm-"),
  ).length;
}

function provenanceFor(platform: string) {
  return slsaProvenance({
    function: "publish",
    arguments: { tag: [], platforms: PLATFORMS },
    commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
    version: "2.0.0",
    buildTags: [],
    platform,
    sourceDateEpoch: 1764547200,
    images: {
      builder: `node:24.13.1-alpine@sha256:${"3".repeat(64)}`,
      runtime: sbomParams(platform).runtimeImage,
      poetry: sbomParams(platform).poetryImage,
    },
    engineVersion: "v0.21.9",
    startedOn: "2026-12-03T10:00:00Z",
    finishedOn: "2026-12-03T10:05:00Z",
  });
}
