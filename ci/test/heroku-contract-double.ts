// A loopback TEST DOUBLE of the parts of the Heroku Platform API a container release uses. It is not Heroku: it
// implements the documented contract (Platform API reference: headers, errors, Range; heroku CLI container:release)
// strictly, so a client that sends what Heroku would refuse fails here too. What it cannot know about the real
// service is listed in the closing note of issue 4.
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

const V3 = "application/vnd.heroku+json; version=3";
const DOCKER_RELEASES = `${V3}.docker-releases`;

/** One request the double received, as the client sent it. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  body: string;
}

/** A release as the double stores it (the documented fields the client reads, plus a few Heroku always sends). */
interface Release {
  id: string;
  version: number;
  status: "pending" | "succeeded" | "failed";
  description: string;
  current: boolean;
  output_stream_url: string | null;
  created_at: string;
}

/** What happens to the release a formation update creates. */
export interface ReleasePlan {
  /** How many reads see it `pending` before it settles; 0 = settled at once (no release phase). */
  pendingReads: number;
  outcome: "succeeded" | "failed";
  /** Release-phase output; undefined = no release phase, so no `output_stream_url`. */
  output?: string;
  /** The stream answers 404 this many times before it exists (Heroku creates it when the release phase starts). */
  streamNotFoundReads?: number;
  /** The stream's type; Heroku documents `text/plain` or `text/event-stream`. Default text/plain. */
  streamType?: "text/plain" | "text/event-stream";
  /** When false, the formation update creates no release (the double's way to test a release that never shows up). */
  createsRelease?: boolean;
}

/** Loopback stand-in for api.heroku.com; see the file comment. */
export class HerokuContractDouble {
  readonly requests: RecordedRequest[] = [];
  /** Stack per app name; an app not listed here is a 404. */
  readonly stacks = new Map<string, string>();
  /** `generation.name` per app: `cedar` or `fir`. */
  readonly generations = new Map<string, "cedar" | "fir">();
  /** `web_url` per app name, for apps that have one. */
  readonly webUrls = new Map<string, string>();
  /** Image ids the "registry" holds; a formation update naming another is a 422, as Heroku's is. */
  readonly images = new Set<string>();
  releasePlan: ReleasePlan = { pendingReads: 0, outcome: "succeeded" };
  /** The next `unavailableReleaseReads` reads of one release get 503, as during a Platform API blip. */
  unavailableReleaseReads = 0;
  /** The next `rateLimited` requests get 429 rate_limit, with this Retry-After header if set. */
  rateLimited = 0;
  retryAfter: string | undefined;
  private readonly releases = new Map<string, Release[]>();
  private pendingReads = new Map<string, number>();
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

  /** Adds an app with `previousReleases` settled releases already (v1…vN); a Fir app gets stack `cnb`, as Heroku reports it. */
  addApp(name: string, stack: string, previousReleases: number, generation: "cedar" | "fir" = "cedar"): void {
    this.stacks.set(name, generation === "fir" ? "cnb" : stack);
    this.generations.set(name, generation);
    this.releases.set(name, []);
    for (let i = 0; i < previousReleases; i++) this.addRelease(name, "succeeded", "Initial release");
  }

  /** The releases of `app`, oldest first. */
  releasesOf(app: string): readonly Release[] {
    return this.releases.get(app) ?? [];
  }

  /** Stops listening. */
  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private addRelease(app: string, status: Release["status"], description: string): Release {
    const list = this.releases.get(app)!;
    const release: Release = {
      id: randomUUID(),
      version: list.length + 1,
      status,
      description,
      current: status === "succeeded",
      output_stream_url: null,
      created_at: new Date().toISOString(),
    };
    list.push(release);
    return release;
  }

  /** A read of `release`: counts down its pending reads, then settles it as planned. */
  private read(release: Release): Release {
    const left = this.pendingReads.get(release.id);
    if (left !== undefined) {
      if (left > 0) this.pendingReads.set(release.id, left - 1);
      else {
        this.pendingReads.delete(release.id);
        release.status = this.releasePlan.outcome;
        release.current = release.status === "succeeded";
      }
    }
    return release;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = "";
    for await (const chunk of req) body += chunk;
    const path = new URL(req.url!, this.url).pathname;
    this.requests.push({ method: req.method!, path, headers: req.headers, body });
    const requestId = randomUUID();
    const send = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": "application/json", "Request-Id": requestId, ...headers }).end(JSON.stringify(payload));
    };
    const fail = (status: number, id: string, message: string, headers: Record<string, string> = {}) =>
      send(status, { id, message }, headers);

    // Release-phase output streams are pre-signed URLs on another host at Heroku: no Platform API headers apply.
    const stream = /^\/streams\/([\w-]+)$/.exec(path);
    if (stream) return this.serveStream(req, res, stream[1]!);

    if (this.rateLimited > 0) {
      this.rateLimited--;
      return fail(429, "rate_limit", "Your account reached the API rate limit", this.retryAfter ? { "Retry-After": this.retryAfter } : {});
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return fail(401, "unauthorized", "Invalid credentials provided.");
    const accept = req.headers.accept;
    if (accept !== V3 && accept !== DOCKER_RELEASES) {
      return fail(406, "not_acceptable", `Please set your Accept header to "${V3}".`);
    }

    const match = /^\/apps\/([^/]+)(\/formation|\/releases(?:\/([^/]+))?)?$/.exec(path);
    const app = match && decodeURIComponent(match[1]!);
    if (!match || !app || !this.stacks.has(app)) return fail(404, "not_found", "Couldn't find that app.");
    const [, , sub, releaseId] = match;

    if (req.method === "GET" && sub === undefined) {
      const stack = { id: randomUUID(), name: this.stacks.get(app) };
      const generation = { id: randomUUID(), name: this.generations.get(app) ?? "cedar" };
      return send(200, { id: randomUUID(), name: app, stack, build_stack: stack, generation, web_url: this.webUrls.get(app) ?? null });
    }
    if (req.method === "PATCH" && sub === "/formation") return this.updateFormation(app, accept, req, body, send, fail);
    if (req.method === "GET" && sub === "/releases") return this.listReleases(app, req.headers.range, send, fail);
    if (req.method === "GET" && releaseId !== undefined && this.unavailableReleaseReads > 0) {
      this.unavailableReleaseReads--;
      return fail(503, "unavailable", "The API is temporarily unavailable.");
    }
    if (req.method === "GET" && releaseId !== undefined) {
      const release = this.releasesOf(app).find((r) => r.id === releaseId || String(r.version) === releaseId);
      return release ? send(200, this.read(release)) : fail(404, "not_found", "Couldn't find that release.");
    }
    return fail(404, "not_found", "The requested API endpoint was not found.");
  }

  /** The release phase's output: 404 until the stream exists, then the whole output as text/plain or server-sent events. */
  private serveStream(req: IncomingMessage, res: ServerResponse, id: string): void {
    const release = [...this.releases.values()].flat().find((r) => r.id === id);
    const notFound = () => void res.writeHead(404, { "Content-Type": "text/plain" }).end("Not Found");
    if (req.headers.authorization) {
      return void res.writeHead(400, { "Content-Type": "text/plain" }).end("output streams take no Authorization header");
    }
    const { output, streamType = "text/plain" } = this.releasePlan;
    if (!release || output === undefined) return notFound();
    const misses = this.streamMisses.get(release.id) ?? 0;
    if (misses > 0) {
      this.streamMisses.set(release.id, misses - 1);
      return notFound();
    }
    const text =
      streamType === "text/plain"
        ? output
        : output
            .split("\n")
            .filter(Boolean)
            .map((line, i) => `id: ${i + 1}\ndata: ${line}\n\n`)
            .join("");
    res.writeHead(200, { "Content-Type": streamType }).end(text);
  }

  private updateFormation(
    app: string,
    accept: string,
    req: IncomingMessage,
    body: string,
    send: (status: number, payload: unknown) => void,
    fail: (status: number, id: string, message: string) => void,
  ): void {
    // docker_image is only part of the formation update in the docker-releases variant.
    if (accept !== DOCKER_RELEASES) return fail(406, "not_acceptable", `Formation docker_image updates need Accept: ${DOCKER_RELEASES}.`);
    if (req.headers["content-type"] !== "application/json") return fail(400, "bad_request", "Content-Type must be application/json.");
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
          Object.keys(u).sort().join() === "docker_image,type" && typeof u.type === "string" && typeof u.docker_image === "string",
      );
    if (!valid) return fail(422, "invalid_params", "updates must be [{type, docker_image}].");
    const list = updates as { type: string; docker_image: string }[];
    const unknown = list.find((u) => !this.images.has(u.docker_image));
    if (unknown) return fail(422, "invalid_params", `Couldn't find that docker image: ${unknown.docker_image}.`);

    if (this.releasePlan.createsRelease !== false) {
      const { pendingReads } = this.releasePlan;
      const description = `Deployed ${list.map((u) => `${u.type} (${u.docker_image.slice(7, 19)})`).join(", ")}`;
      const release = this.addRelease(app, pendingReads > 0 ? "pending" : this.releasePlan.outcome, description);
      // Only a release with a release phase has an output stream.
      if (this.releasePlan.output !== undefined) release.output_stream_url = `${this.url}/streams/${release.id}`;
      this.streamMisses.set(release.id, this.releasePlan.streamNotFoundReads ?? 0);
      if (pendingReads > 0) this.pendingReads.set(release.id, pendingReads);
    }
    send(200, list.map((u) => ({ id: randomUUID(), type: u.type, quantity: 1, size: "basic", command: null, app: { name: app } })));
  }

  private listReleases(
    app: string,
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
    const all = [...this.releasesOf(app)].sort((a, b) => (order === "desc" ? b.version - a.version : a.version - b.version));
    const page = all.slice(0, max).map((r) => this.read(r));
    const partial = all.length > max;
    send(partial ? 206 : 200, page, partial ? { "Next-Range": `version ]${page.at(-1)!.version}..; max=${max}, order=${order}` } : {});
  }
}
