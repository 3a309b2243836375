// The release logic (HerokuReleaser) over the Platform API client, against HerokuContractDouble — a loopback contract
// double of the documented contract, NOT Heroku — and a loopback /version service: following a release, verifying
// it, rolling back. Time is faked (injected sleep and clock), so polling runs instantly and is measurable.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { HerokuApiOptions } from "../src/clients/heroku-api.js";
import { DEPLOY_BOUND_MS, type DeployRequest, RELEASE_TIMEOUT_MS, ReleaseError } from "../src/heroku-release.js";
import { type HerokuContractDouble, PREVIOUS_IMAGE } from "./heroku-contract-double.js";
import {
  AGENT,
  APP,
  COMMIT,
  expiring,
  failure,
  fakeTime,
  IMAGE,
  longestSilence,
  releaserOf,
  startDouble,
  startVersionServer,
  TOKEN,
} from "./heroku-fixtures.js";

/** The double's answers, except that the next `count` reads of a release (by id) get `status` instead. */
function failingReleaseReads(status: number, count: number): typeof fetch {
  return async (input, init) => {
    if (count > 0 && (init?.method ?? "GET") === "GET" && /\/releases\/[^/]+$/.test(new URL(String(input)).pathname)) {
      count--;
      return Response.json({ id: "boom", message: `status ${status}` }, { status });
    }
    return fetch(input, init);
  };
}

/** A Platform API that leaves eligible_for_rollback out of every release, even under the 3.sdk variant. */
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

describe("HerokuReleaser.release: following a release until it settles (contract double, fake time)", () => {
  let double: HerokuContractDouble;
  let clock: ReturnType<typeof fakeTime>;
  const releaser = (options: Partial<HerokuApiOptions> = {}) => releaserOf(double, clock, options);
  const release = (options: Partial<HerokuApiOptions> = {}) =>
    releaser(options).release({ app: APP, processType: "web", imageId: IMAGE });

  beforeEach(async () => {
    double = await startDouble();
    clock = fakeTime();
  });
  afterEach(() => double.close());

  it("follows a pending release (by id) until it succeeds, pausing between polls", async () => {
    double.releasePlan = { pendingReads: 3, outcome: "succeeded" };
    const result = await release();
    expect(result.kind === "released" && result.release).toMatchObject({ version: 42, status: "succeeded" });
    const id = double.releasesOf(APP).at(-1)!.id;
    const polls = double.requests.slice(5).map((r) => `${r.path} ${r.headers.accept}`);
    expect(polls).toEqual(Array(3).fill(`/apps/${APP}/releases/${id} application/vnd.heroku+json; version=3.sdk`));
    expect(clock.time.sleeps).toEqual([3000, 3000, 3000]);
  });

  it("keeps following a release through a passing 500 from the Platform API, and fails at once on a 4xx", async () => {
    double.releasePlan = { pendingReads: 1, outcome: "succeeded" };
    expect(await release({ fetch: failingReleaseReads(500, 2) })).toMatchObject({ release: { status: "succeeded" } });
    double.pushImage(APP, "web", `sha256:${"ab".repeat(32)}`);
    const err = await failure(
      releaserOf(double, clock, { fetch: failingReleaseReads(403, 1) }).release({
        app: APP,
        processType: "web",
        imageId: `sha256:${"ab".repeat(32)}`,
      }),
    );
    expect(err).not.toBeInstanceOf(ReleaseError);
    expect(err.message).toMatch(/^Heroku API GET \/apps\/pt-dummy-app\/releases\/[^ ]+: 403 boom: status 403$/);
    expect(clock.time.sleeps).toEqual([3000, 3000, 3000, 3000]);
  });

  it("keeps following a release through a passing 503 from the Platform API", async () => {
    double.releasePlan = { pendingReads: 1, outcome: "succeeded" };
    double.unavailableReleaseReads = 2;
    expect(await release()).toMatchObject({ kind: "released", release: { version: 42, status: "succeeded" } });
    expect(clock.time.sleeps).toEqual([3000, 3000, 3000]);
  });

  it("compares the newest release before and after the update, so a failed newest release is not taken for a new one", async () => {
    double.releasePlan = { pendingReads: 0, outcome: "failed" };
    await failure(release());
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    const result = await releaser().release({ app: APP, processType: "web", imageId: PREVIOUS_IMAGE });
    expect(result).toMatchObject({ kind: "unchanged", current: { version: 41 } });
    expect(double.releasesOf(APP)).toHaveLength(42);
  });

  it("does not take a release that ends expired (or any status but succeeded) as a success", async () => {
    double.releasePlan = { pendingReads: 5, outcome: "succeeded" };
    // Heroku destroys the release's image while it is pending: it ends `expired`, never `succeeded`.
    const err = await failure(
      releaserOf(double, expiring(clock, double)).release({ app: APP, processType: "web", imageId: IMAGE }),
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
    expect(err.name).toBe("ReleaseError");
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
      releaser().release({ app: APP, processType: "web", imageId: `sha256:${"ab".repeat(32)}` }),
    );
    expect(empty.message).toBe(
      `Heroku release v43 of ${APP} failed: release output is empty; see heroku releases:output v43 -a ${APP}, or heroku logs -a ${APP}`,
    );
  });

  it("gives up on a release still pending after the time limit, saying so, with a progress line at least every minute", async () => {
    double.releasePlan = { pendingReads: 100_000, outcome: "succeeded" };
    const err = await failure(releaser().release({ app: APP, processType: "web", imageId: IMAGE, timeoutMs: 600_000 }));
    expect(err).toBeInstanceOf(ReleaseError);
    expect(err.message).toBe(`Heroku release v42 of ${APP} still pending after 600s`);
    expect(clock.time.now).toBeLessThanOrEqual(600_000);
    expect(clock.time.lines.length).toBeGreaterThanOrEqual(10);
    expect(longestSilence(clock.time.lines, clock.time.now)).toBeLessThanOrEqual(60_000);
    expect(clock.time.lines[0]!.line).toMatch(
      new RegExp(`^waiting for Heroku release v42 of ${APP}: pending after \\d+s of 10m 00s$`),
    );
  });
});

describe("HerokuReleaser.deploy: release, verify /version, roll back (contract double + loopback service, fake time)", () => {
  let double: HerokuContractDouble;
  let clock: ReturnType<typeof fakeTime>;
  let service: Awaited<ReturnType<typeof startVersionServer>> | undefined;
  /** What the service's /version reports: the old commit until `serving` says otherwise. */
  let serving: () => unknown;
  /** How a succeeded v42 whose /version keeps reporting the old commit for 30 s is reported. */
  let verifyFailure: string;

  beforeEach(async () => {
    double = await startDouble();
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
    releaserOf(double, clock, options).deploy({
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
    const report = await deploy({ verifyUrl: `${service!.url}//` });
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
      releaserOf(double, expiring(clock, double)).deploy({
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
    const err = await failure(deploy({ verifyUrl: `${service!.url}//`, verifyTimeoutMs: 60_000 }));
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
    [
      "an expired release (its image is gone)",
      "v41 is expired (Heroku destroyed its image)",
      (d: HerokuContractDouble) => d.expire(APP, 41),
    ],
    [
      "a release Heroku says is not eligible",
      "Heroku says v41 is not eligible for rollback",
      (d: HerokuContractDouble) => d.markIneligible(APP, 41),
    ],
  ])("does not try to roll back to %s", async (_what, why, mark) => {
    mark(double);
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }));
    expect(err.message).toBe(`${verifyFailure}; not rolled back: ${why}`);
    expect(rollbacks()).toEqual([]);
  });

  it("when Heroku does not say whether a release is eligible, tries the rollback and says eligibility was unknown", async () => {
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }, { fetch: withoutEligibility }));
    expect(rollbacks()).toHaveLength(1);
    expect(err.message).toBe(
      `${verifyFailure}; rolled back to v41 (Heroku did not say whether v41 is eligible for rollback) (as v43); ` +
        `${service!.url}/version reports commit old again`,
    );
  });

  it("does not try to roll back to an expired release even when Heroku does not say whether it is eligible", async () => {
    double.expire(APP, 41);
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }, { fetch: withoutEligibility }));
    expect(err.message).toBe(`${verifyFailure}; not rolled back: v41 is expired (Heroku destroyed its image)`);
    expect(rollbacks()).toEqual([]);
  });

  it("counts a rollback as restored by its release when /version reports another commit than before", async () => {
    let probes = 0;
    serving = () =>
      ++probes === 1
        ? { commit: "old" }
        : { commit: "rebuilt", heroku: { release: `v${double.currentRelease(APP)!.version}` } };
    const err = await failure(deploy({ verifyTimeoutMs: 30_000 }));
    expect(err.message).toMatch(
      /; rolled back to v41 \(as v43\); http:\/\/127\.0\.0\.1:\d+\/version reports release v43 again$/,
    );
  });

  it("says a rollback was not checked when /version did not answer before the deploy", async () => {
    await service!.close();
    service = await startVersionServer((n) => (n === 1 ? [503, { error: "starting" }] : [200, { commit: "broken" }]));
    const err = await failure(deploy({ verifyTimeoutMs: 10_000 }));
    expect(err.message).toMatch(
      new RegExp(
        `; rolled back to v41 \\(as v43\\); not checked on ${service.url}/version, which did not answer before the deploy$`,
      ),
    );
  });

  it("says no release was running when a failed release had none before it", async () => {
    double.addApp("empty-app", "container", 0);
    double.pushImage("empty-app", "web", IMAGE);
    double.releasePlan = { pendingReads: 0, outcome: "failed" };
    const err = await failure(deploy({ app: "empty-app" }));
    expect(err.message).toMatch(
      /; not rolled back: a failed release never goes live, so empty-app had no release running$/,
    );
  });

  it("the longest deploy — release, /version, rollback, /version, each to its limit — ends within DEPLOY_BOUND_MS", async () => {
    const polls = Math.floor(RELEASE_TIMEOUT_MS / 3000) - 2;
    double.releasePlan = { pendingReads: polls, outcome: "succeeded" };
    double.rollbackPlan = { pendingReads: polls, outcome: "succeeded" };
    let probes = 0;
    serving = () => ({ commit: ++probes === 1 ? "old" : "broken" });
    const err = await failure(deploy());
    expect(err.message).toMatch(
      /; rollback to v41 also failed: .* did not report commit old or release v43 within 180s/,
    );
    expect(clock.time.now).toBeGreaterThan(2 * RELEASE_TIMEOUT_MS);
    expect(clock.time.now).toBeLessThanOrEqual(DEPLOY_BOUND_MS);
  });

  it("reports an image already running without its release when ten failed releases hide the current one", async () => {
    double.releasePlan = { pendingReads: 0, outcome: "failed" };
    for (let i = 0; i < 10; i++) {
      const image = `sha256:${i.toString(16).repeat(64)}`;
      double.pushImage(APP, "web", image);
      await failure(releaserOf(double, clock).release({ app: APP, processType: "web", imageId: image }));
    }
    double.pushImage(APP, "web", PREVIOUS_IMAGE);
    expect(await deploy({ imageId: PREVIOUS_IMAGE, verifyUrl: undefined })).toBe(
      `${APP} (web) is already running ${PREVIOUS_IMAGE}; no new release`,
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
