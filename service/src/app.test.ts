// The app's routes end to end: index, version, health, methods, request ids, proxies, and running without poetry.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawRequest, startApp, type TestApp, waitFor } from "../test/helpers";
import { rawExchange } from "../test/reliability/harness";
import { buildInfo } from "./build-info";
import { PoetryStore } from "./poetry-store";

const SAMPLE = new URL("../sample-poetry", import.meta.url).pathname;

describe("app with poetry", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ poetry: await PoetryStore.open(SAMPLE), location: "test <lab>" });
  });
  afterAll(() => t.close());

  it("GET / lists the pages that exist, poetry included", async () => {
    const res = await fetch(`${t.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    const html = await res.text();
    for (const href of ["/poetry/", "/aws", "/version", "/metrics", "/healthz"])
      expect(html).toContain(`href="${href}"`);
    expect(html).not.toContain("favicon");
  });

  it.each(["/", "/version", "/poetry/", "/poetry/seasons/"])(
    "%s carries an ETag and answers 304 to it",
    async (path) => {
      const first = await rawRequest(t.url, path);
      const etag = first.headers.etag as string;
      expect(etag).toMatch(/^"[^"]+"$/);
      const again = await rawRequest(t.url, path, { headers: { "If-None-Match": etag } });
      expect(again.status).toBe(304);
      expect(again.body).toBe("");
    },
  );

  it.each([
    ["two Host lines", 400, "Host: a.example\r\nHost: b.example\r\n"],
    ["Host and host", 400, "Host: a.example\r\nhost: a.example\r\n"],
    ["one Host line", 200, "Host: a.example\r\n"],
  ])("%s: answers %d (RFC 9112: more than one Host is a 400), and logs it", async (_what, status, hosts) => {
    const port = Number(new URL(t.url).port);
    const result = await rawExchange(
      port,
      `GET /healthz?hosts HTTP/1.1\r\n${hosts}Connection: keep-alive\r\n\r\n`,
      2000,
    );
    expect(result.status).toBe(status);
    const head = result.bytes.toString("latin1").split("\r\n\r\n")[0]!;
    // A 400 closes the connection (the client asked to keep it); a 200 keeps it until this client leaves.
    expect([/\r\nConnection: close/i.test(head), result.ended]).toEqual(
      status === 400 ? [true, "closed"] : [false, "timeout"],
    );
    const line = await waitFor(() =>
      t.logs.find((l) => l.msg === "request" && l.query === "hosts" && l.status === status),
    );
    expect(line).toMatchObject({ path: "/healthz", status });
  });

  it("answers CONNECT (a proxy's tunnel: this is no proxy) as any request, logs and counts it, and closes", async () => {
    const port = Number(new URL(t.url).port);
    const result = await rawExchange(
      port,
      "CONNECT tunnel.example:443 HTTP/1.1\r\nHost: tunnel.example:443\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
      2000,
    );
    // Node closed it unanswered: no status, no line, no count.
    expect([result.status, result.ended]).toEqual([501, "closed"]);
    expect(result.bytes.toString("latin1").match(/HTTP\/1\.1 /g)).toHaveLength(1); // nothing behind it is served
    const line = await waitFor(() => t.logs.find((l) => l.msg === "request" && l.method === "CONNECT"));
    expect(line).toMatchObject({ path: "tunnel.example:443", host: "tunnel.example:443", status: 501 });
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(/^http_requests_total\{method="CONNECT",route="unmatched",status="501"\} 1$/m);
  });

  it("survives a CONNECT whose client resets the connection at once", async () => {
    const port = Number(new URL(t.url).port);
    const before = t.logs.filter((l) => l.method === "CONNECT").length;
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.write("CONNECT reset.example:443 HTTP/1.1\r\nHost: reset.example:443\r\n\r\n", () =>
            socket.resetAndDestroy(),
          );
        });
        socket.on("close", () => resolve());
      });
    }
    // Each was still answered (into a reset socket) and logged, and the server serves on.
    await waitFor(() => (t.logs.filter((l) => l.method === "CONNECT").length >= before + 20 ? true : undefined));
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });

  it("GET /version reports the build, Node and LOCATION", async () => {
    const body = await (await fetch(`${t.url}/version`)).json();
    expect(body).toEqual({
      name: "dummyapp",
      version: buildInfo.version,
      commit: buildInfo.commit,
      buildTime: buildInfo.buildTime,
      buildTags: [],
      node: process.version,
      location: "test <lab>",
    });
  });

  it("GET /healthz and /readyz answer 200 while serving", async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
  });

  it("HEAD works wherever GET does, with no body", async () => {
    for (const path of ["/", "/version", "/healthz", "/poetry/", "/poetry/build-day.txt", "/metrics"]) {
      const res = await fetch(`${t.url}${path}`, { method: "HEAD" });
      expect(res.status, path).toBe(200);
      expect(await res.text()).toBe("");
    }
  });

  it.each(["POST", "PUT", "DELETE", "PATCH"])("%s on a known path is 405 with Allow", async (method) => {
    for (const path of ["/", "/healthz", "/version", "/poetry/build-day.txt"]) {
      const res = await fetch(`${t.url}${path}`, { method });
      expect(res.status, path).toBe(405);
      expect(res.headers.get("allow")).toBe("HEAD, GET");
    }
  });

  it.each(["/nope", "/favicon.ico", "/healthz/extra", "/poetry/nothing.txt", "/poetry/seasons/nothing/"])(
    "unknown path %s is 404 page not found",
    async (path) => {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe("page not found\n");
    },
  );

  it("sets security headers and exposes no framework", async () => {
    const res = await fetch(`${t.url}/`);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
    expect(res.headers.get("x-powered-by")).toBeNull();
  });

  it("writes one log line per request with the fields operators need", async () => {
    const id = "abcdefghijklmnopqrstuvwxyz0123";
    await fetch(`${t.url}/poetry/build-day.txt?x=1`, { headers: { "X-Request-Id": id } });
    const line = t.logs.find((l) => l.requestId === id)!;
    expect(line).toMatchObject({
      msg: "request",
      method: "GET",
      path: "/poetry/build-day.txt",
      query: "x=1",
      status: 200,
      remote: "127.0.0.1",
    });
    expect(line.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(line.bytes).toBeGreaterThan(100);
    expect(Number.isInteger(line.durationUs)).toBe(true);
  });
});

describe("request ids", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(() => t.close());

  it.each([
    ["a".repeat(20), true],
    ["A1+/=-".repeat(10), true],
    ["x".repeat(200), true],
    ["a".repeat(19), false],
    ["x".repeat(201), false],
    ["abc def ghi jkl mno pqr", false],
    ["aaaaaaaaaaaaaaaaaaaa;drop", false],
  ])("incoming %j honoured: %s", async (incoming, honoured) => {
    const res = await fetch(`${t.url}/healthz`, { headers: { "X-Request-Id": incoming } });
    const echoed = res.headers.get("x-request-id")!;
    if (honoured) expect(echoed).toBe(incoming);
    else expect(echoed).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("generates a fresh id when none is sent", async () => {
    const a = (await fetch(`${t.url}/healthz`)).headers.get("x-request-id");
    const b = (await fetch(`${t.url}/healthz`)).headers.get("x-request-id");
    expect(a).toMatch(/^[0-9a-f-]{36}$/);
    expect(a).not.toBe(b);
  });
});

describe("behind Heroku's router", () => {
  const heroku = {
    DYNO: "web.1",
    HEROKU_APP_NAME: "pt-dummy-app",
    HEROKU_RELEASE_VERSION: "v42",
    HEROKU_SLUG_COMMIT: "abc123",
  };

  it("reports dyno metadata in /version", async () => {
    const t = await startApp({ env: heroku });
    const body = (await (await fetch(`${t.url}/version`)).json()) as { heroku: unknown };
    await t.close();
    expect(body.heroku).toEqual({ dyno: "web.1", app: "pt-dummy-app", release: "v42", commit: "abc123" });
  });

  it.each([
    [true, "203.0.113.9"],
    [false, "127.0.0.1"],
  ])("with trustProxy=%s logs the remote address %s", async (trustProxy, remote) => {
    const t = await startApp({ trustProxy });
    const res = await fetch(`${t.url}/healthz`, { headers: { "X-Forwarded-For": "198.51.100.1, 203.0.113.9" } });
    const id = res.headers.get("x-request-id");
    await t.close();
    expect(t.logs.find((l) => l.requestId === id)).toMatchObject({ remote });
  });
});

describe("app without poetry", () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp({ poetry: undefined });
  });
  afterAll(() => t.close());

  it("leaves poetry off the index and answers 404 under /poetry/", async () => {
    expect(await (await fetch(`${t.url}/`)).text()).not.toContain("/poetry/");
    expect((await fetch(`${t.url}/poetry/`)).status).toBe(404);
  });

  it("turns /readyz to 503 once shutdown has begun, and asks keep-alive clients to leave", async () => {
    t.lifecycle.shuttingDown = true;
    const res = await fetch(`${t.url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.headers.get("connection")).toBe("close");
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    t.lifecycle.shuttingDown = false;
  });
});
