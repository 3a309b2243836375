// The Heroku Platform API client against HerokuContractDouble — a loopback contract double of the documented contract,
// NOT Heroku. Time is faked (injected sleep and clock), so polling and back-off run instantly and are measurable.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type DeployRequest,
  HerokuApi,
  type HerokuApiOptions,
  ReleaseError,
  waitForVersion,
} from "../../src/clients/heroku-api.js";
import { ApiError } from "../../src/clients/http-util.js";
import { HerokuContractDouble, PREVIOUS_IMAGE } from "../heroku-contract-double.js";

const TOKEN = `HRKU-${randomBytes(16).toString("hex")}`;
const APP = "pt-dummy-app";
const AGENT = "dummyapp-ci/1.2.0";
const IMAGE = `sha256:${createHash("sha256").update("config").digest("hex")}`;
const COMMIT = "abc123";

/** A clock that only moves when the code under test sleeps; `sleeps` records each wait, `lines` each progress line. */
function fakeTime() {
  const time = { now: 0, sleeps: [] as number[], lines: [] as { at: number; line: string }[] };
  return {
    time,
    sleep: async (ms: number) => {
      time.sleeps.push(ms);
      time.now += ms;
    },
    now: () => time.now,
    log: (line: string) => void time.lines.push({ at: time.now, line }),
  };
}

/** The rejection of `promise`, which must be an ApiError that does not contain the token. */
async function failure(promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).message).not.toContain(TOKEN);
  expect((err as ApiError).message).not.toContain("\n");
  return err as ApiError;
}

/** The longest stretch without a progress line between 0 and `end`, on the fake clock. */
function longestSilence(lines: { at: number }[], end: number): number {
  const times = [0, ...lines.map((l) => l.at), end];
  return Math.max(...times.slice(1).map((t, i) => t - times[i]!));
}

/** A loopback service whose `/version` answers what `answer` returns for the n-th probe (from 1). */
async function startVersionServer(
  answer: (n: number) => [number, unknown],
): Promise<{ url: string; agents: unknown[]; close(): Promise<void> }> {
  let n = 0;
  const agents: unknown[] = [];
  const server: Server = createServer((req, res) => {
    agents.push(req.headers["user-agent"]);
    const [status, body] = answer(++n);
    res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    agents,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `clock`, except that Heroku expires v42 (destroys its image) at each pause, so a pending v42 ends `expired`. */
function expiring(clock: ReturnType<typeof fakeTime>, double: HerokuContractDouble): ReturnType<typeof fakeTime> {
  const sleep = async (ms: number) => {
    double.expire(APP, 42);
    await clock.sleep(ms);
  };
  return { ...clock, sleep };
}

/** A client of `double` on the fake clock, as the module makes one. */
function clientOf(
  double: HerokuContractDouble,
  clock: ReturnType<typeof fakeTime>,
  options: Partial<HerokuApiOptions> = {},
) {
  return new HerokuApi({
    apiUrl: double.url,
    token: TOKEN,
    userAgent: AGENT,
    sleep: clock.sleep,
    now: clock.now,
    log: clock.log,
    ...options,
  });
}

describe("Heroku Platform API client against a loopback contract double (not Heroku)", () => {
  let double: HerokuContractDouble;
  let clock: ReturnType<typeof fakeTime>;
  const api = (options: Partial<HerokuApiOptions> = {}) => clientOf(double, clock, options);
  const release = (options: Partial<HerokuApiOptions> = {}) =>
    api(options).releaseImage({ app: APP, processType: "web", imageId: IMAGE });

  beforeEach(async () => {
    double = await HerokuContractDouble.start(TOKEN);
    double.addApp(APP, "container", 41);
    double.pushImage(APP, "web", IMAGE);
    clock = fakeTime();
  });
  afterEach(() => double.close());

  it("the double itself refuses what Heroku refuses and answers as Heroku does: Accept (406), token (401), Range, RateLimit-Remaining", async () => {
    const get = (headers: Record<string, string>) => fetch(`${double.url}/apps/${APP}/releases`, { headers });
    const wrongAccept = await get({ Accept: "application/json", Authorization: `Bearer ${TOKEN}` });
    expect(wrongAccept.status).toBe(406);
    expect(await wrongAccept.json()).toMatchObject({ id: "not_acceptable" });
    const noAuth = await get({ Accept: "application/vnd.heroku+json; version=3" });
    expect(noAuth.status).toBe(401);
    expect(await noAuth.json()).toMatchObject({ id: "unauthorized" });
    expect(noAuth.headers.get("request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const unranged = await get({ Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${TOKEN}` });
    const releases = (await unranged.json()) as { version: number; current: boolean; status: string }[];
    expect(releases[0]!.version).toBe(1);
    // One current release, the newest succeeded one.
    expect(releases.filter((r) => r.current).map((r) => r.version)).toEqual([41]);
    expect(Number(unranged.headers.get("ratelimit-remaining"))).toBeGreaterThan(0);
    expect(unranged.headers.get("retry-after")).toBeNull();
    const app = await fetch(`${double.url}/apps/${APP}`, {
      headers: { Accept: "application/vnd.heroku+json; version=3", Authorization: `Bearer ${TOKEN}` },
    });
    expect(await app.json()).toMatchObject({ stack: { name: "container" }, generation: { name: "cedar" } });
    // eligible_for_rollback comes with the CLI's 3.sdk variant only.
    expect(releases[40]).not.toHaveProperty("eligible_for_rollback");
    const sdk = await get({ Accept: "application/vnd.heroku+json; version=3.sdk", Authorization: `Bearer ${TOKEN}` });
    expect(((await sdk.json()) as { eligible_for_rollback?: boolean }[])[40]).toMatchObject({
      eligible_for_rollback: true,
    });
  });

  it("releases an image the way heroku container:release does, with the documented headers and body and its User-Agent", async () => {
    const result = await release();
    expect(result).toMatchObject({
      kind: "released",
      release: { version: 42, status: "succeeded", description: `Deployed web (${IMAGE.slice(7, 19)})` },
      before: { release: { version: 41, current: true, eligible_for_rollback: true }, runsImage: true },
    });

    const calls = double.requests.map((r) => `${r.method} ${r.path}`);
    expect(calls).toEqual([
      `GET /apps/${APP}`,
      `GET /apps/${APP}/releases`,
      `GET /apps/${APP}/formation`,
      `PATCH /apps/${APP}/formation`,
      `GET /apps/${APP}/releases`,
    ]);
    for (const r of double.requests) {
      expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(r.headers["user-agent"]).toBe(AGENT);
    }
    const [, list, formation, patch, after] = double.requests;
    // Releases are read as the CLI reads them, so that they say whether they are eligible for rollback.
    expect(list!.headers.accept).toBe("application/vnd.heroku+json; version=3.sdk");
    expect(after!.headers.accept).toBe("application/vnd.heroku+json; version=3.sdk");
    expect(formation!.headers.accept).toBe("application/vnd.heroku+json; version=3");
    expect(list!.headers.range).toBe("version ..; max=10, order=desc");
    expect(after!.headers.range).toBe("version ..; max=1, order=desc");
    expect(patch!.headers.accept).toBe("application/vnd.heroku+json; version=3.docker-releases");
    expect(patch!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(patch!.body)).toEqual({ updates: [{ type: "web", docker_image: IMAGE }] });
  });

  it("follows a pending release (by id) until it succeeds, pausing between polls", async () => {
    double.releasePlan = { pendingReads: 3, outcome: "succeeded" };
    const result = await release();
    expect(result.kind === "released" && result.release).toMatchObject({ version: 42, status: "succeeded" });
    const id = double.releasesOf(APP).at(-1)!.id;
    const polls = double.requests.slice(5).map((r) => `${r.path} ${r.headers.accept}`);
    expect(polls).toEqual(Array(3).fill(`/apps/${APP}/releases/${id} application/vnd.heroku+json; version=3.sdk`));
    expect(clock.time.sleeps).toEqual([3000, 3000, 3000]);
  });

  it("keeps following a release through a passing 503 from the Platform API", async () => {
    double.releasePlan = { pendingReads: 1, outcome: "succeeded" };
    double.unavailableReleaseReads = 2;
    expect(await release()).toMatchObject({ kind: "released", release: { version: 42, status: "succeeded" } });
    expect(clock.time.sleeps).toEqual([3000, 3000, 3000]);
  });

  it("reports an image the process type already runs as unchanged: Heroku makes no release, and the client does not wait for one", async () => {
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    const result = await api().releaseImage({ app: APP, processType: "web", imageId: PREVIOUS_IMAGE });
    expect(result).toMatchObject({ kind: "unchanged", current: { version: 41 } });
    expect(double.releasesOf(APP)).toHaveLength(41);
    expect(clock.time.sleeps).toEqual([]);
    expect(clock.time.lines.map((l) => l.line)).toEqual([
      "Heroku: The process type web was not updated, because it is already running the specified docker image.",
    ]);
  });

  it("takes 'no new release right after the update' as unchanged without any warning header (the CLI compares release ids)", async () => {
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    const withoutWarning: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const headers = new Headers(response.headers);
      headers.delete("warning-message");
      return new Response(response.body, { status: response.status, headers });
    };
    const result = await api({ fetch: withoutWarning }).releaseImage({
      app: APP,
      processType: "web",
      imageId: PREVIOUS_IMAGE,
    });
    expect(result).toMatchObject({ kind: "unchanged", current: { version: 41 } });
    expect(clock.time.sleeps).toEqual([]);
    expect(clock.time.lines).toEqual([]);
  });

  it("compares the newest release before and after the update, so a failed newest release is not taken for a new one", async () => {
    double.releasePlan = { pendingReads: 0, outcome: "failed" };
    await failure(release());
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    const result = await api().releaseImage({ app: APP, processType: "web", imageId: PREVIOUS_IMAGE });
    expect(result).toMatchObject({ kind: "unchanged", current: { version: 41 } });
    expect(double.releasesOf(APP)).toHaveLength(42);
  });

  it("logs a warning Heroku sends as X-Heroku-Warning, the header heroku-cli-command reads first", async () => {
    const renamed: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const headers = new Headers(response.headers);
      const warning = headers.get("warning-message");
      headers.delete("warning-message");
      if (warning) headers.set("x-heroku-warning", `Warning: ${warning}`);
      return new Response(response.body, { status: response.status, headers });
    };
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    const result = await api({ fetch: renamed }).releaseImage({
      app: APP,
      processType: "web",
      imageId: PREVIOUS_IMAGE,
    });
    expect(result).toMatchObject({ kind: "unchanged" });
    expect(clock.time.lines.map((l) => l.line)).toEqual([
      "Heroku: Warning: The process type web was not updated, because it is already running the specified docker image.",
    ]);
  });

  it("does not take a release that ends expired (or any status but succeeded) as a success", async () => {
    double.releasePlan = { pendingReads: 5, outcome: "succeeded" };
    // Heroku destroys the release's image while it is pending: it ends `expired`, never `succeeded`.
    const err = await failure(
      clientOf(double, expiring(clock, double)).releaseImage({ app: APP, processType: "web", imageId: IMAGE }),
    );
    expect(err).toBeInstanceOf(ReleaseError);
    expect((err as ReleaseError).release).toMatchObject({ version: 42, status: "expired" });
    expect(err.message).toBe(
      `Heroku release v42 of ${APP} expired: no release output; see heroku releases:output v42 -a ${APP}, or heroku logs -a ${APP}`,
    );
  });

  it("fails a failed release with its release-phase output, read without the token", async () => {
    double.releasePlan = {
      pendingReads: 1,
      outcome: "failed",
      output: "Running release command...\nmigration 7 failed\n",
    };
    const err = await failure(release());
    expect(err).toBeInstanceOf(ReleaseError);
    expect((err as ReleaseError).previous).toMatchObject({ version: 41 });
    expect(err.message).toBe(
      `Heroku release v42 of ${APP} failed: release output: Running release command... migration 7 failed`,
    );
    const stream = double.requests.find((r) => r.path.startsWith("/streams/"))!;
    expect(stream.headers.authorization).toBeUndefined();
    expect(stream.headers["user-agent"]).toBe(AGENT);
  });

  it("waits for an output stream that answers 404 until it exists (as the CLI does, a second apart) and reads text/event-stream", async () => {
    double.releasePlan = {
      pendingReads: 0,
      outcome: "failed",
      output: "Running release command...\nmigration 7 failed\n",
      streamNotFoundReads: 4,
      streamType: "text/event-stream",
    };
    const err = await failure(release());
    expect(err.message).toBe(
      `Heroku release v42 of ${APP} failed: release output: Running release command... migration 7 failed`,
    );
    expect(double.requests.filter((r) => r.path.startsWith("/streams/"))).toHaveLength(5);
    expect(clock.time.sleeps).toEqual([1000, 1000, 1000, 1000]);
  });

  it("gives up on a stream that never appears after 30 retries, and says where the output is", async () => {
    double.releasePlan = { pendingReads: 0, outcome: "failed", output: "x", streamNotFoundReads: 1_000 };
    const err = await failure(release());
    expect(err.message).toBe(
      `Heroku release v42 of ${APP} failed: release output not readable (404); ` +
        `see heroku releases:output v42 -a ${APP}, or heroku logs -a ${APP}`,
    );
    expect(clock.time.sleeps).toHaveLength(30);
  });

  it("says where to look when a failed release has no release phase output, or an empty one", async () => {
    double.releasePlan = { pendingReads: 0, outcome: "failed" };
    const none = await failure(release());
    expect(none.message).toBe(
      `Heroku release v42 of ${APP} failed: no release output; see heroku releases:output v42 -a ${APP}, or heroku logs -a ${APP}`,
    );
    double.pushImage(APP, "web", `sha256:${"ab".repeat(32)}`);
    // A release phase that printed nothing: the stream exists and is empty.
    double.releasePlan = { pendingReads: 0, outcome: "failed", output: "" };
    const empty = await failure(
      api().releaseImage({ app: APP, processType: "web", imageId: `sha256:${"ab".repeat(32)}` }),
    );
    expect(empty.message).toBe(
      `Heroku release v43 of ${APP} failed: release output is empty; see heroku releases:output v43 -a ${APP}, or heroku logs -a ${APP}`,
    );
  });

  it("gives up on a release still pending after the time limit, saying so, with a progress line at least every minute", async () => {
    double.releasePlan = { pendingReads: 100_000, outcome: "succeeded" };
    const err = await failure(api().releaseImage({ app: APP, processType: "web", imageId: IMAGE, timeoutMs: 600_000 }));
    expect(err).toBeInstanceOf(ReleaseError);
    expect(err.message).toBe(`Heroku release v42 of ${APP} still pending after 600s`);
    expect(clock.time.now).toBeLessThanOrEqual(600_000);
    expect(clock.time.lines.length).toBeGreaterThanOrEqual(10);
    expect(longestSilence(clock.time.lines, clock.time.now)).toBeLessThanOrEqual(60_000);
    expect(clock.time.lines[0]!.line).toMatch(
      new RegExp(`^waiting for Heroku release v42 of ${APP}: pending after \\d+s of 10m 00s$`),
    );
  });

  it("refuses a Fir-generation app, which cannot run registry images, saying it needs a Cedar app (not stack:set)", async () => {
    double.addApp("fir-app", "cnb", 3, "fir");
    double.pushImage("fir-app", "web", IMAGE);
    const err = await failure(api().releaseImage({ app: "fir-app", processType: "web", imageId: IMAGE }));
    expect(err.message).toBe(
      "Heroku app fir-app is a fir-generation app; container releases need a Cedar-generation app on the container stack, " +
        "e.g. heroku create <name> --stack container",
    );
    expect(err.message).not.toContain("stack:set");
    expect(double.requests.map((r) => r.method)).toEqual(["GET"]);
  });

  it("refuses a Cedar app that is not on the container stack, with the fix, before touching the formation", async () => {
    double.addApp("slug-app", "heroku-24", 3);
    const err = await failure(api().releaseImage({ app: "slug-app", processType: "web", imageId: IMAGE }));
    expect(err.message).toBe(
      "Heroku app slug-app is on stack heroku-24, not container; switch it with: heroku stack:set container -a slug-app",
    );
    expect(double.requests.map((r) => r.method)).toEqual(["GET"]);
  });

  it("surfaces 404 with Heroku's id, message and Request-Id", async () => {
    const err = await failure(api().checkContainerApp("no-such-app"));
    expect(err.status).toBe(404);
    expect(err.code).toBe("not_found");
    expect(err.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(err.message).toBe(
      `Heroku API GET /apps/no-such-app: 404 not_found: Couldn't find that app. (Request-Id ${err.requestId})`,
    );
  });

  it("surfaces 401 for a wrong token without showing either token", async () => {
    const err = await failure(release({ token: `${TOKEN}-revoked` }));
    expect(err.message).toMatch(
      new RegExp(
        `^Heroku API GET /apps/${APP}: 401 unauthorized: Invalid credentials provided\\. \\(Request-Id [0-9a-f-]{36}\\)$`,
      ),
    );
  });

  it("scrubs the token from an error body that echoes it (fetch double)", async () => {
    const echo: typeof fetch = async () =>
      Response.json(
        { id: "unauthorized", message: `token ${TOKEN} was revoked` },
        { status: 401, headers: { "Request-Id": "r-1" } },
      );
    const err = await failure(new HerokuApi({ token: TOKEN, userAgent: AGENT, fetch: echo }).checkContainerApp(APP));
    expect(err.message).toBe(`Heroku API GET /apps/${APP}: 401 unauthorized: token *** was revoked (Request-Id r-1)`);
  });

  it("surfaces 422 when Heroku does not know the image for that process type (image ids are scoped to <app>/<type>)", async () => {
    const other = `sha256:${"0".repeat(64)}`;
    const err = await failure(api().releaseImage({ app: APP, processType: "web", imageId: other }));
    expect(err.status).toBe(422);
    expect(err.message).toContain(
      `PATCH /apps/${APP}/formation: 422 invalid_params: Couldn't find that docker image: ${other}.`,
    );
    // Pushed as worker, released as web: refused too.
    double.pushImage(APP, "worker", other);
    expect((await failure(api().releaseImage({ app: APP, processType: "web", imageId: other }))).status).toBe(422);
    expect(err).not.toBeInstanceOf(ReleaseError);
  });

  it("rejects an image id that is not a config digest before any request", async () => {
    const err = await failure(
      api().releaseImage({ app: APP, processType: "web", imageId: "pennocktech/dummyapp:heroku" }),
    );
    expect(err.message).toBe("image id must be a config digest sha256:<64 hex>, got pennocktech/dummyapp:heroku");
    expect(double.requests).toEqual([]);
  });

  it("backs off 1 s, 2 s, 4 s… after 429 (Heroku sends RateLimit-Remaining, no Retry-After), says so, and carries on", async () => {
    double.rateLimited = 2;
    await expect(release()).resolves.toMatchObject({ kind: "released" });
    expect(clock.time.sleeps).toEqual([1000, 2000]);
    expect(clock.time.lines.map((l) => l.line)).toEqual([
      `Heroku API rate limit reached (RateLimit-Remaining 0); retrying GET /apps/${APP} in 1s`,
      `Heroku API rate limit reached (RateLimit-Remaining 0); retrying GET /apps/${APP} in 2s`,
    ]);
  });

  it("stops after a bounded number of 429 retries", async () => {
    double.rateLimited = 100;
    const err = await failure(api({ rateLimitRetries: 3 }).checkContainerApp(APP));
    expect(err.status).toBe(429);
    expect(err.message).toMatch(
      /^Heroku API GET \/apps\/pt-dummy-app: 429 rate_limit: Your account reached the API rate limit \(Request-Id /,
    );
    expect(clock.time.sleeps).toEqual([1000, 2000, 4000]);
    expect(double.requests).toHaveLength(4);
  });
});

describe("HerokuApi.deploy: release, verify /version, roll back (contract double + loopback service, fake time)", () => {
  let double: HerokuContractDouble;
  let clock: ReturnType<typeof fakeTime>;
  let service: Awaited<ReturnType<typeof startVersionServer>> | undefined;
  /** What the service's /version reports: the old commit until `serving` says otherwise. */
  let serving: () => unknown;
  /** How a succeeded v42 whose /version keeps reporting the old commit for 30 s is reported. */
  let verifyFailure: string;

  beforeEach(async () => {
    double = await HerokuContractDouble.start(TOKEN);
    double.addApp(APP, "container", 41);
    double.pushImage(APP, "web", IMAGE);
    clock = fakeTime();
    serving = () => ({ commit: "old" });
    service = await startVersionServer(() => [200, serving()]);
    verifyFailure =
      `released ${APP} v42 (web) with image ${IMAGE}, but ${service.url}/version did not report commit ${COMMIT} ` +
      "within 30s (last: commit old)";
  });
  afterEach(async () => {
    await double.close();
    await service?.close();
  });

  const deploy = (overrides: Partial<DeployRequest> = {}, options: Partial<HerokuApiOptions> = {}) =>
    clientOf(double, clock, options).deploy({
      app: APP,
      processType: "web",
      imageId: IMAGE,
      verifyUrl: service!.url,
      commit: COMMIT,
      rollback: true,
      ...overrides,
    });
  const rollbacks = () => double.requests.filter((r) => r.method === "POST");

  it("releases and returns once /version reports the commit; nothing is rolled back", async () => {
    let probes = 0;
    serving = () => ({ commit: ++probes < 3 ? "old" : COMMIT });
    const report = await deploy();
    expect(report).toBe(`released ${APP} v42 (web) with image ${IMAGE}; ${service!.url}/version reports ${COMMIT}`);
    expect(rollbacks()).toEqual([]);
    expect(service!.agents.every((agent) => agent === AGENT)).toBe(true);
  });

  it("release failed → reported with its release-phase output and not rolled back: it never went live, v41 still runs", async () => {
    double.releasePlan = { pendingReads: 1, outcome: "failed", output: "migration 7 failed" };
    const err = await failure(deploy());
    expect(rollbacks()).toEqual([]);
    expect(double.currentRelease(APP)).toMatchObject({ version: 41 });
    expect(double.releasesOf(APP)).toHaveLength(42);
    expect(err.message).toBe(
      `Heroku release v42 of ${APP} failed: release output: migration 7 failed; ` +
        "not rolled back: a failed release never goes live, so v41 is still the current release",
    );
  });

  it("release still pending when the wait ends → reported as pending, not rolled back over; the default wait covers a 1 h release phase", async () => {
    double.releasePlan = { pendingReads: 100_000, outcome: "succeeded" };
    const err = await failure(deploy());
    expect(err.message).toBe(
      `Heroku release v42 of ${APP} still pending after 3900s; not rolled back: it goes live if its release phase ` +
        `succeeds (follow it with heroku releases:info v42 -a ${APP})`,
    );
    expect(rollbacks()).toEqual([]);
    expect(double.releasesOf(APP).at(-1)).toMatchObject({ version: 42, status: "pending" });
    // Heroku lets the release phase run for an hour: the wait is longer than that, and bounded.
    expect(clock.time.now).toBeGreaterThan(3_600_000);
    expect(clock.time.now).toBeLessThanOrEqual(3_900_000);
  });

  it("a release that ends expired is not a success, and is not rolled back either", async () => {
    double.releasePlan = { pendingReads: 3, outcome: "succeeded" };
    const err = await failure(
      clientOf(double, expiring(clock, double)).deploy({
        app: APP,
        processType: "web",
        imageId: IMAGE,
        rollback: true,
      }),
    );
    expect(err.message).toMatch(
      new RegExp(
        `^Heroku release v42 of ${APP} expired: .*; not rolled back: it is expired, not succeeded \\(see heroku releases:info v42 -a ${APP}\\)$`,
      ),
    );
    expect(rollbacks()).toEqual([]);
  });

  it("verification timeout → rolls back, and the one error says what failed and what was restored", async () => {
    // The new release boots but never serves the commit; after the rollback the app reports the old one.
    serving = () => ({ commit: double.currentRelease(APP)!.version === 42 ? "broken" : "old" });
    const err = await failure(deploy({ verifyTimeoutMs: 60_000 }));
    expect(err.message).toBe(
      `released ${APP} v42 (web) with image ${IMAGE}, but ${service!.url}/version did not report commit ${COMMIT} within 60s ` +
        `(last: commit broken); rolled back to v41 (as v43); ${service!.url}/version reports commit old again`,
    );
    expect(rollbacks()).toHaveLength(1);
    expect(clock.time.lines.some((l) => l.line.startsWith(`rolling back ${APP} to v41: `))).toBe(true);
  });

  it("with Heroku's dyno metadata, a rollback counts as restored when /version reports the rollback's release", async () => {
    // /version did not answer before the deploy, so no earlier commit is known; the release version is.
    let down = true;
    serving = () => {
      if (down) {
        down = false;
        return { error: "booting" };
      }
      return { commit: "unknown", heroku: { release: `v${double.currentRelease(APP)!.version}` } };
    };
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }));
    expect(err.message).toMatch(
      /; rolled back to v41 \(as v43\); http:\/\/127\.0\.0\.1:\d+\/version reports release v43 again$/,
    );
  });

  it("rollback itself failing → both errors reported", async () => {
    double.rollbackPlan = { pendingReads: 2, outcome: "failed", output: "migration 6 failed too" };
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }));
    expect(err.message).toBe(
      `${verifyFailure}; rollback to v41 also failed: ` +
        `Heroku release v43 of ${APP} failed: release output: migration 6 failed too`,
    );
  });

  it("rolls back to the current release, not to a newer failed one", async () => {
    double.releasePlan = { pendingReads: 0, outcome: "failed", output: "migration 7 failed" };
    await failure(deploy());
    double.releasePlan = { pendingReads: 0, outcome: "succeeded" };
    const other = `sha256:${"ab".repeat(32)}`;
    double.pushImage(APP, "web", other);
    const err = await failure(deploy({ imageId: other, verifyTimeoutMs: 30_000 }));
    expect(
      double
        .releasesOf(APP)
        .slice(41)
        .map((r) => [r.version, r.status, r.current]),
    ).toEqual([
      [42, "failed", false],
      [43, "succeeded", false],
      [44, "succeeded", true],
    ]);
    expect(rollbacks().map((r) => JSON.parse(r.body))).toEqual([{ release: double.releasesOf(APP)[40]!.id }]);
    expect(err.message).toMatch(/^released pt-dummy-app v43 .*; rolled back to v41 \(as v44\);/);
  });

  it("no rollback when there was no previous release", async () => {
    double.addApp("new-app", "container", 0);
    double.pushImage("new-app", "web", IMAGE);
    const err = await failure(deploy({ app: "new-app", verifyTimeoutMs: 30_000 }));
    expect(err.message).toMatch(/^released new-app v1 .*; not rolled back: new-app had no earlier release$/);
    expect(rollbacks()).toEqual([]);
  });

  it("never rolls back to a release with no image: on an app's first image release, v2 'Enable Logplex' was current", async () => {
    double.addNewApp("new-app");
    double.pushImage("new-app", "web", IMAGE);
    const err = await failure(deploy({ app: "new-app", verifyTimeoutMs: 30_000 }));
    expect(err.message).toMatch(
      /^released new-app v3 .*; not rolled back: v2, the release before, ran no image as web \(this was new-app's first image release for it\)$/,
    );
    expect(rollbacks()).toEqual([]);
    expect(double.currentRelease("new-app")).toMatchObject({ version: 3 });
    // The next deploy has an image to return to.
    const other = `sha256:${"ab".repeat(32)}`;
    double.pushImage("new-app", "web", other);
    const again = await failure(deploy({ app: "new-app", imageId: other, verifyTimeoutMs: 30_000 }));
    expect(again.message).toMatch(/; rolled back to v3 \(as v5\);/);
  });

  it("--rollback=false turns it off", async () => {
    const err = await failure(deploy({ rollback: false, verifyTimeoutMs: 30_000 }));
    expect(err.message).toBe(`${verifyFailure}; not rolled back (rollback disabled)`);
    expect(rollbacks()).toEqual([]);
  });

  it.each([
    ["expired", "its image is gone", (d: HerokuContractDouble) => d.expire(APP, 41)],
    ["succeeded", "Heroku's call", (d: HerokuContractDouble) => d.markIneligible(APP, 41)],
  ])("does not try to roll back to a %s release Heroku says is not eligible (%s)", async (status, _why, mark) => {
    mark(double);
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }));
    expect(err.message).toBe(
      `${verifyFailure}; not rolled back: v41 is ${status} and Heroku says it is not eligible for rollback`,
    );
    expect(rollbacks()).toEqual([]);
  });

  it("when Heroku does not say whether a release is eligible, tries the rollback and says eligibility was unknown", async () => {
    // A Platform API that leaves eligible_for_rollback out even under the 3.sdk variant.
    const withoutEligibility: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      if (!response.headers.get("content-type")?.startsWith("application/json")) return response;
      const strip = (r: Record<string, unknown>) => {
        const { eligible_for_rollback, ...rest } = r;
        return rest;
      };
      const body = (await response.json()) as Record<string, unknown> | Record<string, unknown>[];
      return Response.json(Array.isArray(body) ? body.map(strip) : strip(body), {
        status: response.status,
        headers: response.headers,
      });
    };
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }, { fetch: withoutEligibility }));
    expect(rollbacks()).toHaveLength(1);
    expect(err.message).toBe(
      `${verifyFailure}; rolled back to v41 (Heroku did not say whether v41 is eligible for rollback) (as v43); ` +
        `${service!.url}/version reports commit old again`,
    );
  });

  it("the double refuses a rollback to an expired release", async () => {
    double.expire(APP, 40);
    const response = await fetch(`${double.url}/apps/${APP}/releases`, {
      method: "POST",
      headers: {
        Accept: "application/vnd.heroku+json; version=3",
        Authorization: `Bearer ${TOKEN}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ release: double.releasesOf(APP)[39]!.id }),
    });
    expect(response.status).toBe(422);
  });

  it("an image already running is success, and a failed /version check then rolls nothing back", async () => {
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    serving = () => ({ commit: COMMIT });
    expect(await deploy({ imageId: PREVIOUS_IMAGE })).toBe(
      `${APP} (web) is already running ${PREVIOUS_IMAGE} as v41; no new release; ${service!.url}/version reports ${COMMIT}`,
    );
    serving = () => ({ commit: "old" });
    const err = await failure(deploy({ imageId: PREVIOUS_IMAGE, verifyTimeoutMs: 10_000 }));
    expect(err.message).toMatch(/did not report commit abc123 within 10s/);
    expect(rollbacks()).toEqual([]);
    expect(double.releasesOf(APP)).toHaveLength(41);
  });
});

describe("waitForVersion against a loopback /version server", () => {
  let server: Awaited<ReturnType<typeof startVersionServer>>;
  let answers: (() => [number, unknown])[];

  beforeEach(async () => {
    answers = [];
    server = await startVersionServer(() => (answers.shift() ?? (() => [200, { commit: "old" }]))());
  });
  afterEach(() => server.close());

  it("keeps probing through errors and old commits until /version reports the released commit", async () => {
    answers.push(
      () => [503, { error: "starting" }],
      () => [200, { commit: "old" }],
      () => [200, { commit: "abc123", version: "1.2.0" }],
    );
    const clock = fakeTime();
    const body = await waitForVersion({
      url: `${server.url}/`,
      commit: "abc123",
      userAgent: AGENT,
      sleep: clock.sleep,
      now: clock.now,
      log: clock.log,
    });
    expect(body).toEqual({ commit: "abc123", version: "1.2.0" });
    expect(clock.time.sleeps).toEqual([5000, 5000]);
    expect(server.agents).toEqual([AGENT, AGENT, AGENT]);
  });

  it("gives up after the time limit, saying what it last saw, with a progress line at least every minute", async () => {
    const clock = fakeTime();
    const err = await failure(
      waitForVersion({
        url: server.url,
        commit: "abc123",
        userAgent: AGENT,
        sleep: clock.sleep,
        now: clock.now,
        log: clock.log,
      }),
    );
    expect(err.message).toBe(`${server.url}/version did not report commit abc123 within 180s (last: commit old)`);
    expect(longestSilence(clock.time.lines, clock.time.now)).toBeLessThanOrEqual(60_000);
    expect(clock.time.lines[0]!.line).toBe(
      `waiting for ${server.url}/version to report commit abc123: commit old after 20s of 3m 00s`,
    );
  });

  it("treats a refused connection as not yet, and names it on timeout", async () => {
    const closed = server.url;
    await server.close();
    server = { url: closed, agents: [], close: async () => undefined };
    const clock = fakeTime();
    const err = await failure(
      waitForVersion({
        url: closed,
        commit: "abc123",
        userAgent: AGENT,
        timeoutMs: 10_000,
        sleep: clock.sleep,
        now: clock.now,
        log: clock.log,
      }),
    );
    expect(err.message).toBe(
      `${closed}/version did not report commit abc123 within 10s (last: GET ${closed}/version: ECONNREFUSED)`,
    );
  });
});
