// The Heroku Platform API client against HerokuContractDouble — a loopback contract double of the documented contract,
// NOT Heroku: checking the app, releasing an image, errors and rate limits. Following a release and deploying are in
// ../heroku-release.test.ts. Time is faked (injected sleep and clock), so back-off runs instantly and is measurable.
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { HerokuApi, type HerokuApiOptions } from "../../src/clients/heroku-api.js";
import { ReleaseError } from "../../src/heroku-release.js";
import { type HerokuContractDouble, PREVIOUS_IMAGE } from "../heroku-contract-double.js";
import { AGENT, APP, clientOf, failure, fakeTime, IMAGE, startDouble, TOKEN } from "../heroku-fixtures.js";

describe("Heroku Platform API client against a loopback contract double (not Heroku)", () => {
  let double: HerokuContractDouble;
  let clock: ReturnType<typeof fakeTime>;
  const api = (options: Partial<HerokuApiOptions> = {}) => clientOf(double, clock, options);
  const release = (options: Partial<HerokuApiOptions> = {}) =>
    api(options).releaseImage({ app: APP, processType: "web", imageId: IMAGE });

  beforeEach(async () => {
    double = await startDouble();
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
    // Content-Type goes with a body only.
    expect([list, formation, after].map((r) => r!.headers["content-type"])).toEqual([undefined, undefined, undefined]);
    expect(JSON.parse(patch!.body)).toEqual({ updates: [{ type: "web", docker_image: IMAGE }] });
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

  it("takes an app with no generation as Cedar, and a container build stack as the container stack", async () => {
    const app = (body: unknown) =>
      new HerokuApi({ token: TOKEN, userAgent: AGENT, fetch: async () => Response.json(body) }).checkContainerApp(APP);
    await expect(app({ stack: { name: "container" } })).resolves.toBeDefined();
    await expect(app({ stack: { name: "heroku-24" }, build_stack: { name: "container" } })).resolves.toBeDefined();
    await expect(app({ stack: { name: "container" }, build_stack: { name: "heroku-24" } })).resolves.toBeDefined();
    expect((await failure(app({ build_stack: { name: "heroku-24" } }))).message).toBe(
      `Heroku app ${APP} is on stack unknown, not container; switch it with: heroku stack:set container -a ${APP}`,
    );
  });

  it("says the process type ran no image before when only another type did (the app's first web image)", async () => {
    double.addNewApp("worker-app");
    double.pushImage("worker-app", "worker", IMAGE);
    await api().releaseImage({ app: "worker-app", processType: "worker", imageId: IMAGE });
    double.pushImage("worker-app", "web", IMAGE);
    const result = await api().releaseImage({ app: "worker-app", processType: "web", imageId: IMAGE });
    expect(result).toMatchObject({ kind: "released", before: { release: { version: 3 }, runsImage: false } });
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
    // A digest with something before or after it, or in upper-case hex, is not one either.
    for (const imageId of [`app@${IMAGE}`, `${IMAGE}0`, IMAGE.toUpperCase().replace("SHA256", "sha256")]) {
      expect((await failure(api().releaseImage({ app: APP, processType: "web", imageId }))).message).toBe(
        `image id must be a config digest sha256:<64 hex>, got ${imageId}`,
      );
    }
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

describe("Heroku Platform API client edges (fetch double, not Heroku)", () => {
  const client = (answer: (url: string) => Response | Promise<Response>, seen: string[] = []) =>
    new HerokuApi({
      token: TOKEN,
      userAgent: AGENT,
      sleep: async () => undefined,
      log: (line) => void seen.push(line),
      fetch: async (url) => {
        seen.push(String(url));
        return answer(String(url));
      },
    });
  const released = (output_stream_url?: string) => ({ id: "r-42", version: 42, status: "failed", output_stream_url });
  const elsewhere = `see heroku releases:output v42 -a ${APP}, or heroku logs -a ${APP}`;

  it("calls api.heroku.com unless told otherwise, and a base URL's trailing slashes do not double", async () => {
    const seen: string[] = [];
    const app = { stack: { name: "container" } };
    await client(() => Response.json(app), seen).checkContainerApp(APP);
    const local = new HerokuApi({
      token: TOKEN,
      userAgent: AGENT,
      apiUrl: "http://127.0.0.1:5000//",
      fetch: async (url) => {
        seen.push(String(url));
        return Response.json(app);
      },
    });
    await local.checkContainerApp(APP);
    expect(seen).toEqual([`https://api.heroku.com/apps/${APP}`, `http://127.0.0.1:5000/apps/${APP}`]);
  });

  it("shows a proxy's non-JSON error page as text, and an error id without a message as the id alone", async () => {
    const proxy = await failure(
      client(() => new Response("<h1>Bad gateway</h1>", { status: 502 })).checkContainerApp(APP),
    );
    expect(proxy.message).toBe(`Heroku API GET /apps/${APP}: 502: <h1>Bad gateway</h1>`);
    expect([proxy.status, proxy.code, proxy.requestId]).toEqual([502, undefined, undefined]);
    const bare = await failure(
      client(() => Response.json({ id: "maintenance" }, { status: 503 })).checkContainerApp(APP),
    );
    expect(bare.message).toBe(`Heroku API GET /apps/${APP}: 503 maintenance`);
    const cut = new ReadableStream({ start: (controller) => controller.error(new Error("connection reset")) });
    const unread = await failure(client(() => new Response(cut, { status: 502 })).checkContainerApp(APP));
    expect(unread.message).toBe(`Heroku API GET /apps/${APP}: 502`);
  });

  it("says the rate limit's remainder is unknown when Heroku does not send it", async () => {
    const seen: string[] = [];
    let n = 0;
    const api = client(
      () => (n++ === 0 ? new Response(null, { status: 429 }) : Response.json({ stack: { name: "container" } })),
      seen,
    );
    await api.checkContainerApp(APP);
    expect(seen).toContain(
      `Heroku API rate limit reached (RateLimit-Remaining unknown); retrying GET /apps/${APP} in 1s`,
    );
  });

  it("reads the data lines of an event stream only, and text without a content type as it is, without the token", async () => {
    const stream = "event: output\r\ndata: Running release command\r\ndata:migrations failed\r\nid: 7\r\n\r\n";
    const sse = client(() => new Response(stream, { headers: { "Content-Type": "text/event-stream; charset=utf-8" } }));
    expect(await sse.releaseOutput(APP, released("https://stream.example.test/1"))).toBe(
      "release output: Running release command migrations failed",
    );
    const plain = client(() => new Response(Buffer.from(`data: token ${TOKEN} refused`)));
    expect(await plain.releaseOutput(APP, released("https://stream.example.test/1"))).toBe(
      "release output: data: token *** refused",
    );
  });

  it("says where the output is when its stream cannot be reached", async () => {
    const down = client(() => {
      throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNRESET" } });
    });
    expect(await down.releaseOutput(APP, released("https://stream.example.test/1"))).toBe(
      `release output not readable (GET https://stream.example.test/1: ECONNRESET); ${elsewhere}`,
    );
  });
});
