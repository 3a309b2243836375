import type { Readable } from "node:stream";
import type Router from "@koa/router";
import type { RouterMiddleware } from "@koa/router";
import etag from "etag";
import type { Context } from "koa";
import { escapeHtml, linkList, page } from "./html";
import { answerNotFound } from "./not-found";
import { PoetryPathError, parsePoetryPath } from "./poetry-path";
import type { Listing, Lookup, Poem, PoetryStore } from "./poetry-store";

const PREFIX = "/poetry/";

/**
 * Add the routes for /poetry/ to the app's router (a strict one, so "/poetry" and "/poetry/" are different routes):
 * directory listings (HTML, or JSON on `Accept: application/json`) and poems as UTF-8 text with ETag and
 * Last-Modified (conditional GETs are answered by the app's conditional-get middleware).
 */
export function addPoetryRoutes(router: Router, store: PoetryStore): void {
  router.get("/poetry", (ctx) => {
    ctx.status = 301;
    ctx.redirect(PREFIX);
  });
  // The handler validates the still-encoded ctx.path itself, so the router is told not to capture and decode it.
  const handler: RouterMiddleware = (ctx) => {
    let segments: string[];
    try {
      segments = parsePoetryPath(ctx.path.slice(PREFIX.length));
    } catch (err) {
      if (!(err instanceof PoetryPathError)) throw err;
      if (err.status === 404) return answerNotFound(ctx);
      ctx.status = 400;
      ctx.body = `bad request: ${err.message}\n`;
      return;
    }
    const wantsDirectory = segments.length === 0 || segments.at(-1) === "";
    const wanted = wantsDirectory ? segments.slice(0, -1) : segments;
    const cached = store.cached(wanted);
    if (cached) return respond(ctx, store, wanted, cached, wantsDirectory);
    return store.lookup(wanted).then((found) => respond(ctx, store, wanted, found, wantsDirectory));
  };
  router.register("/poetry/{*path}", ["GET"], handler, { ignoreCaptures: true });
}

/**
 * Answer with what the store found: the poem, the listing, a redirect to the directory, or nothing (a 404).
 * A large poem is opened for this response only, and its headers are those of the descriptor it is streamed from.
 */
function respond(
  ctx: Context,
  store: PoetryStore,
  wanted: string[],
  found: Lookup,
  wantsDirectory: boolean,
): void | Promise<void> {
  if (found.kind === "poem" && !wantsDirectory) {
    if (found.poem.body) return sendPoem(ctx, found.poem, found.poem.body);
    return store.openPoem(wanted).then((opened) => {
      if (opened) sendPoem(ctx, opened, opened.body ?? opened.stream!);
      else answerNotFound(ctx);
    });
  } else if (found.kind === "directory" && wantsDirectory) {
    sendListing(ctx, found.listing);
  } else if (found.kind === "directory") {
    ctx.status = 301;
    ctx.redirect(`${ctx.path}/`);
  } else if (found.kind === "forbidden") {
    // The name is public (listings show it without checking each entry's permissions); 403 tells the client, and the
    // operator reading the request log, that the file's permissions are at fault, not the path.
    ctx.status = 403;
    ctx.body = "forbidden: the service may not read this\n";
  } else {
    answerNotFound(ctx);
  }
}

function sendPoem(ctx: Context, poem: Poem, body: Buffer | Readable): void {
  ctx.type = "text/plain; charset=utf-8";
  ctx.etag = poem.etag;
  ctx.set("Last-Modified", poem.lastModified);
  ctx.response.body = body;
  // A stream has no length of its own: the size of the descriptor it reads (bounded to it) goes out, and in the log.
  if (!Buffer.isBuffer(body)) ctx.response.length = poem.size;
}

/**
 * A listing rendered in one format, with an ETag of its bytes so a client can revalidate it. The bytes are one Buffer
 * every response shares: a string would be encoded into a copy per response, held while its client does not read (100
 * clients not reading a 5 MB listing took the service from 116 to 1,092 MB).
 */
interface RenderedListing {
  type: string;
  body: Buffer;
  etag: string;
}

/**
 * Listings rendered so far, by format. The store keeps one Listing object per directory version (and path), so a page
 * is rendered and hashed once per version: 50,000 names made a 5.45 MB page that took ~0.25 s a request to re-render.
 * Entries live as long as the store caches their listing (its size estimate counts them).
 */
const rendered = new WeakMap<Listing, { html?: RenderedListing; json?: RenderedListing }>();

/** A listing as HTML or JSON. */
function sendListing(ctx: Context, listing: Listing): void {
  const format = ctx.accepts("html", "json") === "json" ? "json" : "html";
  let formats = rendered.get(listing);
  if (!formats) {
    formats = {};
    rendered.set(listing, formats);
  }
  let body = formats[format];
  if (!body) {
    body = withEtag(format === "json" ? listingJson(ctx.path, listing) : listingHtml(ctx.path, listing));
    formats[format] = body;
  }
  // The same URL answers HTML or JSON by Accept: caches must key on it.
  ctx.vary("Accept");
  ctx.type = body.type;
  ctx.etag = body.etag;
  ctx.body = body.body;
}

function withEtag({ type, text }: { type: string; text: string }): RenderedListing {
  const body = Buffer.from(text);
  return { type, body, etag: etag(body) };
}

function listingJson(path: string, listing: Listing) {
  return {
    type: "application/json; charset=utf-8",
    text: JSON.stringify({ path: decodeURIComponent(path), ...listing }),
  };
}

function listingHtml(path: string, listing: Listing) {
  const links = [
    ...listing.directories.map((name) => ({ href: `${encodeURIComponent(name)}/`, label: `${name}/` })),
    ...listing.poems.map((name) => ({ href: encodeURIComponent(name), label: name })),
  ];
  const title = `Poetry: ${decodeURIComponent(path)}`;
  return {
    type: "text/html; charset=utf-8",
    text: page(title, links.length ? linkList(links) : `<p>${escapeHtml("No poems here.")}</p>`),
  };
}
