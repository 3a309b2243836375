/**
 * A Heroku container release, as the heroku CLI's `container:push` + `container:release` do it: push a single
 * linux/amd64 image with Docker media types as `_` with the API token, read its config digest (Heroku's "image id"),
 * PATCH the formation with it and follow the release; with a commit, wait until the app's /version reports it, and
 * roll back when a succeeded release fails that check (heroku-release.ts `HerokuReleaser.deploy`).
 */
import { type Container, ImageMediaTypes, type Secret } from "@dagger.io/dagger";
import { HerokuApi } from "./clients/heroku-api.js";
import { userAgent } from "./clients/http-util.js";
import { fetchConfigDigest, IMAGE_ID_PATTERN } from "./clients/registry-client.js";
import { type DeployRequest, HerokuReleaser, RELEASE_TIMEOUT_S } from "./heroku-release.js";

/** Where and how to release. */
export interface HerokuTarget {
  app: string;
  processType: string;
  apiUrl: string;
  /** Registry host, e.g. `registry.heroku.com`. */
  registry: string;
  token: Secret;
  /** `<verifyUrl>/version` must report `commit` before the deploy counts as done; default: the app's web URL. */
  verifyUrl?: string;
  commit?: string;
  /** Roll back to the release that was current before when a succeeded release fails the /version check. */
  rollback: boolean;
  /** Seconds to follow a release (and a rollback's) before reporting it pending; default {@link RELEASE_TIMEOUT_S}. */
  releaseTimeout?: number;
}

/** The Heroku defaults of `deployHeroku`, and what `ci` deploys to. */
export const HEROKU_APP = "pt-dummy-app";
export const HEROKU_PROCESS_TYPE = "web";
export const HEROKU_API_URL = "https://api.heroku.com";
export const HEROKU_REGISTRY = "registry.heroku.com";
export { RELEASE_TIMEOUT_S as HEROKU_RELEASE_TIMEOUT_S };

/** The release wait's bounds, in seconds: shorter than a minute cuts most release phases, longer than 2 h ties up CI. */
const RELEASE_TIMEOUT_RANGE = { min: 60, max: 7200 };

/** Heroku's registry takes any user name with the API token as password; `_` is what its CLI sends. */
const HEROKU_REGISTRY_USER = "_";

/** Heroku app names. */
const APP_NAME = /^[a-z][a-z0-9-]{1,28}[a-z0-9]$/;
/**
 * Process types the push accepts: the image goes to `registry.heroku.com/<app>/<type>`, whose path components must
 * match Docker's `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`; a Procfile name has no `.`, and 30 characters at most.
 */
const PROCESS_TYPE = /^(?=.{1,30}$)[a-z0-9]+(?:(?:__?|-+)[a-z0-9]+)*$/;

/** Throws on a target that could only fail later, so nothing is built for it. */
export function validateHerokuTarget(target: HerokuTarget): void {
  if (!APP_NAME.test(target.app)) throw new Error(`"${target.app}" is not a Heroku app name (${APP_NAME.source})`);
  if (!PROCESS_TYPE.test(target.processType)) {
    throw new Error(
      `"${target.processType}" is not a process type registry.heroku.com accepts: lower-case letters and digits, ` +
        `joined by _, __ or -, at most 30 characters (${PROCESS_TYPE.source})`,
    );
  }
  const { releaseTimeout } = target;
  const { min, max } = RELEASE_TIMEOUT_RANGE;
  if (
    releaseTimeout !== undefined &&
    !(Number.isInteger(releaseTimeout) && releaseTimeout >= min && releaseTimeout <= max)
  ) {
    throw new Error(
      `--release-timeout ${releaseTimeout} is not whole seconds from ${min} to ${max} ` +
        `(Heroku's release phase may run 1 h; default ${RELEASE_TIMEOUT_S})`,
    );
  }
}

/**
 * Checks the app is a Cedar app on the container stack, then pushes `image` (built only now), releases it, follows
 * the release and verifies it, rolling back on failure (see `HerokuReleaser.deploy`). `version` names the client in the
 * User-Agent. Returns a one-line report: release version and image id.
 */
export async function releaseOnHeroku(image: Container, target: HerokuTarget, version: string): Promise<string> {
  const token = await target.token.plaintext();
  const agent = userAgent(version);
  const api = new HerokuApi({ token, apiUrl: target.apiUrl, userAgent: agent });
  const app = await api.checkContainerApp(target.app);

  const published = await image
    .withRegistryAuth(target.registry, HEROKU_REGISTRY_USER, target.token)
    .publish(`${target.registry}/${target.app}/${target.processType}:latest`, { mediaTypes: ImageMediaTypes.Docker });
  const imageId = await herokuImageId(published, target, token, agent);
  return new HerokuReleaser(api, { userAgent: agent }).deploy(deployRequest(target, imageId, app.web_url ?? undefined));
}

/**
 * The image id Heroku releases for `published` (`<registry>/<app>/<type>:latest@sha256:…`, what `publish` returns):
 * the config digest of that manifest, read from the registry as `_` with the token. Throws when `published` has no
 * manifest digest or the manifest is not a single-platform Docker v2 schema 2 image.
 */
export async function herokuImageId(
  published: string,
  target: Pick<HerokuTarget, "app" | "processType" | "registry">,
  token: string,
  agent: string,
): Promise<string> {
  const manifestDigest = published.slice(published.lastIndexOf("@") + 1);
  if (!IMAGE_ID_PATTERN.test(manifestDigest)) throw new Error(`publish returned ${published}, with no manifest digest`);
  return fetchConfigDigest({
    registryUrl: target.registry,
    repository: `${target.app}/${target.processType}`,
    reference: manifestDigest,
    username: HEROKU_REGISTRY_USER,
    password: token,
    userAgent: agent,
  });
}

/** What `HerokuReleaser.deploy` is asked to do for `target`: release `imageId`, verify at `verifyUrl` or `webUrl`. */
export function deployRequest(target: HerokuTarget, imageId: string, webUrl: string | undefined): DeployRequest {
  // A release that succeeded may still be booting: with a commit to look for, wait until the app serves it.
  const verifyUrl = target.verifyUrl ?? webUrl;
  const { app, processType, commit, rollback } = target;
  const timeoutMs = (target.releaseTimeout ?? RELEASE_TIMEOUT_S) * 1000;
  return { app, processType, imageId, verifyUrl, commit, rollback, timeoutMs };
}
