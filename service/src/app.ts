import Router from "@koa/router";
import etag from "etag";
import Koa from "koa";
import conditional from "koa-conditional-get";
import { createAwsPage } from "./aws-page";
import { type BuildInfo, buildInfo as defaultBuildInfo } from "./build-info";
import { linkList, page } from "./html";
import { droppedLines, type Logger } from "./logger";
import { createMetrics, type Metrics } from "./metrics";
import { notFound } from "./not-found";
import { observe } from "./observe";
import { POEM_CUT_SHORT } from "./poem-stream";
import { addPoetryRoutes } from "./poetry-routes";
import type { PoetryStore } from "./poetry-store";
import { securityHeaders } from "./security-headers";
import type { ClientErrorObserver, Lifecycle } from "./server";
import { refuseSecondHost } from "./single-host";
import { versionInfo } from "./version";

const HEALTHY = Buffer.from("ok\n");

/** What the app is built from. */
export interface AppOptions {
  logger: Logger;
  /** The opened poetry directory, or undefined to run without the poetry pages. */
  poetry: PoetryStore | undefined;
  lifecycle: Lifecycle;
  trustProxy: boolean;
  location: string;
  awsMetadataUrl: string;
  /** Read once, for ECS metadata locations and Heroku dyno metadata. */
  env: NodeJS.ProcessEnv;
  build?: BuildInfo;
}

/**
 * Build the Koa app and its metrics registry. It never listens: main (or a test) hands `app.callback()` and
 * `onClientError` (and the same lifecycle) to createHttpServer.
 */
export function createApp(options: AppOptions): { app: Koa; metrics: Metrics; onClientError: ClientErrorObserver } {
  const { logger, poetry, lifecycle, env, build = defaultBuildInfo } = options;
  const metrics = createMetrics(build, poetry, () => droppedLines(logger));
  const app = new Koa({ proxy: options.trustProxy, maxIpsCount: 1 });

  // Client aborts are normal on the internet; anything else Koa reports after the response began is worth a line.
  app.silent = true;
  app.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "ECONNRESET" || err.code === "EPIPE" || err.code === "ERR_STREAM_PREMATURE_CLOSE") return;
    // observe logs a poem cut short, with the bytes sent.
    if (err.code === POEM_CUT_SHORT) return;
    logger.warn({ err }, "response error");
  });

  const version = JSON.stringify(versionInfo(build, options.location, env));
  const pages = [
    ...(poetry ? [{ href: "/poetry/", label: "Poetry" }] : []),
    { href: "/aws", label: "AWS metadata" },
    { href: "/version", label: "Version" },
    { href: "/metrics", label: "Metrics" },
    { href: "/healthz", label: "Health" },
  ];
  const index = page(build.name, linkList(pages));
  // Both pages are fixed for the life of the process, and so are their validators.
  const indexTag = etag(index);
  const versionTag = etag(version);

  // One flat, strict router: nested routers cost a second dispatch per request, and strict keeps "/poetry" (redirected)
  // apart from "/poetry/" (the listing).
  const router = new Router({ strict: true });
  router.get("/", (ctx) => {
    ctx.type = "text/html; charset=utf-8";
    ctx.etag = indexTag;
    ctx.body = index;
  });
  router.get("/version", (ctx) => {
    ctx.type = "application/json";
    ctx.etag = versionTag;
    ctx.body = version;
  });
  router.get("/healthz", (ctx) => {
    // Type and bytes fixed: Koa would test the string for HTML, look the type up and measure it, every probe.
    ctx.res.setHeader("Content-Type", "text/plain; charset=utf-8");
    ctx.body = HEALTHY;
  });
  router.get("/readyz", (ctx) => {
    ctx.status = lifecycle.shuttingDown ? 503 : 200;
    ctx.body = lifecycle.shuttingDown ? "shutting down\n" : "ready\n";
  });
  router.get("/metrics", async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  const awsPage = createAwsPage({
    metadataUrl: options.awsMetadataUrl,
    ecsMetadataUri: env.ECS_CONTAINER_METADATA_URI_V4,
    ecsMetadataFile: env.ECS_CONTAINER_METADATA_FILE,
  });
  router.get("/aws", async (ctx) => {
    ctx.type = "text/html; charset=utf-8";
    ctx.body = await awsPage();
  });
  if (poetry) addPoetryRoutes(router, poetry);

  app.use(observe(logger, metrics));
  // The request's policy in one middleware, not three: each koa-compose hop is a bound function and a promise.
  const secure = securityHeaders();
  const conditionalGet = conditional();
  app.use((ctx, next) => {
    secure(ctx.res);
    refuseSecondHost(ctx);
    // koa-conditional-get asks ctx.fresh, which copies every response header before it looks for a validator in the
    // request; without one the answer is "not fresh" anyway, so only requests carrying one go through it.
    const { headers } = ctx.req;
    return headers["if-none-match"] || headers["if-modified-since"] ? conditionalGet(ctx, next) : next();
  });
  app.use(router.routes());
  app.use(notFound());
  app.use(router.allowedMethods());
  // Requests Node could not read (HPE_* parse errors, ERR_HTTP_* timeouts) get one line each, never the request's
  // bytes; connection errors (resets, broken pipes: normal on the internet) are counted only.
  const onClientError: ClientErrorObserver = (code, status, remote) => {
    metrics.observeClientError(code);
    if (code.startsWith("HPE_") || code.startsWith("ERR_HTTP_")) logger.warn({ code, status, remote }, "client error");
  };
  return { app, metrics, onClientError };
}
