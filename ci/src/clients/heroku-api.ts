/**
 * A minimal Heroku Platform API client for container releases, following the contract of the heroku CLI's
 * `container:release`: check the app is a Cedar app on the `container` stack, note the releases, PATCH the formation
 * with the image id (config digest) under the `docker-releases` variant, read a release and its output, roll back.
 * Each call is one request, retried after `429`, failing with one line free of the token. Following a release until
 * it settles, verifying it and rolling back are decided in ../heroku-release.ts.
 */
import { ApiError, type Fetch, type Log, minutes, oneLine, redact, type Sleep, send, sleep } from "./http-util.js";
import { IMAGE_ID_PATTERN } from "./registry-client.js";

const ACCEPT_V3 = "application/vnd.heroku+json; version=3";
/** The API variant that accepts `docker_image` in formation updates. */
const ACCEPT_DOCKER_RELEASES = "application/vnd.heroku+json; version=3.docker-releases";
/** The variant the CLI reads releases and rolls back with, so they carry `eligible_for_rollback` (heroku/cli f7db68e5). */
const ACCEPT_SDK = "application/vnd.heroku+json; version=3.sdk";

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
  /** Where notices go (a rate-limit pause, a warning from Heroku); `console.log` otherwise. */
  log?: Log;
  /** Per-request timeout; default 30 s. */
  requestTimeoutMs?: number;
  /** How many times one request is retried after `429 Too Many Requests`; default 4. */
  rateLimitRetries?: number;
}

/** What {@link HerokuApi.releaseImage} releases. */
export interface ReleaseImageRequest {
  app: string;
  /** Process type to run the image as, e.g. `web`. */
  processType: string;
  /** The image's config digest, `sha256:<64 hex>` (see `fetchConfigDigest`). */
  imageId: string;
}

/** The release that was current before a formation update, and whether it ran an image as the process type. */
export interface Before {
  release?: HerokuRelease;
  /** False on the app's first image release for the type: what ran before (v2 "Enable Logplex") has no image. */
  runsImage: boolean;
}

/** What a formation update did: a new release (as listed right after it), or none as the type already runs the image. */
export type ReleaseResult =
  | { kind: "released"; release: HerokuRelease; before: Before }
  | { kind: "unchanged"; current?: HerokuRelease };

/** A Heroku Platform API client, scoped to one token. All methods throw {@link ApiError} with one-line messages. */
export class HerokuApi {
  private readonly apiUrl: string;
  private readonly token: string;
  private readonly userAgent: string;
  private readonly fetch: Fetch;
  private readonly sleep: Sleep;
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
   * formation has the process type, PATCHes the formation, and returns the new release as Heroku lists it then
   * (usually `pending`: the caller follows it). When the process type already runs the image Heroku creates no
   * release: as `container:release` does, that is seen as the newest release id unchanged by the update, and returned
   * as `unchanged`. A warning Heroku sends (`X-Heroku-Warning` or `Warning-Message`, the headers heroku-cli-command
   * prints) is logged.
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
    return { kind: "released", release: latest, before };
  }

  /** One release as it is now (`GET /apps/{app}/releases/{id}`), read as the CLI reads it (`3.sdk`). */
  async releaseInfo(app: string, id: string): Promise<HerokuRelease> {
    const { body } = await this.request<HerokuRelease>("GET", `/apps/${encodeURIComponent(app)}/releases/${id}`, {
      accept: ACCEPT_SDK,
    });
    return body;
  }

  /**
   * Rolls `app` back to `to` (`POST /apps/{app}/releases` with `{"release": id}`, as `heroku releases:rollback` does):
   * returns the new release with `to`'s image and config as created, to be followed like any release.
   */
  async rollback(app: string, to: HerokuRelease): Promise<HerokuRelease> {
    const { body } = await this.request<HerokuRelease>("POST", `/apps/${encodeURIComponent(app)}/releases`, {
      accept: ACCEPT_SDK,
      body: { release: to.id },
    });
    return body;
  }

  /**
   * The tail of the release phase's output, or where to find it. The stream answers 404 until it exists (the CLI
   * retries 30 times, a second apart) and is `text/plain` or `text/event-stream`. Sent without the token: the URL
   * carries its own access.
   */
  async releaseOutput(app: string, release: HerokuRelease): Promise<string> {
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

/** The `data:` lines of a server-sent event stream, one per line. */
function eventData(text: string): string {
  return text
    .split(/\r?\n/)
    .filter((line) => line.startsWith("data:"))
    .map((line) => line.slice(5).replace(/^ /, ""))
    .join("\n");
}
