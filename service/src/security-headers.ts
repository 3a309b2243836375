import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";
import type { Middleware } from "koa";

/**
 * Helmet's security headers, decided by helmet itself but once: its default policy does not depend on the request, so
 * helmet runs at start against a response that records what it sets and removes, and every response replays that.
 * The headers are exactly helmet's; per request it saves koa-helmet's promise and helmet's dispatch through its
 * thirteen middlewares.
 */
export function securityHeaders(): Middleware {
  const steps: Array<[name: string, value: string | undefined]> = [];
  const recorder = {
    setHeader: (name: string, value: string) => void steps.push([name, value]),
    removeHeader: (name: string) => void steps.push([name, undefined]),
  };
  let finished = false;
  helmet()({} as IncomingMessage, recorder as unknown as ServerResponse, (err?: unknown) => {
    if (err) throw err;
    finished = true;
  });
  if (!finished) throw new Error("helmet did not finish synchronously: its headers cannot be recorded");
  return (ctx, next) => {
    const { res } = ctx;
    for (const [name, value] of steps) {
      if (value === undefined) res.removeHeader(name);
      else res.setHeader(name, value);
    }
    return next();
  };
}
