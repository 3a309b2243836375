// A loopback CONTRACT DOUBLE of the parts of the Heroku Platform API a container release uses. It is not Heroku: it
// implements the documented contract (Platform API reference and heroku/platform-api schema.json: headers, errors,
// Range, app `generation`, release `status` incl. `expired`, `eligible_for_rollback`, `output_stream_url`, rollback as
// POST /apps/{app}/releases {"release": id}, the formation list; the heroku CLI's container:release, releases:rollback
// and its API client)
// strictly, so a client that sends what Heroku would refuse fails here too. Where Heroku's exact wording is unknown
// (error messages other than those the CLI's tests show), the double's own text stands in and tests do not rely on it.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const V3 = "application/vnd.heroku+json; version=3";
const DOCKER_RELEASES = `${V3}.docker-releases`;
/**
 * The variant the CLI reads releases and rolls back with (heroku/cli f7db68e5). `eligible_for_rollback` may be absent
 * under plain v3; the double sends it only under this variant, so a client must ask as the CLI does.
 */
const SDK = `${V3}.sdk`;
/** Heroku's account pool (Platform API reference, "Rate Limits"). */
const RATE_LIMIT_POOL = 4500;
/** What the CLI prints from the PATCH answer's Warning-Message header when the image is already running (heroku/cli #1167, #1965). */
const ALREADY_RUNNING = (type: string) =>
  `The process type ${type} was not updated, because it is already running the specified docker image.`;

/** One request the double received, as the client sent it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

type ReleaseStatus = "pending" | "succeeded" | "failed" | "expired";

/** A release as the double stores it: the documented fields the client reads, plus the formation it runs. */
interface Release {
  id: string;
  version: number;
  status: ReleaseStatus;
  description: string;
  current: boolean;
  eligible_for_rollback: boolean;
  output_stream_url: string | null;
  created_at: string;
  /** Image id per process type (not part of Heroku's release body). */
  formation: Record<string, string>;
  /** How this release settles (not part of Heroku's release body). */
  plan: ReleasePlan;
}

/** What happens to a release the double creates. */
export interface ReleasePlan {
  /** How many reads see it `pending` before it settles; 0 = settled at once. */
  pendingReads: number;
  outcome: "succeeded" | "failed";
  /** Release-phase output; undefined = no release phase, so no `output_stream_url`. */
  output?: string;
  /** The stream answers 404 this many times before it exists (Heroku creates it when the release phase starts). */
  streamNotFoundReads?: number;
  /** The stream's type; Heroku documents `text/plain` or `text/event-stream`. Default text/plain. */
  streamType?: "text/plain" | "text/event-stream";
}

/** The image every app's earlier releases run as `web`: a release of any other image is a change. */
export const PREVIOUS_IMAGE = `sha256:${"e1".repeat(32)}`;

/** Loopback stand-in for api.heroku.com; see the file comment. */
export class HerokuContractDouble {
  readonly requests: RecordedRequest[] = [];
  /** Stack per app name; an app not listed here is a 404. */
  readonly stacks = new Map<string, string>();
  /** `generation.name` per app: `cedar` or `fir`. */
  readonly generations = new Map<string, "cedar" | "fir">();
  /** `web_url` per app name, for apps that have one. */
  readonly webUrls = new Map<string, string>();
  /** Plan for the release the next formation update creates. */
  releasePlan: ReleasePlan = { pendingReads: 0, outcome: "succeeded" };
  /** Plan for the release a rollback creates (a rollback runs the release phase too). */
  rollbackPlan: ReleasePlan = { pendingReads: 0, outcome: "succeeded" };
  /** The next `unavailableReleaseReads` reads of one release get 503, as during a Platform API blip. */
  unavailableReleaseReads = 0;
  /** The next `rateLimited` requests get 429 rate_limit with `RateLimit-Remaining: 0` (Heroku sends no Retry-After). */
  rateLimited = 0;
  private rateLimitRemaining = RATE_LIMIT_POOL;
  /**
   * Process types in each app's formation: a container app gets one from its first image release of that type and
   * keeps it (before that, `heroku ps:scale web=1` finds no such process type).
   */
  private readonly formations = new Map<string, Set<string>>();
  /** Image ids pushed per `<app>/<type>` repository: Heroku only releases an image pushed to that process type. */
  private readonly pushed = new Map<string, Set<string>>();
  private readonly releases = new Map<string, Release[]>();
  private readonly pendingReads = new Map<string, number>();
  private readonly streamMisses = new Map<string, number>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    private readonly token: string,
  ) {}

  /** Starts the double on 127.0.0.1 with a free port; requests must carry `Authorization: Bearer <token>`. */
  static async start(token: string): Promise<HerokuContractDouble> {
    let double: HerokuContractDouble | undefined;
    const server = createServer((req, res) => void double!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    double = new HerokuContractDouble(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token);
    return double;
  }

  /**
   * Adds a Cedar app with `previousReleases` succeeded releases (v1…vN, the last current) running {@link PREVIOUS_IMAGE}
   * as `web`. A Fir app gets stack `cnb`, as Heroku reports it, whatever `stack` says.
   */
  addApp(name: string, stack: string, previousReleases: number, generation: "cedar" | "fir" = "cedar"): void {
    this.stacks.set(name, generation === "fir" ? "cnb" : stack);
    this.generations.set(name, generation);
    this.releases.set(name, []);
    this.formations.set(name, new Set());
    for (let i = 0; i < previousReleases; i++) {
      this.addRelease(name, "Initial release", { web: PREVIOUS_IMAGE }, { pendingReads: 0, outcome: "succeeded" });
    }
  }

  /**
   * Adds a Cedar container app as `heroku create --stack container` leaves it: v1 "Initial release" and v2 "Enable
   * Logplex", both succeeded and eligible for rollback, neither running an image, and an empty formation.
   */
  addNewApp(name: string): void {
    this.addApp(name, "container", 0);
    for (const description of ["Initial release", "Enable Logplex"]) {
      this.addRelease(name, description, {}, { pendingReads: 0, outcome: "succeeded" });
    }
  }

  /** Records `imageId` as pushed to `registry.heroku.com/<app>/<type>`. */
  pushImage(app: string, type: string, imageId: string): void {
    const key = `${app}/${type}`;
    this.pushed.set(key, (this.pushed.get(key) ?? new Set()).add(imageId));
  }

  /**
   * Marks release `version` of `app` expired, as Heroku does once its image is destroyed (changelog 3395); a pending
   * one stays expired instead of settling as planned.
   */
  expire(app: string, version: number): void {
    const release = this.releasesOf(app).find((r) => r.version === version)!;
    Object.assign(release, { status: "expired", eligible_for_rollback: false });
    this.pendingReads.delete(release.id);
  }

  /** Marks release `version` of `app` not eligible for rollback; Heroku decides eligibility, a test stands in for it. */
  markIneligible(app: string, version: number): void {
    this.releasesOf(app).find((r) => r.version === version)!.eligible_for_rollback = false;
  }

  /** The releases of `app`, oldest first. */
  releasesOf(app: string): readonly Release[] {
    return this.releases.get(app) ?? [];
  }

  /** The release `app` runs now. */
  currentRelease(app: string): Release | undefined {
    return this.releasesOf(app).find((r) => r.current);
  }

  /** Stops listening. */
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private addRelease(app: string, description: string, formation: Record<string, string>, plan: ReleasePlan): Release {
    const list = this.releases.get(app)!;
    const release: Release = {
      id: randomUUID(),
      version: list.length + 1,
      status: "pending",
      description,
      current: false,
      eligible_for_rollback: false,
      output_stream_url: plan.output === undefined ? null : `${this.url}/streams/${randomUUID()}`,
      created_at: new Date().toISOString(),
      formation,
      plan,
    };
    list.push(release);
    if (plan.pendingReads > 0) this.pendingReads.set(release.id, plan.pendingReads);
    else this.settle(app, release);
    this.streamMisses.set(release.id, plan.streamNotFoundReads ?? 0);
    return release;
  }

  /** Settles a release as planned; a succeeded one becomes the app's only current release. */
  private settle(app: string, release: Release): void {
    release.status = release.plan.outcome;
    if (release.status !== "succeeded") return;
    for (const other of this.releasesOf(app)) other.current = false;
    release.current = true;
    release.eligible_for_rollback = true;
    for (const type of Object.keys(release.formation)) this.formations.get(app)!.add(type);
  }

  /** What a client sees of a release under `accept` (the double's bookkeeping left out). */
  private view(release: Release, accept: string | undefined): Partial<Release> {
    const { formation, plan, eligible_for_rollback, ...body } = release;
    return accept === SDK ? { ...body, eligible_for_rollback } : body;
  }

  /** A read of `release` under `accept`: counts down its pending reads, then settles it. */
  private read(app: string, release: Release, accept: string | undefined): Partial<Release> {
    const left = this.pendingReads.get(release.id);
    if (left !== undefined) {
      if (left > 0) this.pendingReads.set(release.id, left - 1);
      else {
        this.pendingReads.delete(release.id);
        this.settle(app, release);
      }
    }
    return this.view(release, accept);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of req) body += chunk;
    const path = new URL(req.url!, this.url).pathname;
    this.requests.push({ method: req.method!, path, headers: req.headers, body });
    const requestId = randomUUID();
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res
        .writeHead(status, {
          "Content-Type": "application/json",
          "Request-Id": requestId,
          "RateLimit-Remaining": String(this.rateLimitRemaining),
          ...headers,
        })
        .end(JSON.stringify(payload));
    };
    const fail = (status: number, id: string, message: string) => send(status, { id, message });

    // Release-phase output streams are pre-signed URLs on another host at Heroku: no Platform API headers apply.
    const stream = /^\/streams\/([\w-]+)$/.exec(path);
    if (stream) return this.serveStream(req, res, `${this.url}${path}`);

    if (this.rateLimited > 0) {
      this.rateLimited--;
      this.rateLimitRemaining = 0;
      return fail(429, "rate_limit", "Your account reached the API rate limit");
    }
    if (req.headers.authorization !== `Bearer ${this.token}`)
      return fail(401, "unauthorized", "Invalid credentials provided.");
    // The pool refills over time (Heroku: about 75 tokens a minute); after a client's back-off it has some again.
    this.rateLimitRemaining = Math.max(0, (this.rateLimitRemaining || RATE_LIMIT_POOL) - 1);
    const accept = req.headers.accept;
    if (accept !== V3 && accept !== DOCKER_RELEASES && accept !== SDK) {
      return fail(406, "not_acceptable", `Please set your Accept header to "${V3}".`);
    }

    const match = /^\/apps\/([^/]+)(\/formation|\/releases(?:\/([^/]+))?)?$/.exec(path);
    const app = match && decodeURIComponent(match[1]!);
    if (!match || !app || !this.stacks.has(app)) return fail(404, "not_found", "Couldn't find that app.");
    const [, , sub, releaseId] = match;

    if (req.method === "GET" && sub === undefined) {
      const stack = { id: randomUUID(), name: this.stacks.get(app) };
      const generation = { id: randomUUID(), name: this.generations.get(app) ?? "cedar" };
      return send(200, {
        id: randomUUID(),
        name: app,
        stack,
        build_stack: stack,
        generation,
        web_url: this.webUrls.get(app) ?? null,
      });
    }
    if (req.method === "PATCH" && sub === "/formation") return this.updateFormation(app, accept, req, body, send, fail);
    if (req.method === "GET" && sub === "/formation") return send(200, this.formationOf(app));
    if (req.method === "GET" && sub === "/releases")
      return this.listReleases(app, accept, req.headers.range, send, fail);
    if (req.method === "POST" && sub === "/releases") return this.rollback(app, accept, req, body, send, fail);
    if (req.method === "GET" && releaseId !== undefined && this.unavailableReleaseReads > 0) {
      this.unavailableReleaseReads--;
      return fail(503, "unavailable", "The API is temporarily unavailable.");
    }
    if (req.method === "GET" && releaseId !== undefined) {
      const release = this.releasesOf(app).find((r) => r.id === releaseId || String(r.version) === releaseId);
      return release
        ? send(200, this.read(app, release, accept))
        : fail(404, "not_found", "Couldn't find that release.");
    }
    return fail(404, "not_found", "The requested API endpoint was not found.");
  }

  /** The release phase's output: 404 until the stream exists, then the whole output as text/plain or server-sent events. */
  private serveStream(req: IncomingMessage, res: ServerResponse, url: string): void {
    const release = [...this.releases.values()].flat().find((r) => r.output_stream_url === url);
    const notFound = () => void res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
    if (req.headers.authorization) {
      return void res
        .writeHead(400, { "Content-Type": "text/plain" })
        .end("output streams take no Authorization header");
    }
    if (!release || release.plan.output === undefined) return notFound();
    const misses = this.streamMisses.get(release.id) ?? 0;
    if (misses > 0) {
      this.streamMisses.set(release.id, misses - 1);
      return notFound();
    }
    const type = release.plan.streamType ?? "text/plain";
    const text =
      type === "text/plain"
        ? release.plan.output
        : release.plan.output
            .split("\n")
            .filter(Boolean)
            .map((line, i) => `id: ${i + 1}\ndata: ${line}\n\n`)
            .join("");
    res.writeHead(200, { "Content-Type": type }).end(text);
  }

  private updateFormation(
    app: string,
    accept: string,
    req: IncomingMessage,
    body: string,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
    fail: (status: number, id: string, message: string) => void,
  ): void {
    // docker_image is only part of the formation update in the docker-releases variant.
    if (accept !== DOCKER_RELEASES)
      return fail(406, "not_acceptable", `Formation docker_image updates need Accept: ${DOCKER_RELEASES}.`);
    if (req.headers["content-type"] !== "application/json")
      return fail(400, "bad_request", "Content-Type must be application/json.");
    let updates: unknown;
    try {
      updates = (JSON.parse(body) as { updates?: unknown }).updates;
    } catch {
      return fail(400, "bad_request", "Invalid JSON.");
    }
    const valid =
      Array.isArray(updates) &&
      updates.length > 0 &&
      updates.every(
        (u: Record<string, unknown>) =>
          Object.keys(u).sort().join() === "docker_image,type" &&
          typeof u.type === "string" &&
          typeof u.docker_image === "string",
      );
    if (!valid) return fail(422, "invalid_params", "updates must be [{type, docker_image}].");
    const list = updates as { type: string; docker_image: string }[];
    const unknown = list.find((u) => !this.pushed.get(`${app}/${u.type}`)?.has(u.docker_image));
    if (unknown) return fail(422, "invalid_params", `Couldn't find that docker image: ${unknown.docker_image}.`);

    // An update naming the image a process type already runs changes nothing: no release, a warning instead.
    const running = this.currentRelease(app)?.formation ?? {};
    const changed = list.filter((u) => running[u.type] !== u.docker_image);
    const warnings = list.filter((u) => running[u.type] === u.docker_image).map((u) => ALREADY_RUNNING(u.type));
    if (changed.length > 0) {
      const description = `Deployed ${changed.map((u) => `${u.type} (${u.docker_image.slice(7, 19)})`).join(", ")}`;
      const formation = { ...running, ...Object.fromEntries(changed.map((u) => [u.type, u.docker_image])) };
      this.addRelease(app, description, formation, this.releasePlan);
    }
    const formation = list.map((u) => this.formationEntry(app, u.type));
    send(200, formation, warnings.length ? { "Warning-Message": warnings.join(" ") } : {});
  }

  /** The app's formation: one entry per process type it has. */
  private formationOf(app: string): unknown[] {
    return [...this.formations.get(app)!].map((type) => this.formationEntry(app, type));
  }

  /** One formation entry as the Platform API shows it. */
  private formationEntry(app: string, type: string): unknown {
    return { id: randomUUID(), type, quantity: 1, size: "basic", command: null, app: { name: app } };
  }

  /** Rollback: a new release with the formation (images) of an earlier one; expired or failed ones cannot be restored. */
  private rollback(
    app: string,
    accept: string,
    req: IncomingMessage,
    body: string,
    send: (status: number, payload: unknown) => void,
    fail: (status: number, id: string, message: string) => void,
  ): void {
    if (req.headers["content-type"] !== "application/json")
      return fail(400, "bad_request", "Content-Type must be application/json.");
    let target: unknown;
    try {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      // Creating a release from a slug is the other POST /releases; a container app has no slugs.
      if (Object.keys(parsed).join() !== "release")
        return fail(422, "invalid_params", "Rollback takes only {release}.");
      target = parsed.release;
    } catch {
      return fail(400, "bad_request", "Invalid JSON.");
    }
    const release = this.releasesOf(app).find((r) => r.id === target);
    if (!release) return fail(404, "not_found", "Couldn't find that release.");
    if (!release.eligible_for_rollback) {
      return fail(
        422,
        "invalid_params",
        `Release v${release.version} (${release.status}) is not eligible for rollback.`,
      );
    }
    send(
      201,
      this.view(
        this.addRelease(app, `Rollback to v${release.version}`, { ...release.formation }, this.rollbackPlan),
        accept,
      ),
    );
  }

  private listReleases(
    app: string,
    accept: string,
    range: string | undefined,
    send: (status: number, payload: unknown, headers?: Record<string, string>) => void,
    fail: (status: number, id: string, message: string) => void,
  ): void {
    // Heroku's default for lists is the first 200, ascending; `Range` changes field, order and page size.
    let max = 200;
    let order = "asc";
    if (range !== undefined) {
      const parsed = /^version \.\.; max=(\d+)(?:, order=(asc|desc))?$/.exec(range);
      if (!parsed) return fail(416, "requested_range_not_satisfiable", `Invalid Range: ${range}`);
      max = Number(parsed[1]);
      order = parsed[2] ?? "asc";
    }
    const all = [...this.releasesOf(app)].sort((a, b) =>
      order === "desc" ? b.version - a.version : a.version - b.version,
    );
    const page = all.slice(0, max).map((r) => this.read(app, r, accept));
    const partial = all.length > max;
    send(
      partial ? 206 : 200,
      page,
      partial ? { "Next-Range": `version ]${page.at(-1)!.version}..; max=${max}, order=${order}` } : {},
    );
  }
}
