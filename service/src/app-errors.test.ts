// The app when things go wrong: draining with a request in flight, internal errors, and malformed clients.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, startStub, type TestApp, waitFor } from "../test/helpers";
import { rawExchange } from "../test/reliability/harness";
import type { PoetryStore } from "./poetry-store";

describe("draining", () => {
  it("asks the client of a request already in flight when draining began to leave too", async () => {
    // A metadata service that holds the page's first lookup until the test lets it go.
    let arrived!: () => void;
    let release!: () => void;
    const arrival = new Promise<void>((resolve) => (arrived = resolve));
    const held = new Promise<void>((resolve) => (release = resolve));
    const imds = await startStub((_req, res) => {
      arrived();
      void held.then(() => res.writeHead(404).end());
    });
    const t = await startApp({ awsMetadataUrl: imds.url });
    try {
      const pending = fetch(`${t.url}/aws`);
      await arrival;
      t.lifecycle.shuttingDown = true;
      release();
      const res = await pending;
      expect(res.status).toBe(200);
      expect(res.headers.get("connection")).toBe("close");
    } finally {
      await t.close();
      await imds.close();
    }
  });
});

describe("internal errors", () => {
  let t: TestApp;
  beforeAll(async () => {
    // A store that fails the way a broken disk would, with an internal path in its message.
    const failing = {
      cached: () => undefined,
      lookup: async () => Promise.reject(new Error("EIO reading /srv/secret/poems")),
      countPoems: async () => ({ poems: 0, unreadable: 0 }),
      cacheSize: () => ({ entries: 0, bytes: 0 }),
    };
    t = await startApp({ poetry: failing as unknown as PoetryStore });
  });
  afterAll(() => t.close());

  it("answers 500 with only the request id and logs the details", async () => {
    const res = await fetch(`${t.url}/poetry/x.txt`);
    const body = await res.text();
    const id = res.headers.get("x-request-id")!;
    expect(res.status).toBe(500);
    expect(body).toBe(`internal server error (request id ${id})\n`);
    expect(body).not.toContain("/srv/secret");
    const logged = t.logs.find((l) => l.requestId === id && l.msg === "request failed") as { err: { message: string } };
    expect(logged.err.message).toContain("/srv/secret/poems");
  });
});

describe("client errors", () => {
  const AUTH = "Bearer s3cr3t-AUTH-token";
  const COOKIE = "sid=s3cr3t-COOKIE-value";
  const withSecrets = `GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH}\r\nCookie: ${COOKIE}\r\n\r\n`;
  let t: TestApp;
  beforeAll(async () => {
    t = await startApp();
  });
  afterAll(() => t.close());

  /** Every form a secret could take in the log: as text, or as the byte list a logged Buffer turns into. */
  const forms = (secret: string) => [secret, [...Buffer.from(secret)].join(",")];

  it("junk after a valid request with secrets, in one write: the client gets 400 and the log gets one small line, no header value", async () => {
    const before = JSON.stringify(t.logs).length;
    const junk = "\u0001JUNK ".repeat(20_000);
    const result = await rawExchange(Number(new URL(t.url).port), withSecrets + junk);
    expect(result.bytes.toString("latin1")).toBe("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    const requestLine = await waitFor(() => t.logs.find((l) => l.msg === "request" && l.path === "/healthz"));
    const log = JSON.stringify(t.logs);
    for (const form of [...forms(AUTH), ...forms(COOKIE), ...forms("JUNK")]) expect(log).not.toContain(form);
    // 120 KB in; two lines of log out, whatever the size of the junk.
    expect(log.length - before).toBeLessThan(1000);
    // What the client got, not what the handler would have sent.
    expect(requestLine).toMatchObject({ status: 400, bytes: 0 });
    expect(t.logs.filter((l) => l.msg === "client error")).toEqual([
      expect.objectContaining({ level: 40, code: "HPE_INVALID_METHOD", status: 400, remote: "127.0.0.1" }),
    ]);
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('http_client_errors_total{code="HPE_INVALID_METHOD"} 1');
    expect(metrics).toContain('http_requests_total{method="GET",route="/healthz",status="400"} 1');
  });

  it("oversized headers still get Node's 431", async () => {
    const result = await rawExchange(
      Number(new URL(t.url).port),
      `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(20_000)}\r\n\r\n`,
    );
    expect(result.status).toBe(431);
    expect(JSON.stringify(t.logs)).not.toContain("bbbbbbbb");
  });
});
