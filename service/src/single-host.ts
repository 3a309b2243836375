import type { Context } from "koa";

/**
 * RFC 9112 §3.2: a request with more than one Host header line is answered 400. Node keeps the first and drops the
 * rest, so a proxy that read another one would disagree with this service about where the request goes (cache
 * poisoning, request smuggling); the connection is closed after the answer. Throws Koa's 400 for such a request.
 */
export function refuseSecondHost(ctx: Context): void {
  const raw = ctx.req.rawHeaders;
  let hosts = 0;
  // rawHeaders alternates names and values; a request carries about ten, each a length compare.
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === "host" && ++hosts > 1) {
      ctx.set("Connection", "close");
      ctx.throw(400, "more than one Host header");
    }
  }
}
