/**
 * The checks that can be made remotely and cheaply before any container runs: that the registry credentials may push
 * to the repository, and that the Heroku token works and the app can take a container release. A wrong secret or app
 * then fails a call in seconds instead of after the tests, the build and the smoke test.
 */
import { HerokuApi } from "./clients/heroku-api.js";
import { userAgent } from "./clients/http-util.js";
import { Registry } from "./clients/oci-registry.js";
import type { HerokuTarget } from "./deploy.js";
import type { RegistryTarget } from "./publish.js";

/** One target to check, and the flags it came from, named in the error so the reader knows which secret to fix. */
export interface Checked<T> {
  target: T;
  flags: string;
}

/** What a call will push to and release on; each left out when the call will not do that step. */
export interface PreflightRequest {
  registry?: Checked<RegistryTarget>;
  heroku?: Checked<HerokuTarget>;
  /** The version being built, for the User-Agent. */
  version: string;
}

/**
 * Checks every target at once and throws one line naming each that failed (never a secret's value): push access
 * to the registry's repository (a token granting `push`), and the Heroku app through the token (Cedar generation,
 * container stack: `HerokuApi.checkContainerApp`).
 */
export async function preflight(request: PreflightRequest): Promise<void> {
  const agent = userAgent(request.version);
  const checks: Promise<void>[] = [];
  const { registry, heroku } = request;
  if (registry) {
    const { target, flags } = registry;
    checks.push(
      (async () => {
        const [username, password] = await Promise.all([target.username.plaintext(), target.password.plaintext()]);
        const client = new Registry({
          registryUrl: target.registry,
          repository: target.repository,
          username,
          password,
          userAgent: agent,
        });
        await client.checkPushAccess();
      })().catch((err: Error) => {
        throw new Error(`${flags} cannot push to ${target.registry}/${target.repository}: ${err.message}`);
      }),
    );
  }
  if (heroku) {
    const { target, flags } = heroku;
    checks.push(
      (async () => {
        const api = new HerokuApi({ token: await target.token.plaintext(), apiUrl: target.apiUrl, userAgent: agent });
        await api.checkContainerApp(target.app);
      })().catch((err: Error) => {
        throw new Error(`${flags}, app ${target.app}: ${err.message}`);
      }),
    );
  }
  const failed = (await Promise.allSettled(checks)).flatMap((outcome) =>
    outcome.status === "rejected" ? [(outcome.reason as Error).message] : [],
  );
  if (failed.length > 0) throw new Error(`preflight: ${failed.join("; ")}`);
}
