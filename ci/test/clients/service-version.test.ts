// waitForVersion against a loopback /version server. Time is faked (injected sleep and clock).
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readVersion, waitForVersion } from "../../src/clients/service-version.js";
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

describe("/version as a deploy reads it (fetch double)", () => {
  const serving = (answers: (() => Response)[]) => {
    const seen: { url: string; headers: Headers }[] = [];
    const doFetch: typeof fetch = async (url, init) => {
      seen.push({ url: String(url), headers: new Headers(init?.headers) });
      return (answers.shift() ?? (() => Response.json({ commit: "old" })))();
    };
    return { doFetch, seen };
  };

  it("readVersion: the JSON of a 200 only; an error status, a body that is not JSON or no answer is undefined", async () => {
    const { doFetch, seen } = serving([
      () => Response.json({ commit: "abc123" }),
      () => Response.json({ commit: "abc123" }, { status: 503 }),
      () => new Response("<html>maintenance</html>"),
      () => {
        throw new TypeError("fetch failed");
      },
    ]);
    const reads = [];
    for (let i = 0; i < 4; i++) reads.push(await readVersion("https://app.example.test", AGENT, doFetch));
    expect(reads).toEqual([{ commit: "abc123" }, undefined, undefined, undefined]);
    expect(seen[0]!.url).toBe("https://app.example.test/version");
    expect(seen[0]!.headers.get("accept")).toBe("application/json");
    expect(seen[0]!.headers.get("user-agent")).toBe(AGENT);
  });

  it("does not take an error status for the commit, even when its body names it, and says what it saw", async () => {
    const { doFetch, seen } = serving(
      Array.from({ length: 40 }, () => () => Response.json({ commit: "abc123" }, { status: 503 })),
    );
    const clock = fakeTime();
    const err = await failure(
      waitForVersion({
        url: "https://app.example.test//",
        commit: "abc123",
        userAgent: AGENT,
        timeoutMs: 20_000,
        fetch: doFetch,
        sleep: clock.sleep,
        now: clock.now,
        log: clock.log,
      }),
    );
    expect(err.message).toBe(
      "https://app.example.test/version did not report commit abc123 within 20s (last: HTTP 503)",
    );
    expect(seen[0]!.headers.get("accept")).toBe("application/json");
  });

  it("with a release to wait for, takes that release (and no other) as done, and names both in what it waits for", async () => {
    const wanted = { commit: "old", heroku: { release: "v46" } };
    const { doFetch } = serving([
      () => Response.json({ commit: "old", heroku: { release: "v45" } }),
      () => Response.json(wanted),
    ]);
    const clock = fakeTime();
    const probe = {
      url: "https://app.example.test",
      commit: "abc123",
      release: "v46",
      userAgent: AGENT,
      fetch: doFetch,
      sleep: clock.sleep,
      now: clock.now,
      log: clock.log,
    };
    expect(await waitForVersion(probe)).toEqual(wanted);
    expect(clock.time.sleeps).toEqual([5000]);
    const never = serving([]);
    const err = await failure(waitForVersion({ ...probe, fetch: never.doFetch, timeoutMs: 10_000 }));
    expect(err.message).toBe(
      "https://app.example.test/version did not report commit abc123 or release v46 within 10s (last: commit old)",
    );
  });
});
