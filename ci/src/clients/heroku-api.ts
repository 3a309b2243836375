/**
 * A minimal Heroku Platform API client for container releases, following the contract of the heroku CLI's
 * `container:release`: check the app is a Cedar app on the `container` stack, note the releases, PATCH the formation
 * with the image id (config digest) under the `docker-releases` variant, then follow the new release to `succeeded`
 * or `failed`. {@link HerokuApi.deploy} adds what the CLI leaves to people: it waits until the app's `/version`
 * reports the commit, and rolls back to the release that was current before when a succeeded release fails that check.
 */
import {
  ApiError,
  type Clock,
  type Fetch,
  type Log,
  minutes,
  oneLine,
  pollUntil,
  redact,
  type Sleep,
  send,
  sleep,
} from "./http-util.js";
import { IMAGE_ID_PATTERN } from "./registry-client.js";

const ACCEPT_V3 = "application/vnd.heroku+json; version=3";
/** The API variant that accepts `docker_image` in formation updates. */
const ACCEPT_DOCKER_RELEASES = "application/vnd.heroku+json; version=3.docker-releases";
/** The variant the CLI reads releases and rolls back with, so they carry `eligible_for_rollback` (heroku/cli f7db68e5). */
const ACCEPT_SDK = "application/vnd.heroku+json; version=3.sdk";

/** How long a release (or a rollback's release) may stay pending: Heroku's release phase may run 1 h, plus 5 min. */
export const RELEASE_TIMEOUT_S = 3900;
export const RELEASE_TIMEOUT_MS = RELEASE_TIMEOUT_S * 1000;
/** How long `/version` may take to show a commit. */
export const VERIFY_TIMEOUT_MS = 180_000;
/** A deploy's longest wait: release, /version, then a rollback's release and /version (136 min by default). */
export const DEPLOY_BOUND_MS = 2 * (RELEASE_TIMEOUT_MS + VERIFY_TIMEOUT_MS);

/** The fields of a Heroku app this client reads. */
export interface HerokuApp {
  name: string;
  stack?: { name?: string };
  build_stack?: { name?: string };
  /** `cedar` or `fir`; only Cedar runs images from Heroku's container registry. */
  generation?: { name?: string };
  /** The app's public URL, e.g. `https://pt-dummy-app-1234.herokuapp.com/`. */
  web_url?: string | null;
}

/** The fields of a Heroku release this client reads. */
export interface HerokuRelease {
  id: string;
  version: number;
  /** `pending` while the release phase runs, then `succeeded` or `failed`; `expired` once its image is destroyed. */
  status: string;
  description?: string;
  /** Whether the app runs this release now. */
  current?: boolean;
  /** Whether Heroku would roll back to it; only sent under the `3.sdk` variant, so absent means unknown. */
  eligible_for_rollback?: boolean;
  /** Where the release phase's output can be read (no credentials needed), when there is a release phase. */
  output_stream_url?: string | null;
}

/** How to reach the Platform API. */
export interface HerokuApiOptions {
  /** An API or authorization token (`heroku authorizations:create`). Sent as `Authorization: Bearer`, never in errors. */
  token: string;
  /** Sent as `User-Agent` on every request (see `userAgent`). */
  userAgent: string;
  /** Base URL; default `https://api.heroku.com`. */
  apiUrl?: string;
  /** Injected for tests; the global `fetch` otherwise. */
  fetch?: Fetch;
  /** Injected for tests; a real timer otherwise. */
  sleep?: Sleep;
  /** Injected for tests; `Date.now` otherwise. */
  now?: Clock;
  /** Where progress lines and notices go; `console.log` otherwise. */
  log?: Log;
  /** Per-request timeout; default 30 s. */
  requestTimeoutMs?: number;
  /** How many times one request is retried after `429 Too Many Requests`; default 4. */
  rateLimitRetries?: number;
}

/** What {@link HerokuApi.releaseImage} releases, and how long it follows the release. */
export interface ReleaseImageRequest {
  app: string;
  /** Process type to run the image as, e.g. `web`. */
  processType: string;
  /** The image's config digest, `sha256:<64 hex>` (see `fetchConfigDigest`). */
  imageId: string;
  /** Give up following the release after this long; default {@link RELEASE_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Pause between release status polls; default 3 s. */
  intervalMs?: number;
}

/** The release that was current before a formation update, and whether it ran an image as the process type. */
export interface Before {
  release?: HerokuRelease;
  /** False on the app's first image release for the type: what ran before (v2 "Enable Logplex") has no image. */
  runsImage: boolean;
}

/** What a formation update did: a new release, or nothing because the process type already runs the image. */
export type ReleaseResult =
  | { kind: "released"; release: HerokuRelease; before: Before }
  | { kind: "unchanged"; current?: HerokuRelease };

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

/** What {@link HerokuApi.deploy} releases, verifies and, on failure, rolls back. */
export interface DeployRequest extends ReleaseImageRequest {
  /** With `commit`: the service's base URL whose `/version` must report the commit. */
  verifyUrl?: string;
  commit?: string;
  /** Roll back to the release that was current before when a succeeded release fails the verification. */
  rollback: boolean;
  /** Bound and pause of the `/version` checks; defaults {@link VERIFY_TIMEOUT_MS} and 5 s. */
  verifyTimeoutMs?: number;
  verifyIntervalMs?: number;
}

/** A Heroku Platform API client, scoped to one token. All methods throw {@link ApiError} with one-line messages. */
export class HerokuApi {
  private readonly apiUrl: string;
  private readonly token: string;
  private readonly userAgent: string;
  private readonly fetch: Fetch;
  private readonly sleep: Sleep;
  private readonly now: Clock;
  private readonly log: Log;
  private readonly requestTimeoutMs: number;
  private readonly rateLimitRetries: number;

  /** @param options token, base URL and test seams; see {@link HerokuApiOptions}. */
  constructor(options: HerokuApiOptions) {
    this.apiUrl = (options.apiUrl ?? "https://api.heroku.com").replace(/\/+$/, "");
    this.token = options.token;
    this.userAgent = options.userAgent;
    this.fetch = options.fetch ?? fetch;
    this.sleep = options.sleep ?? sleep;
    this.now = options.now ?? Date.now;
    this.log = options.log ?? console.log;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.rateLimitRetries = options.rateLimitRetries ?? 4;
  }

  /**
   * `GET /apps/{app}`; fails unless the app is a Cedar app and it (or its build stack) is on the `container` stack,
   * saying what fixes it. Call it before building, so a misconfigured app fails fast.
   */
  async checkContainerApp(app: string): Promise<HerokuApp> {
    const { body } = await this.request<HerokuApp>("GET", `/apps/${encodeURIComponent(app)}`);
    const generation = body.generation?.name ?? "cedar";
    // Fir apps (stack cnb) cannot run registry images, and `stack:set container` does not exist for them.
    if (generation !== "cedar") {
      throw new ApiError(
        `Heroku app ${app} is a ${generation}-generation app; container releases need a Cedar-generation app on the ` +
          `container stack, e.g. heroku create <name> --stack container`,
      );
    }
    if (body.stack?.name !== "container" && body.build_stack?.name !== "container") {
      throw new ApiError(
        `Heroku app ${app} is on stack ${body.stack?.name ?? "unknown"}, not container; ` +
          `switch it with: heroku stack:set container -a ${app}`,
      );
    }
    return body;
  }

  /**
   * The app's newest releases, newest first (`Range: version ..; max=<max>, order=desc`), read as the CLI reads them
   * (`3.sdk`), so each says whether it is `eligible_for_rollback`.
   */
  async releases(app: string, max: number): Promise<HerokuRelease[]> {
    const { body } = await this.request<HerokuRelease[]>("GET", `/apps/${encodeURIComponent(app)}/releases`, {
      accept: ACCEPT_SDK,
      range: `version ..; max=${max}, order=desc`,
    });
    return body;
  }

  /**
   * Releases `imageId` as `processType`: checks the app, notes the newest and the current release and whether the
   * formation has the process type, PATCHes the formation, then follows the new release until it is `succeeded`
   * (returned), ends otherwise (`failed`, `expired`) or is still pending at `timeoutMs` (thrown as
   * {@link ReleaseError}, with the release output when it can be read). When the process type already runs the image
   * Heroku creates no release: as `container:release` does, that is seen as the newest release id unchanged by the
   * update, and returned as `unchanged`. A warning Heroku sends (`X-Heroku-Warning` or `Warning-Message`, the headers
   * heroku-cli-command prints) is logged.
   */
  async releaseImage(request: ReleaseImageRequest): Promise<ReleaseResult> {
    const { app, processType, imageId } = request;
    if (!IMAGE_ID_PATTERN.test(imageId)) {
      throw new ApiError(`image id must be a config digest sha256:<64 hex>, got ${oneLine(imageId, 80)}`);
    }
    await this.checkContainerApp(app);
    const path = `/apps/${encodeURIComponent(app)}`;
    // A failed release is newest but not current: roll back to the current one. Ten covers a run of failures.
    const history = await this.releases(app, 10);
    const previous = history.find((r) => r.current);
    // A container app gets a process type from its first image release of that type; before it, none runs an image.
    const { body: formation } = await this.request<{ type: string }[]>("GET", `${path}/formation`);
    const before: Before = { release: previous, runsImage: formation.some((f) => f.type === processType) };
    const { headers } = await this.request("PATCH", `${path}/formation`, {
      accept: ACCEPT_DOCKER_RELEASES,
      body: { updates: [{ type: processType, docker_image: imageId }] },
    });
    const warning = headers.get("x-heroku-warning") ?? headers.get("warning-message");
    if (warning) this.log(`Heroku: ${oneLine(warning)}`);
    const [latest] = await this.releases(app, 1);
    if (!latest || latest.id === history[0]?.id) return { kind: "unchanged", current: previous };
    const release = await this.followRelease(
      app,
      latest,
      request.timeoutMs ?? RELEASE_TIMEOUT_MS,
      request.intervalMs ?? 3_000,
      previous,
    );
    return { kind: "released", release, before };
  }

  /**
   * Rolls `app` back to `to` (`POST /apps/{app}/releases` with `{"release": id}`, as `heroku releases:rollback` does):
   * a new release with `to`'s image and config, followed like any release.
   */
  async rollback(
    app: string,
    to: HerokuRelease,
    timeoutMs = RELEASE_TIMEOUT_MS,
    intervalMs = 3_000,
  ): Promise<HerokuRelease> {
    const { body } = await this.request<HerokuRelease>("POST", `/apps/${encodeURIComponent(app)}/releases`, {
      accept: ACCEPT_SDK,
      body: { release: to.id },
    });
    return this.followRelease(app, body, timeoutMs, intervalMs, undefined);
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
    const before = verify ? await this.readVersion(verify) : undefined;
    let result: ReleaseResult;
    try {
      result = await this.releaseImage(request);
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
        throw await this.recover(request, `${report}, but ${(err as Error).message}`, result.before, before);
      }
      report += `; ${verify}/version reports ${commit}`;
    }
    return report;
  }

  /**
   * Rolls back after a succeeded release failed the verification (`failure`), when allowed and possible; returns the
   * one error that says what failed and what was restored.
   */
  private async recover(
    request: DeployRequest,
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
    if (previous.status === "expired" || previous.eligible_for_rollback === false) {
      return new ApiError(
        `${failure}; not rolled back: v${previous.version} is ${previous.status} and Heroku says it is not eligible for rollback`,
      );
    }
    // Absent: Heroku did not say; it refuses an ineligible rollback itself, so try and report what it answers.
    const unknown =
      previous.eligible_for_rollback === undefined
        ? ` (Heroku did not say whether v${previous.version} is eligible for rollback)`
        : "";
    this.log(`rolling back ${app} to v${previous.version}${unknown}: ${failure}`);
    try {
      const restored = await this.rollback(app, previous, request.timeoutMs, request.intervalMs);
      let line = `rolled back to v${previous.version}${unknown} (as v${restored.version})`;
      const verify = request.verifyUrl && request.commit ? request.verifyUrl.replace(/\/+$/, "") : undefined;
      if (verify && before) {
        const earlier = typeof before.commit === "string" ? before.commit : undefined;
        const body = await this.waitForVersion({
          url: verify,
          commit: earlier,
          release: `v${restored.version}`,
          timeoutMs: request.verifyTimeoutMs,
          intervalMs: request.verifyIntervalMs,
        });
        line += `; ${verify}/version reports ${earlier && body.commit === earlier ? `commit ${earlier}` : `release v${restored.version}`} again`;
      } else if (verify) {
        line += `; not checked on ${verify}/version, which did not answer before the deploy`;
      }
      return new ApiError(`${failure}; ${line}`);
    } catch (err) {
      return new ApiError(
        `${failure}; rollback to v${previous.version}${unknown} also failed: ${(err as Error).message}`,
      );
    }
  }

  /** `/version` once, or undefined when it does not answer with JSON. */
  private async readVersion(url: string): Promise<Record<string, unknown> | undefined> {
    try {
      const response = await send(this.fetch, `${url}/version`, { headers: this.probeHeaders() }, 10_000);
      if (response.ok) return (await response.json()) as Record<string, unknown>;
      await response.body?.cancel();
    } catch {
      // Down before the deploy: a rollback then cannot be checked against the earlier commit.
    }
    return undefined;
  }

  private probeHeaders(): Record<string, string> {
    return { Accept: "application/json", "User-Agent": this.userAgent };
  }

  /** {@link waitForVersion} with this client's fetch, clock, log and User-Agent. */
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

  /** Follows one release (by id) until it settles; any status but `succeeded`, or a timeout, throws {@link ReleaseError}. */
  private async followRelease(
    app: string,
    first: HerokuRelease,
    timeoutMs: number,
    intervalMs: number,
    previous: HerokuRelease | undefined,
  ): Promise<HerokuRelease> {
    let release = first;
    let reads = 0;
    const settled = async () => {
      if (reads++ > 0) {
        try {
          ({ body: release } = await this.request<HerokuRelease>(
            "GET",
            `/apps/${encodeURIComponent(app)}/releases/${release.id}`,
            { accept: ACCEPT_SDK },
          ));
        } catch (err) {
          // The formation is already updated: a 5xx or a network error while watching is "not yet", not a failed deploy.
          if (err instanceof ApiError && (err.status === undefined || err.status >= 500)) return undefined;
          throw err;
        }
      }
      if (release.status === "pending") return undefined;
      if (release.status !== "succeeded") {
        throw new ReleaseError(
          `Heroku release v${release.version} of ${app} ${release.status}: ${await this.releaseOutput(app, release)}`,
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

  /**
   * The tail of the release phase's output, or where to find it. The stream answers 404 until it exists (the CLI
   * retries 30 times, a second apart) and is `text/plain` or `text/event-stream`. Sent without the token: the URL
   * carries its own access.
   */
  private async releaseOutput(app: string, release: HerokuRelease): Promise<string> {
    const elsewhere = `see heroku releases:output v${release.version} -a ${app}, or heroku logs -a ${app}`;
    if (!release.output_stream_url) return `no release output; ${elsewhere}`;
    try {
      for (let attempt = 0; ; attempt++) {
        const response = await send(
          this.fetch,
          release.output_stream_url,
          { headers: { "User-Agent": this.userAgent } },
          this.requestTimeoutMs,
        );
        if (response.status === 404 && attempt < 30) {
          await response.body?.cancel();
          await this.sleep(1000);
          continue;
        }
        if (!response.ok) return `release output not readable (${response.status}); ${elsewhere}`;
        const text = await response.text();
        const output = /^text\/event-stream/i.test(response.headers.get("content-type") ?? "") ? eventData(text) : text;
        const line = oneLine(redact(output, [this.token]));
        return line ? `release output: ${line}` : `release output is empty; ${elsewhere}`;
      }
    } catch (err) {
      return `release output not readable (${(err as Error).message}); ${elsewhere}`;
    }
  }

  /**
   * One Platform API call, retried after 429 with back-off (Heroku sends `RateLimit-Remaining` and no `Retry-After`;
   * its pool refills by about a token a second); non-2xx becomes an {@link ApiError}.
   */
  private async request<T = unknown>(
    method: string,
    path: string,
    options: { accept?: string; range?: string; body?: unknown } = {},
  ): Promise<{ body: T; headers: Headers }> {
    const headers: Record<string, string> = {
      Accept: options.accept ?? ACCEPT_V3,
      Authorization: `Bearer ${this.token}`,
      "User-Agent": this.userAgent,
      ...(options.range ? { Range: options.range } : {}),
      ...(options.body === undefined ? {} : { "Content-Type": "application/json" }),
    };
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    for (let attempt = 0; ; attempt++) {
      const response = await send(
        this.fetch,
        `${this.apiUrl}${path}`,
        { method, headers, body },
        this.requestTimeoutMs,
      );
      if (response.status === 429 && attempt < this.rateLimitRetries) {
        await response.body?.cancel();
        const wait = 1000 * 2 ** attempt;
        const remaining = response.headers.get("ratelimit-remaining") ?? "unknown";
        this.log(
          `Heroku API rate limit reached (RateLimit-Remaining ${remaining}); retrying ${method} ${path} in ${minutes(wait)}`,
        );
        await this.sleep(wait);
        continue;
      }
      if (!response.ok) throw await this.platformError(`${method} ${path}`, response);
      return { body: (await response.json()) as T, headers: response.headers };
    }
  }

  /** Heroku's `{"id","message"}` error body and `Request-Id` header as one line, with the token scrubbed. */
  private async platformError(what: string, response: Response): Promise<ApiError> {
    const text = await response.text().catch(() => "");
    let id: string | undefined;
    let message = text;
    try {
      ({ id, message = "" } = JSON.parse(text) as { id?: string; message?: string });
    } catch {
      // Not JSON (a proxy's error page): show the text itself.
    }
    const requestId = response.headers.get("request-id") ?? undefined;
    const line =
      `Heroku API ${what}: ${response.status}${id ? ` ${id}` : ""}` +
      `${message ? `: ${message}` : ""}${requestId ? ` (Request-Id ${requestId})` : ""}`;
    return new ApiError(oneLine(redact(line, [this.token])), response.status, id, requestId);
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

/** The `data:` lines of a server-sent event stream, one per line. */
function eventData(text: string): string {
  return text
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n");
}

/** What {@link waitForVersion} probes. */
export interface VersionProbe {
  /** The service's base URL, e.g. `https://pt-dummy-app.herokuapp.com`; `/version` is appended. */
  url: string;
  /** Done when `/version` reports this `commit`… */
  commit?: string;
  /** …or, with Heroku's dyno metadata, this `heroku.release` (e.g. `v46`). */
  release?: string;
  /** Sent as `User-Agent`. */
  userAgent: string;
  /** Give up after this long; default {@link VERIFY_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Pause between probes; default 5 s. */
  intervalMs?: number;
  /** Test seams: the global `fetch`, a real timer, `Date.now` and `console.log` otherwise. */
  fetch?: Fetch;
  sleep?: Sleep;
  now?: Clock;
  log?: Log;
}

/**
 * Probes `<url>/version` until its JSON reports `commit` (or `heroku.release` is `release`), and returns that JSON.
 * Refused connections, errors and other commits are expected while dynos restart, so they only count as "not yet";
 * prints a progress line at least every minute; after `timeoutMs` throws an {@link ApiError} saying what was last seen.
 */
export async function waitForVersion(probe: VersionProbe): Promise<Record<string, unknown>> {
  const url = `${probe.url.replace(/\/+$/, "")}/version`;
  const timeoutMs = probe.timeoutMs ?? VERIFY_TIMEOUT_MS;
  const wanted = [probe.commit && `commit ${probe.commit}`, probe.release && `release ${probe.release}`]
    .filter(Boolean)
    .join(" or ");
  let last = "no answer";
  const reports = async () => {
    try {
      const headers = { Accept: "application/json", "User-Agent": probe.userAgent };
      const response = await send(probe.fetch ?? fetch, url, { headers }, 10_000);
      if (!response.ok) {
        last = `HTTP ${response.status}`;
        await response.body?.cancel();
        return undefined;
      }
      const body = (await response.json()) as { commit?: unknown; heroku?: { release?: unknown } };
      if ((probe.commit && body.commit === probe.commit) || (probe.release && body.heroku?.release === probe.release))
        return body;
      last = `commit ${String(body.commit)}`;
    } catch (err) {
      last = oneLine((err as Error).message, 200);
    }
    return undefined;
  };
  const options = {
    timeoutMs,
    intervalMs: probe.intervalMs ?? 5_000,
    sleep: probe.sleep,
    now: probe.now,
    log: probe.log,
    progress: (elapsed: number) =>
      `waiting for ${url} to report ${wanted}: ${last} after ${minutes(elapsed)} of ${minutes(timeoutMs)}`,
  };
  return pollUntil(
    reports,
    options,
    () => `${url} did not report ${wanted} within ${Math.round(timeoutMs / 1000)}s (last: ${last})`,
  );
}
