import type { Readable } from "node:stream";
import type Router from "@koa/router";
import type { RouterMiddleware } from "@koa/router";
import etag from "etag";
import type { Context } from "koa";
import { escapeHtml, itemList, linkItem, page } from "./html";
import { answerNotFound } from "./not-found";
import { PoetryPathError, parsePoetryPath } from "./poetry-path";
import type { Listing, Lookup, Poem, PoetryStore, RenderedPage } from "./poetry-store";

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
    return sendListing(ctx, store, wanted, found.listing);
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
  // Straight on Node's response (the values are final): Koa's type, etag and set cost a media-type lookup, a regex and
  // two arrays and a closure a header.
  const { res } = ctx;
  res.setHeader("Content-Type", POEM_TYPE);
  res.setHeader("ETag", poem.etag);
  res.setHeader("Last-Modified", poem.lastModified);
  ctx.response.body = body;
  // A stream has no length of its own: the size of the descriptor it reads (bounded to it) goes out, and in the log.
  if (!Buffer.isBuffer(body)) ctx.response.length = poem.size;
}

/** Names rendered between two turns of the event loop: 150,000 names took 0.6 s to render in one go, on a busy core. */
const RENDER_BATCH = 5000;

/**
 * A listing as HTML or JSON. A page is rendered and hashed once per directory version and format (the store keeps one
 * Listing object per version; 50,000 names made a 5.45 MB page that took ~0.25 s a request to re-render), in batches
 * between which other requests are served, and requests that come meanwhile wait for that one rendering.
 */
function sendListing(ctx: Context, store: PoetryStore, wanted: string[], listing: Listing): void | Promise<void> {
  const format = ctx.accepts("html", "json") === "json" ? "json" : "html";
  let found = listing.pages.get(format);
  if (!found) {
    const rendering = renderListing(format, ctx.path, listing).then((rendered) => {
      listing.pages.set(format, rendered);
      // Its bytes now count in the cache's bound.
      store.recharge(wanted, listing);
      return rendered;
    });
    listing.pages.set(format, rendering);
    found = rendering;
  }
  if (found instanceof Promise) return found.then((rendered) => answerListing(ctx, rendered));
  answerListing(ctx, found);
}

function answerListing(ctx: Context, rendered: RenderedPage): void {
  // The same URL answers HTML or JSON by Accept: caches must key on it.
  ctx.vary("Accept");
  ctx.type = rendered.type;
  ctx.etag = rendered.etag;
  ctx.body = rendered.body;
}

/**
 * Render a listing, a batch of names at a time. The bytes are one Buffer every response shares: a string would be
 * encoded into a copy per response, held while its client does not read (100 clients not reading a 5 MB listing took
 * the service from 116 to 1,092 MB).
 */
async function renderListing(format: "html" | "json", path: string, listing: Listing): Promise<RenderedPage> {
  const render =
    format === "json"
      ? (name: string) => JSON.stringify(name)
      : (name: string, isDirectory: boolean) =>
          linkItem(
            isDirectory
              ? { href: `${encodeURIComponent(name)}/`, label: `${name}/` }
              : { href: encodeURIComponent(name), label: name },
          );
  const directories = await renderNames(listing.directories, (name) => render(name, true));
  const poems = await renderNames(listing.poems, (name) => render(name, false));
  const shownPath = decodeURIComponent(path);
  let text: string;
  if (format === "json") {
    text = `{"path":${JSON.stringify(shownPath)},"directories":[${directories.join(",")}],"poems":[${poems.join(",")}]}`;
  } else {
    const items = [...directories, ...poems];
    const body = items.length ? itemList(items) : `<p>${escapeHtml("No poems here.")}</p>`;
    text = page(`Poetry: ${shownPath}`, body);
  }
  const body = Buffer.from(text);
  return { type: format === "json" ? JSON_TYPE : HTML_TYPE, body, etag: etag(body) };
}

/** Each name rendered, yielding to the event loop after every RENDER_BATCH of them. */
async function renderNames(names: readonly string[], render: (name: string) => string): Promise<string[]> {
  const rendered: string[] = [];
  for (let i = 0; i < names.length; i++) {
    if (i > 0 && i % RENDER_BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
    rendered.push(render(names[i]!));
  }
  return rendered;
}

const POEM_TYPE = "text/plain; charset=utf-8";
const JSON_TYPE = "application/json; charset=utf-8";
const HTML_TYPE = "text/html; charset=utf-8";
