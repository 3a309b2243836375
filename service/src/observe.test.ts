import { connect } from "node:net";
import Koa, { type Middleware } from "koa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureLogs, rawRequest, serve, waitFor } from "../test/helpers";
import { buildInfo } from "./build-info";
import { droppedLines } from "./logger";
import { createMetrics, type Metrics } from "./metrics";
import { observe } from "./observe";

const VALID_ID = "abcdefghijklmnopqrstuvwxyz0123";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** Handlers behind observe, by path; `route` plays @koa/router's documented ctx._matchedRoute. */
const handlers: Record<string, Middleware> = {
  "/hello": (ctx) => {
    ctx.body = "hello\n";
  },
  "/things/7": (ctx) => {
    (ctx as { _matchedRoute?: string })._matchedRoute = "/things/{id}";
    ctx.body = "thing 7\n";
  },
  "/slow": async (ctx) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    ctx.body = "slow\n";
  },
  "/broken": () => {
    throw new Error("EIO reading /srv/secret/poems");
  },
  "/teapot": (ctx) => ctx.throw(418, "short and stout"),
  // Asks to be shown but is a server error: the client still sees only the request id.
  "/exposed-502": () => {
    throw Object.assign(new Error("upstream said /srv/secret"), { status: 502, expose: true });
  },
  // A client status that does not ask to be shown: treated as unexpected.
  "/hidden-400": () => {
    throw Object.assign(new Error("parser state /srv/secret"), { status: 400, expose: false });
  },
  "/nothing": () => {},
};

describe("observe, alone in front of a few handlers on the real server", () => {
  let url: string;
  let close: () => Promise<void>;
  let logs: Array<Record<string, unknown>>;
  let metrics: Metrics;
  beforeAll(async () => {
    const captured = captureLogs();
    logs = captured.logs;
    metrics = createMetrics(buildInfo, undefined, () => droppedLines(captured.logger));
    const app = new Koa();
    app.silent = true;
    app.use(observe(captured.logger, metrics));
    app.use((ctx, next) => handlers[ctx.path]?.(ctx, next));
    ({ url, close } = await serve(app.callback(), (code) => metrics.observeClientError(code)));
  });
  afterAll(() => close());

  /** The request line logged for `id`, once it is written. */
  const requestLine = (id: string) => waitFor(() => logs.find((l) => l.msg === "request" && l.requestId === id));
  const metricsText = () => metrics.registry.metrics();
  /** A series' value now (0 while it does not exist), so each test counts only its own requests. */
  const count = async (series: string) => {
    const line = (await metricsText()).split("\n").find((l) => l.startsWith(`${series} `));
    return line ? Number(line.slice(series.length + 1)) : 0;
  };

  it("keeps an incoming id of Heroku's shape, and logs exactly one line for the request with its fields", async () => {
    const res = await fetch(`${url}/hello?x=1&y=2`, { headers: { "X-Request-Id": VALID_ID } });
    expect(res.headers.get("x-request-id")).toBe(VALID_ID);
    expect(await res.text()).toBe("hello\n");
    const line = await requestLine(VALID_ID);
    expect(line).toMatchObject({
      level: 30,
      msg: "request",
      method: "GET",
      path: "/hello",
      query: "x=1&y=2",
      remote: "127.0.0.1",
      status: 200,
      bytes: 6,
    });
    expect(line.host).toBe(new URL(url).host);
    expect(Number.isInteger(line.durationUs)).toBe(true);
    expect(logs.filter((l) => l.requestId === VALID_ID)).toHaveLength(1);
  });

  it.each([
    ["none", undefined],
    ["too short", "a".repeat(19)],
    ["with a space", "abc def ghi jkl mno pqr"],
  ])("replaces an incoming id (%s) with a fresh UUID, in the header and the log", async (_label, incoming) => {
    const res = await fetch(`${url}/hello`, { headers: incoming ? { "X-Request-Id": incoming } : {} });
    const id = res.headers.get("x-request-id")!;
    expect(id).toMatch(UUID);
    expect(await requestLine(id)).toMatchObject({ path: "/hello", status: 200 });
    const again = (await fetch(`${url}/hello`, { headers: incoming ? { "X-Request-Id": incoming } : {} })).headers.get(
      "x-request-id",
    );
    expect(again).not.toBe(id);
  });

  it("times the request from before the handler to after it", async () => {
    const id = (await fetch(`${url}/slow`)).headers.get("x-request-id")!;
    // The handler waits 50 ms; timers never fire early, so only a lower bound holds on a busy machine.
    expect((await requestLine(id)).durationUs).toBeGreaterThanOrEqual(45_000);
  });

  it("labels the metrics with the matched route, and every path no route took as one 'unmatched' series", async () => {
    const unmatched = 'http_requests_total{method="GET",route="unmatched",status="404"}';
    const before = await count(unmatched);
    await fetch(`${url}/things/7`);
    await fetch(`${url}/things/7`);
    await fetch(`${url}/nothing`);
    await fetch(`${url}/random/1`);
    expect(await count('http_requests_total{method="GET",route="/things/{id}",status="200"}')).toBe(2);
    expect(await count('http_request_duration_seconds_count{method="GET",route="/things/{id}",status="200"}')).toBe(2);
    expect((await count(unmatched)) - before).toBe(2);
    const text = await metricsText();
    expect(text).not.toContain("/things/7");
    expect(text).not.toContain("/random/");
  });

  it("answers an unexpected error 500 with only the request id, and logs the details once", async () => {
    const series = 'http_requests_total{method="GET",route="unmatched",status="500"}';
    const before = await count(series);
    const res = await fetch(`${url}/broken`);
    const id = res.headers.get("x-request-id")!;
    expect(res.status).toBe(500);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    const body = await res.text();
    expect(body).toBe(`internal server error (request id ${id})\n`);
    expect(await requestLine(id)).toMatchObject({ status: 500, bytes: Buffer.byteLength(body) });
    const failed = logs.filter((l) => l.requestId === id && l.msg === "request failed");
    expect(failed).toEqual([
      expect.objectContaining({
        level: 50,
        err: expect.objectContaining({ message: "EIO reading /srv/secret/poems" }),
      }),
    ]);
    expect((await count(series)) - before).toBe(1);
  });

  it("shows a client error that asks to be shown, as one line, and logs no failure for it", async () => {
    const res = await fetch(`${url}/teapot`);
    const id = res.headers.get("x-request-id")!;
    expect(res.status).toBe(418);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await res.text()).toBe("short and stout\n");
    expect(await requestLine(id)).toMatchObject({ status: 418, bytes: 16 });
    expect(logs.filter((l) => l.requestId === id && l.msg === "request failed")).toEqual([]);
  });

  it.each(["/exposed-502", "/hidden-400"])(
    "keeps the message of %s from the client: 500, the request id only",
    async (path) => {
      const res = await fetch(`${url}${path}`);
      const id = res.headers.get("x-request-id")!;
      expect(res.status).toBe(500);
      expect(await res.text()).toBe(`internal server error (request id ${id})\n`);
      await requestLine(id);
      expect(logs.find((l) => l.requestId === id && l.msg === "request failed")).toBeDefined();
    },
  );

  it("leaves a response nobody wrote as the handler left it: wording the 404 is not observe's job", async () => {
    const res = await fetch(`${url}/nothing`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("Not Found");
    expect(await requestLine(res.headers.get("x-request-id")!)).toMatchObject({ status: 404, path: "/nothing" });
  });

  it("logs and counts the status the client got when a client error answered in the response's place", async () => {
    const answered = 'http_requests_total{method="GET",route="unmatched",status="400"}';
    const clientErrors = 'http_client_errors_total{code="HPE_INVALID_METHOD"}';
    const before = [await count(answered), await count(clientErrors)];
    // A valid request and pipelined garbage in one write: Node answers the garbage 400 before the handler's response.
    const bytes = await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(Number(new URL(url).port), "127.0.0.1", () => {
        socket.write(`GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: ${"p".repeat(24)}\r\n\r\n\u0001JUNK\r\n\r\n`);
      });
      socket.on("data", (chunk: Buffer) => chunks.push(chunk));
      socket.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
      socket.on("error", reject);
    });
    expect(bytes).toBe("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    expect(await requestLine("p".repeat(24))).toMatchObject({ path: "/hello", status: 400, bytes: 0 });
    expect([await count(answered), await count(clientErrors)]).toEqual([before[0]! + 1, before[1]! + 1]);
  });
});

describe.each([false, true])("observe's host and remote with proxy %s: what Koa's ctx.host and ctx.ip say", (proxy) => {
  let url: string;
  let close: () => Promise<void>;
  let logs: Array<Record<string, unknown>>;
  beforeAll(async () => {
    const captured = captureLogs();
    logs = captured.logs;
    const app = new Koa({ proxy, maxIpsCount: 1 });
    app.use(
      observe(
        captured.logger,
        createMetrics(buildInfo, undefined, () => droppedLines(captured.logger)),
      ),
    );
    app.use((ctx) => {
      ctx.body = JSON.stringify({ host: ctx.host, ip: ctx.ip });
    });
    ({ url, close } = await serve(app.callback(), () => {}));
  });
  afterAll(() => close());

  it.each([
    ["a plain name", { host: "poems.example" }],
    ["a port", { host: "poems.example:8080" }],
    ["two values", { host: "first.example, second.example" }],
    ["userinfo", { host: "user:pw@poems.example" }],
    [
      "a forwarded host and address",
      { host: "poems.example", "x-forwarded-host": "fwd.example", "x-forwarded-for": "203.0.113.9" },
    ],
  ])("%s", async (_label, headers) => {
    const id = `host-${proxy}-${Object.values(headers).join("|")}`.replace(/[^A-Za-z0-9+/=-]/g, "-").padEnd(20, "-");
    const res = await rawRequest(url, "/", { headers: { ...headers, "x-request-id": id } });
    const koa = JSON.parse(res.body) as { host: string; ip: string };
    const line = await waitFor(() => logs.find((l) => l.requestId === id));
    expect({ host: line.host, remote: line.remote }).toEqual({ host: koa.host, remote: koa.ip });
  });
});
