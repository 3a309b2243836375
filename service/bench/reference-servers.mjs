// The bench's reference servers, answering GET /poetry/<poem> and GET /healthz with the same bytes and headers as the
// service, everything precomputed in memory:
//   baseline   — bare node:http, the ceiling for Node on this machine;
//   koa        — a bare Koa app with one middleware, Koa's own ceiling;
//   koa-router — bare Koa with @koa/router holding the service's route table and nothing else: the ceiling of a Koa
//                service routed the way this one is, before its request log, metrics and the rest.
// Usage: node reference-servers.mjs baseline|koa|koa-router <port> <poem file>
import { randomUUID } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { basename } from "node:path";
import Router from "@koa/router";
import etag from "etag";
import helmet from "helmet";
import Koa from "koa";

const [kind, port, poemFile] = process.argv.slice(2);
if (!["baseline", "koa", "koa-router"].includes(kind) || !port || !poemFile) {
  console.error("usage: reference-servers.mjs baseline|koa|koa-router <port> <poem file>");
  process.exit(2);
}

// The service's security headers, taken from the helmet version it bundles, in the order helmet sets them.
const securityHeaders = [];
helmet()({}, { setHeader: (name, value) => securityHeaders.push([name, value]), removeHeader() {} }, () => {});

// Each response's headers after X-Request-Id, in the service's order (/healthz carries no validator).
const poem = readFileSync(poemFile);
const health = Buffer.from("ok\n");
const type = ["Content-Type", "text/plain; charset=utf-8"];
const length = (body) => ["Content-Length", String(body.length)];
const routes = new Map([
  [
    `/poetry/${basename(poemFile)}`,
    {
      body: poem,
      headers: [
        ...securityHeaders,
        type,
        ["ETag", etag(poem)],
        ["Last-Modified", statSync(poemFile).mtime.toUTCString()],
        length(poem),
      ],
    },
  ],
  ["/healthz", { body: health, headers: [...securityHeaders, type, length(health)] }],
]);

// The service's keep-alive timeout, so the Keep-Alive header is the same too.
const KEEP_ALIVE_TIMEOUT_MS = 95_000;

let server;
if (kind === "baseline") {
  // One flat header array per route; writeHead serialises it at once, so the request id slot can be reused.
  const prepared = new Map(
    [...routes].map(([path, r]) => [path, { body: r.body, headers: ["X-Request-Id", "", ...r.headers.flat()] }]),
  );
  server = createServer((req, res) => {
    const r = prepared.get(req.url);
    if (!r) {
      res.writeHead(404).end();
      return;
    }
    r.headers[1] = randomUUID();
    res.writeHead(200, r.headers);
    res.end(r.body);
  });
} else {
  const app = new Koa();
  app.silent = true; // as the service: autocannon closing its pipelined connections is not an error
  /**
   * Answer from the precomputed routes, as the handler of either Koa server. Headers go straight on the Node response
   * (Koa 3's ctx.set allocates arrays and a closure per call), so these stay the cheapest Koa can do.
   */
  const answer = (ctx) => {
    const r = routes.get(ctx.path);
    if (!r) return;
    ctx.res.setHeader("X-Request-Id", randomUUID());
    for (const [name, value] of r.headers) ctx.res.setHeader(name, value);
    ctx.body = r.body;
  };
  if (kind === "koa") {
    app.use(answer);
  } else {
    // The service's routes in its order, in one flat strict router; the two the bench loads answer, the rest exist
    // only to be tried by the router's matching, as in the service.
    const router = new Router({ strict: true });
    for (const path of ["/", "/version", "/healthz", "/readyz", "/metrics", "/aws", "/poetry"])
      router.get(path, answer);
    router.register("/poetry/{*path}", ["GET"], answer, { ignoreCaptures: true });
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  server = createServer(app.callback());
}
server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
server.listen(Number(port), "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
