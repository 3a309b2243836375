// waitForVersion against a loopback /version server. Time is faked (injected sleep and clock).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitForVersion } from "../../src/clients/service-version.js";
import { AGENT, failure, fakeTime, longestSilence, startVersionServer } from "../heroku-fixtures.js";

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
