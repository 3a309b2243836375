/**
 * Pulling images, logged in to Docker Hub when credentials are given: Docker Hub limits anonymous pulls per IP address
 * (a fresh CI engine, with nothing cached, meets the limit on busy days), not authenticated ones.
 */
import { type Container, dag, type Platform, type Secret } from "@dagger.io/dagger";
import { DOCKER_HUB_HOSTS } from "./clients/oci-registry.js";

/** Docker Hub credentials for pulls. */
export interface PullAuth {
  username: string;
  password: Secret;
}

/** Makes a container from an image reference, on `platform` (default: the engine's). */
export type Pull = (address: string, platform?: Platform) => Container;

/**
 * Whether an image reference lives on Docker Hub: no registry host (`node:24`, `prom/prometheus`) or one of its names.
 * A first path component with a dot or a colon, or `localhost`, is a registry host (Docker's reference rule).
 */
export function isDockerHub(address: string): boolean {
  const [first, ...rest] = address.split("@")[0]!.split("/");
  if (rest.length === 0 || (!/[.:]/.test(first!) && first !== "localhost")) return true;
  return DOCKER_HUB_HOSTS.has(first!);
}

/**
 * A {@link Pull} that logs in to Docker Hub before every Docker Hub image when `auth` is given. The login is made in
 * the same chain as the `from`, so it is in place whichever step pulls first: Dagger keeps registry credentials per
 * session and adds them when `withRegistryAuth` runs (core/schema/container.go withRegistryAuth).
 */
export function pullWith(auth: PullAuth | undefined): Pull {
  return (address, platform) => {
    const ctr = dag.container({ platform });
    return (auth && isDockerHub(address) ? ctr.withRegistryAuth("docker.io", auth.username, auth.password) : ctr).from(
      address,
    );
  };
}
