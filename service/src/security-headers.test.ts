import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import helmet from "helmet";
import Koa from "koa";
import { describe, expect, it } from "vitest";
import { securityHeaders } from "./security-headers";

/** The headers a request to a one-middleware Koa app gets back, minus those Node adds itself. */
async function headersOf(middleware: Koa.Middleware): Promise<Record<string, string>> {
  const app = new Koa();
  app.use(middleware);
  app.use((ctx) => {
    ctx.body = "ok";
  });
  const server = createServer(app.callback()).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    const own = ["date", "connection", "keep-alive", "content-length", "content-type"];
    return Object.fromEntries([...res.headers].filter(([name]) => !own.includes(name)));
  } finally {
    server.close();
  }
}

describe("securityHeaders", () => {
  // Pins the internal the replay relies on: helmet's default middleware finishes synchronously and only sets and
  // removes headers, whatever the request. An upgrade that changes that makes these differ (or start-up throw).
  it("sends exactly the headers helmet sets when it runs on the request itself", async () => {
    const perRequest = helmet();
    const direct = await headersOf((ctx, next) =>
      new Promise<void>((resolve, reject) =>
        perRequest(ctx.req, ctx.res, (err?: unknown) => (err ? reject(err) : resolve())),
      ).then(next),
    );
    expect(Object.keys(direct).length).toBeGreaterThan(5);
    const replay = securityHeaders();
    expect(
      await headersOf((ctx, next) => {
        replay(ctx.res);
        return next();
      }),
    ).toEqual(direct);
  });
});
