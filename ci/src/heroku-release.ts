/**
 * What the heroku CLI leaves to people, decided on top of the Platform API client (clients/heroku-api.ts): follow a
 * new release until it settles, printing progress; with a commit, wait until the app's `/version` reports it; and
 * roll back to the release that was current before when a succeeded release fails that check, ending with one error
 * that says what failed and what was restored.
 */
import type { Before, HerokuApi, HerokuRelease, ReleaseImageRequest, ReleaseResult } from "./clients/heroku-api.js";
import {
  ApiError,
  type Clock,
  type Fetch,
  type Log,
  minutes,
  pollUntil,
  type Sleep,
  sleep,
} from "./clients/http-util.js";
import { readVersion, VERIFY_TIMEOUT_MS, type VersionProbe, waitForVersion } from "./clients/service-version.js";

/** How long a release (or a rollback's release) may stay pending: Heroku's release phase may run 1 h, plus 5 min. */
export const RELEASE_TIMEOUT_S = 3900;
export const RELEASE_TIMEOUT_MS = RELEASE_TIMEOUT_S * 1000;
/** A deploy's longest wait: release, /version, then a rollback's release and /version (136 min by default). */
export const DEPLOY_BOUND_MS = 2 * (RELEASE_TIMEOUT_MS + VERIFY_TIMEOUT_MS);

/** What {@link HerokuReleaser.release} releases, and how long it follows the release. */
export interface ReleaseRequest extends ReleaseImageRequest {
  /** Give up following the release after this long; default {@link RELEASE_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Pause between release status polls; default 3 s. */
  intervalMs?: number;
}

/** The formation was updated but its release did not succeed: it `failed`, ended otherwise, or was still pending. */
export class ReleaseError extends ApiError {
  /**
   * @param message one line, already free of secrets
   * @param release the new release as last read (its `status` says how it ended)
   * @param previous the release that was current before, if the app had one
   */
  constructor(
    message: string,
    readonly release: HerokuRelease,
    readonly previous: HerokuRelease | undefined,
  ) {
    super(message);
    this.name = "ReleaseError";
  }
}

/** What {@link HerokuReleaser.deploy} releases, verifies and, on failure, rolls back. */
export interface DeployRequest extends ReleaseRequest {
  /** With `commit`: the service's base URL whose `/version` must report the commit. */
  verifyUrl?: string;
  commit?: string;
  /** Roll back to the release that was current before when a succeeded release fails the verification. */
  rollback: boolean;
  /** Bound and pause of the `/version` checks; defaults {@link VERIFY_TIMEOUT_MS} and 5 s. */
  verifyTimeoutMs?: number;
  verifyIntervalMs?: number;
}

/** What a {@link HerokuReleaser} needs besides the API client. */
export interface ReleaseDeps {
  /** Sent as `User-Agent` to the app's `/version`. */
  userAgent: string;
  /** Test seams: the global `fetch`, a real timer, `Date.now` and `console.log` (progress lines) otherwise. */
  fetch?: Fetch;
  sleep?: Sleep;
  now?: Clock;
  log?: Log;
}

/** Releases through a {@link HerokuApi}: follows each release, verifies it on `/version` and rolls back. */
export class HerokuReleaser {
  private readonly userAgent: string;
  private readonly fetch: Fetch;
  private readonly sleep: Sleep;
  private readonly now: Clock;
  private readonly log: Log;

  /**
   * @param api the Platform API client, scoped to the token
   * @param deps the User-Agent of `/version` probes and test seams; see {@link ReleaseDeps}
   */
  constructor(
    private readonly api: HerokuApi,
    deps: ReleaseDeps,
  ) {
    this.userAgent = deps.userAgent;
    this.fetch = deps.fetch ?? fetch;
    this.sleep = deps.sleep ?? sleep;
    this.now = deps.now ?? Date.now;
    this.log = deps.log ?? console.log;
  }

  /**
   * {@link HerokuApi.releaseImage}, then follows the new release until it is `succeeded` (returned), ends otherwise
   * (`failed`, `expired`) or is still pending at `timeoutMs` (thrown as {@link ReleaseError}, with the release output
   * when it can be read). An `unchanged` result has no release to follow and is returned as it is.
   */
  async release(request: ReleaseRequest): Promise<ReleaseResult> {
    const result = await this.api.releaseImage(request);
    if (result.kind === "unchanged") return result;
    const release = await this.followRelease(result.release, request, result.before.release);
    return { ...result, release };
  }

  /**
   * Releases, then with `verifyUrl` and `commit` waits until `/version` reports the commit. A release that does not
   * succeed is reported, never rolled back: a failed one never went live (Heroku leaves the current release running)
   * and a pending one may still finish. When a succeeded release does not show the commit in time, rolls back to the
   * release that was current before (unless `rollback` is false, there is none, it ran no image or Heroku says it is
   * not eligible), waits until the app reports the earlier commit or the rollback's release, and throws one error
   * saying what failed and what was restored. Returns a one-line report.
   */
  async deploy(request: DeployRequest): Promise<string> {
    const { app, imageId, processType, verifyUrl, commit } = request;
    const verify = verifyUrl && commit ? verifyUrl.replace(/\/+$/, "") : undefined;
    // What the app reports before the release: the commit a rollback must bring back.
    const before = verify ? await readVersion(verify, this.userAgent, this.fetch) : undefined;
    let result: ReleaseResult;
    try {
      result = await this.release(request);
    } catch (err) {
      if (!(err instanceof ReleaseError)) throw err;
      throw new ApiError(`${err.message}; ${notRolledBack(app, err)}`);
    }
    let report =
      result.kind === "released"
        ? `released ${app} v${result.release.version} (${processType}) with image ${imageId}`
        : `${app} (${processType}) is already running ${imageId}${result.current ? ` as v${result.current.version}` : ""}; no new release`;
    if (verify) {
      try {
        await this.waitForVersion({
          url: verify,
          commit,
          timeoutMs: request.verifyTimeoutMs,
          intervalMs: request.verifyIntervalMs,
        });
      } catch (err) {
        // Nothing was released, so there is nothing to roll back.
        if (result.kind === "unchanged") throw err;
        throw await this.recover(request, verify, `${report}, but ${(err as Error).message}`, result.before, before);
      }
      report += `; ${verify}/version reports ${commit}`;
    }
    return report;
  }

  /**
   * Rolls back after a succeeded release failed the verification on `verify` (`failure`), when allowed and possible;
   * returns the one error that says what failed and what was restored.
   */
  private async recover(
    request: DeployRequest,
    verify: string,
    failure: string,
    { release: previous, runsImage }: Before,
    before: Record<string, unknown> | undefined,
  ): Promise<ApiError> {
    const { app, processType } = request;
    if (!request.rollback) return new ApiError(`${failure}; not rolled back (rollback disabled)`);
    if (!previous) return new ApiError(`${failure}; not rolled back: ${app} had no earlier release`);
    if (!runsImage) {
      return new ApiError(
        `${failure}; not rolled back: v${previous.version}, the release before, ran no image as ${processType} ` +
          `(this was ${app}'s first image release for it)`,
      );
    }
    // Heroku destroys the image of an old release (status `expired`) and cannot roll back to it.
    if (previous.status === "expired") {
      return new ApiError(`${failure}; not rolled back: v${previous.version} is expired (Heroku destroyed its image)`);
    }
    if (previous.eligible_for_rollback === false) {
      return new ApiError(`${failure}; not rolled back: Heroku says v${previous.version} is not eligible for rollback`);
    }
    // Absent: Heroku did not say; it refuses an ineligible rollback itself, so try and report what it answers.
    const unknown =
      previous.eligible_for_rollback === undefined
        ? ` (Heroku did not say whether v${previous.version} is eligible for rollback)`
        : "";
    this.log(`rolling back ${app} to v${previous.version}${unknown}: ${failure}`);
    try {
      const restored = await this.followRelease(await this.api.rollback(app, previous), request, undefined);
      let line = `rolled back to v${previous.version}${unknown} (as v${restored.version})`;
      if (before) {
        const earlier = typeof before.commit === "string" ? before.commit : undefined;
        const body = await this.waitForVersion({
          url: verify,
          commit: earlier,
          release: `v${restored.version}`,
          timeoutMs: request.verifyTimeoutMs,
          intervalMs: request.verifyIntervalMs,
        });
        line += `; ${verify}/version reports ${earlier && body.commit === earlier ? `commit ${earlier}` : `release v${restored.version}`} again`;
      } else {
        line += `; not checked on ${verify}/version, which did not answer before the deploy`;
      }
      return new ApiError(`${failure}; ${line}`);
    } catch (err) {
      return new ApiError(
        `${failure}; rollback to v${previous.version}${unknown} also failed: ${(err as Error).message}`,
      );
    }
  }

  /** {@link waitForVersion} with this releaser's fetch, clock, log and User-Agent. */
  private waitForVersion(probe: Omit<VersionProbe, "userAgent">): Promise<Record<string, unknown>> {
    return waitForVersion({
      fetch: this.fetch,
      sleep: this.sleep,
      now: this.now,
      log: this.log,
      userAgent: this.userAgent,
      ...probe,
    });
  }

  /**
   * Follows one release of `request.app` (by id) until it settles, within the request's bounds; any status but
   * `succeeded`, or a timeout, throws {@link ReleaseError}.
   */
  private async followRelease(
    first: HerokuRelease,
    request: ReleaseRequest,
    previous: HerokuRelease | undefined,
  ): Promise<HerokuRelease> {
    const { app, timeoutMs = RELEASE_TIMEOUT_MS, intervalMs = 3_000 } = request;
    let release = first;
    let reads = 0;
    const settled = async () => {
      if (reads++ > 0) {
        try {
          release = await this.api.releaseInfo(app, release.id);
        } catch (err) {
          // The formation is already updated: a 5xx or a network error while watching is "not yet", not a failed deploy.
          if (err instanceof ApiError && (err.status === undefined || err.status >= 500)) return undefined;
          throw err;
        }
      }
      if (release.status === "pending") return undefined;
      if (release.status !== "succeeded") {
        throw new ReleaseError(
          `Heroku release v${release.version} of ${app} ${release.status}: ${await this.api.releaseOutput(app, release)}`,
          release,
          previous,
        );
      }
      return release;
    };
    const seconds = Math.round(timeoutMs / 1000);
    const options = {
      timeoutMs,
      intervalMs,
      sleep: this.sleep,
      now: this.now,
      log: this.log,
      progress: (elapsed: number) =>
        `waiting for Heroku release v${release.version} of ${app}: ${release.status} after ${minutes(elapsed)} of ${minutes(timeoutMs)}`,
    };
    try {
      return await pollUntil(
        settled,
        options,
        () => `Heroku release v${release.version} of ${app} still ${release.status} after ${seconds}s`,
      );
    } catch (err) {
      if (err instanceof ReleaseError || !(err instanceof ApiError) || err.status !== undefined) throw err;
      throw new ReleaseError(err.message, release, previous);
    }
  }
}

/**
 * Why a release that did not succeed is not rolled back: a failed one never went live (Heroku's release phase: the
 * current release stays untouched), and one still pending may yet go live, so a rollback would race it.
 */
function notRolledBack(app: string, { release, previous }: ReleaseError): string {
  const current = previous ? `v${previous.version} is still the current release` : `${app} had no release running`;
  if (release.status === "failed") return `not rolled back: a failed release never goes live, so ${current}`;
  const follow = `heroku releases:info v${release.version} -a ${app}`;
  if (release.status === "pending") {
    return `not rolled back: it goes live if its release phase succeeds (follow it with ${follow})`;
  }
  return `not rolled back: it is ${release.status}, not succeeded (see ${follow})`;
}
