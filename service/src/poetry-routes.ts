import Router from "@koa/router";
import type { Context } from "koa";
import { escapeHtml, linkList, page } from "./html";
import { parsePoetryPath, PoetryPathError } from "./poetry-path";
import type { Listing, PoetryStore } from "./poetry-store";

const PREFIX = "/poetry/";

/**
 * Routes for /poetry/: directory listings (HTML, or JSON on `Accept: application/json`) and poems as UTF-8 text with
 * ETag and Last-Modified (conditional GETs are answered by the app's conditional-get middleware).
 */
export function poetryRoutes(store: PoetryStore): Router {
  // Strict, so "/poetry" (redirected) and "/poetry/" (the listing) are different routes.
  const router = new Router({ strict: true });
  router.get("/poetry", (ctx) => {
    ctx.status = 301;
    ctx.redirect(PREFIX);
  });
  router.get("/poetry/{*path}", async (ctx) => {
    let segments: string[];
    try {
      segments = parsePoetryPath(ctx.path.slice(PREFIX.length));
    } catch (err) {
      if (!(err instanceof PoetryPathError)) throw err;
      ctx.status = err.status;
      if (err.status === 400) ctx.body = `bad request: ${err.message}\n`;
      return;
    }
    const wantsDirectory = segments.length === 0 || segments.at(-1) === "";
    const found = await store.lookup(wantsDirectory ? segments.slice(0, -1) : segments);
    if (found.kind === "poem" && !wantsDirectory) {
      ctx.type = "text/plain; charset=utf-8";
      ctx.etag = found.poem.etag;
      ctx.set("Last-Modified", found.poem.lastModified);
      ctx.body = found.poem.body ?? found.poem.open();
    } else if (found.kind === "directory" && wantsDirectory) {
      sendListing(ctx, found.listing);
    } else if (found.kind === "directory") {
      ctx.status = 301;
      ctx.redirect(`${ctx.path}/`);
    }
    // Anything else stays a 404 for the app's fallback.
  });
  return router;
}

function sendListing(ctx: Context, listing: Listing): void {
  if (ctx.accepts("html", "json") === "json") {
    ctx.body = { path: decodeURIComponent(ctx.path), ...listing };
    return;
  }
  const links = [
    ...listing.directories.map((name) => ({ href: `${encodeURIComponent(name)}/`, label: `${name}/` })),
    ...listing.poems.map((name) => ({ href: encodeURIComponent(name), label: name })),
  ];
  const title = `Poetry: ${decodeURIComponent(ctx.path)}`;
  ctx.type = "text/html; charset=utf-8";
  ctx.body = page(title, links.length ? linkList(links) : `<p>${escapeHtml("No poems here.")}</p>`);
}
