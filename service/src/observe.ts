import { randomUUID } from "node:crypto";
import { finished } from "node:stream";
import type { Context, Middleware } from "koa";
import { type Logger, requestLineWriter } from "./logger";
import type { Metrics } from "./metrics";
import { PoemStream } from "./poem-stream";
import { statusSentInstead } from "./server";

// Heroku's router accepts an incoming request id of this shape; anything else is replaced.
const REQUEST_ID = /^[A-Za-z0-9+/=-]{20,200}$/;
/** The route label of every request no route matched: one series, however many paths are tried. */
const UNMATCHED_ROUTE = "unmatched";

/**
 * The outermost middleware: request id, one log line and the metrics for every request, and the error boundary —
 * an unexpected error becomes a 500 whose body carries only the request id, with the details in the log.
 */
export function observe(logger: Logger, metrics: Metrics): Middleware {
  const writeRequestLine = requestLineWriter(logger);
  return async function observeRequest(ctx, next) {
    const start = performance.now();
    const incoming = ctx.req.headers["x-request-id"];
    const requestId = typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    // Straight on Node's response: Koa's set allocates two arrays and a closure for one header.
    ctx.res.setHeader("X-Request-Id", requestId);
    try {
      await next();
    } catch (err) {
      const e = err as { status?: number; expose?: boolean; message?: string };
      if (e.status && e.status < 500 && e.expose) {
        ctx.status = e.status;
        ctx.type = "text/plain";
        ctx.body = `${e.message}\n`;
      } else {
        logger.error({ requestId, err }, "request failed");
        ctx.status = 500;
        ctx.type = "text/plain";
        ctx.body = `internal server error (request id ${requestId})\n`;
      }
    }
    // ctx.response directly: each ctx.x is one more call through Koa's delegates.
    const body = ctx.response.body;
    // A streamed poem is answered when its last byte is sent (or the stream fails): logged then, with what was sent.
    if (body instanceof PoemStream) finished(ctx.res, () => record(ctx, requestId, start, body));
    else record(ctx, requestId, start, undefined);
  };

  /** Count and log one answered request; `streamed`, when its body was a poem streamed from disk. */
  function record(ctx: Context, requestId: string, start: number, streamed: PoemStream | undefined): void {
    const { request, response } = ctx;
    const seconds = (performance.now() - start) / 1000;
    const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
    const { method } = request;
    // What the client got: a client error on the same connection (pipelined garbage) may have answered in our place.
    const instead = statusSentInstead(ctx.res);
    const status = instead ?? response.status;
    metrics.observeRequest(method, typeof route === "string" ? route : UNMATCHED_ROUTE, status, seconds);
    const bytes = instead !== undefined ? 0 : streamed ? streamed.bytesSent : (response.length ?? 0);
    writeRequestLine({
      requestId,
      method,
      // CONNECT's target is an authority (host:port), which has no path: the log says the target.
      path: request.path ?? request.url,
      query: request.querystring,
      host: hostOf(ctx),
      // Without a trusted proxy Koa's ip is the peer's address, read here without the array its getter allocates.
      remote: ctx.app.proxy ? request.ip : (ctx.req.socket.remoteAddress ?? ""),
      status,
      durationUs: Math.round(seconds * 1e6),
      bytes,
    });
    if (streamed?.endedEarly) {
      metrics.observeCutShort();
      logger.warn(
        { requestId, bytes, promised: streamed.length },
        "poem ended before its Content-Length: connection closed",
      );
    }
  }
}

/**
 * `ctx.host` as Koa gives it, read straight from the Host header in the usual case (no trusted proxy, HTTP/1, one
 * plain value): Koa's getter splits it into an array and maps it each call. Anything else goes through Koa.
 */
function hostOf(ctx: Context): string {
  const { req } = ctx;
  const host = req.headers.host;
  if (ctx.app.proxy || req.httpVersionMajor >= 2 || !host || host.includes(",") || host.includes("@")) {
    return ctx.request.host;
  }
  return host.trim();
}
