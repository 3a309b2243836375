import { type Container, dag, type Platform, type Secret } from "@dagger.io/dagger";

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
}

/** Where `publish` pushes by default, and `ci` always. */
export const DOCKER_HUB_REGISTRY = "docker.io";
export const DOCKER_HUB_REPOSITORY = "pennocktech/dummyapp";

/** Docker Hub gets both architectures people run: Intel/AMD servers and ARM (Graviton, Apple silicon). */
export const DOCKER_HUB_PLATFORMS = ["linux/amd64", "linux/arm64"];

/**
 * Pushes one multi-platform index per tag, its variants made by `variantFor` (which builds the JS once, natively, and
 * only assembles per platform). Returns each `registry/repository:tag@sha256:…`.
 */
export async function publishMultiArch(
  variantFor: (platform: Platform) => Container,
  tags: readonly string[],
  target: RegistryTarget,
): Promise<string[]> {
  const variants = target.platforms.map(variantFor);
  const pusher = dag.container().withRegistryAuth(target.registry, await target.username.plaintext(), target.password);
  const published: string[] = [];
  for (const tag of tags) {
    published.push(
      await pusher.publish(`${target.registry}/${target.repository}:${tag}`, { platformVariants: variants }),
    );
  }
  return published;
}
