import type { Context, Middleware } from "koa";

/** Answer 404 with the same one line for every path nothing serves. A route that finds nothing calls this itself. */
export function answerNotFound(ctx: Context): void {
  ctx.status = 404;
  ctx.type = "text/plain";
  ctx.body = "page not found\n";
}

/**
 * The 404 for requests no route took. Registered between the router's routes() and allowedMethods(), it runs only
 * when no route matched (a matched route costs it nothing), and answers after allowedMethods, which may have made a
 * known path's other methods a 405 or 501 (their bodies stay Koa's).
 */
export function notFound(): Middleware {
  return async function notFound(ctx, next) {
    await next();
    if (ctx.response.status === 404 && ctx.response.body == null) answerNotFound(ctx);
  };
}
