import { type Container, dag, type File, type Platform, type Secret } from "@dagger.io/dagger";
import { SLSA_PROVENANCE_V1, SPDX_PREDICATE, statement } from "./attestations.js";
import { userAgent } from "./clients/http-util.js";
import { DOCKER_HUB_HOSTS, Registry } from "./clients/oci-registry.js";
import { publicKeyPem, signingKeyOf } from "./signature.js";
import { attachAndSign, type Statement, type VerifiedImage, verifyPublished } from "./verifiable.js";

/** Where `publish` pushes, and as whom. */
export interface RegistryTarget {
  /** Registry host, e.g. `docker.io`. */
  registry: string;
  /** Repository inside it, e.g. `pennocktech/dummyapp`. */
  repository: string;
  username: Secret;
  password: Secret;
  /** One image per platform, all in one index. */
  platforms: Platform[];
  /** PEM ECDSA P-256 private key to sign the index with, as cosign does; unsigned without. */
  signingKey?: Secret;
}

/** Where `publish` pushes by default, and `ci` always. */
export const DOCKER_HUB_REGISTRY = "docker.io";
export const DOCKER_HUB_REPOSITORY = "pennocktech/dummyapp";

/** Docker Hub gets both architectures people run: Intel/AMD servers and ARM (Graviton, Apple silicon). */
export const DOCKER_HUB_PLATFORMS = ["linux/amd64", "linux/arm64"];

/** One platform's image and its SBOM. */
export interface PlatformBuild {
  image: Container;
  sbom: File;
}

/** What a publish pushed and found when it read it back. */
export interface Published extends VerifiedImage {
  /** `registry/repository:tag@sha256:…` for every tag, all at the attested index. */
  references: string[];
  /** The command that checks the signature, when there is one. */
  verifyCommand?: string;
}

/** What {@link publishVerifiable} pushes, where, and what it says about it. */
export interface PublishRequest {
  /** One platform's image and SBOM (the JS is built once, natively, and only assembled per platform). */
  buildFor: (platform: Platform) => PlatformBuild;
  tags: readonly string[];
  target: RegistryTarget;
  /** The SLSA predicate of one platform's image. */
  provenanceFor: (platform: string) => Promise<Record<string, unknown>>;
  /** The version built, for the User-Agent of the registry requests. */
  version: string;
}

/**
 * Pushes one multi-platform index under every tag, then makes it verifiable: an SBOM and a SLSA provenance attached
 * to each platform image in BuildKit's layout, the tags moved to that index, the index signed when a key is given,
 * all read back and checked.
 */
export async function publishVerifiable(request: PublishRequest): Promise<Published> {
  const { buildFor, tags, target, provenanceFor } = request;
  const builds = new Map(target.platforms.map((platform) => [platform as string, buildFor(platform)]));
  const [username, password, keyPem] = await Promise.all([
    target.username.plaintext(),
    target.password.plaintext(),
    target.signingKey?.plaintext(),
  ]);
  const signingKey = keyPem === undefined ? undefined : signingKeyOf(keyPem);
  const base = `${target.registry}/${target.repository}`;
  const pushed = await dag
    .container()
    .withRegistryAuth(target.registry, username, target.password)
    .publish(`${base}:${tags[0]}`, { platformVariants: [...builds.values()].map((b) => b.image) });

  const registry = new Registry({
    registryUrl: target.registry,
    repository: target.repository,
    username,
    password,
    userAgent: userAgent(request.version),
  });
  const dockerReference = cosignReference(target.registry, target.repository);
  const statementsFor = async (platform: string, subjects: Parameters<typeof statement>[1]): Promise<Statement[]> => {
    const build = builds.get(platform) ?? builds.get(platform.replace(/\/v8$/, ""));
    if (!build) throw new Error(`the pushed index has an image for ${platform}, which was not built`);
    const [sbom, provenance] = await Promise.all([build.sbom.contents(), provenanceFor(platform)]);
    return [
      { predicateType: SPDX_PREDICATE, bytes: statement(SPDX_PREDICATE, subjects, JSON.parse(sbom)) },
      { predicateType: SLSA_PROVENANCE_V1, bytes: statement(SLSA_PROVENANCE_V1, subjects, provenance) },
    ];
  };
  const digest = await attachAndSign({
    registry,
    repository: target.repository,
    tags: [...tags],
    pushed: pushed.slice(pushed.lastIndexOf("@") + 1),
    statementsFor,
    signingKey,
    dockerReference,
  });
  const verified = await verifyPublished({
    registry,
    tags: [...tags],
    digest,
    platforms: target.platforms,
    predicateTypes: [SPDX_PREDICATE, SLSA_PROVENANCE_V1],
    publicKey: signingKey && publicKeyPem(signingKey),
    dockerReference,
  });
  return {
    ...verified,
    references: tags.map((tag) => `${base}:${tag}@${digest}`),
    verifyCommand: signingKey
      ? `cosign verify --key cosign.pub --insecure-ignore-tlog=true ${base}@${digest}`
      : undefined,
  };
}

/** The repository as cosign names it in a signature (go-containerregistry's spelling: Docker Hub is index.docker.io). */
export function cosignReference(registry: string, repository: string): string {
  return `${DOCKER_HUB_HOSTS.has(registry) ? "index.docker.io" : registry}/${repository}`;
}

/** One line about a publish: the references, the SBOM's size, and whether and how the signature is checked. */
export function describePublished(published: Published): string {
  const signature = published.verifyCommand
    ? `signed; verify: ${published.verifyCommand}`
    : "unsigned (no --signing-key)";
  return `${published.references.join(", ")} (SBOM: ${published.npmPackages} npm packages; ${signature})`;
}
