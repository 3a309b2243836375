import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { credentialsAsHeader } from "./credentials";
import { escapeHtml, page } from "./html";

/** Where the AWS page reads its metadata from. */
export interface AwsSources {
  /** EC2 instance metadata service base URL (IMDSv2), e.g. http://169.254.169.254. */
  metadataUrl: string;
  /** ECS_CONTAINER_METADATA_URI_V4, when the task runs on ECS. */
  ecsMetadataUri?: string | undefined;
  /** ECS_CONTAINER_METADATA_FILE, when the ECS agent writes one. */
  ecsMetadataFile?: string | undefined;
  /** Overall deadline for every lookup together. */
  timeoutMs?: number;
  /** How long a rendered page is served again before the metadata is looked up anew. */
  cacheMs?: number;
}

const EC2_PATHS = ["hostname", "placement/availability-zone", "iam/info"];
// The most a section shows: an endless IMDS body took RSS to 932 MB, /dev/zero as the metadata file 630 MB a page.
const MAX_BYTES = 64 * 1024;

// IMDS is rate-limited per instance (throttling the host's credential refreshes too): 2,000 pages made 10,000 calls.
const CACHE_MS = 5000;

/**
 * The AWS metadata page as a function to call per request. One rendering at a time, shared by every request that
 * arrives meanwhile and served again for a few seconds after: a burst of pages makes one round of at most 5 metadata
 * calls, at most 4 of them at once.
 */
export function createAwsPage(sources: AwsSources): () => Promise<string> {
  let cached: { html: string; until: number } | undefined;
  let rendering: Promise<string> | undefined;
  return () => {
    if (cached && performance.now() < cached.until) return Promise.resolve(cached.html);
    rendering ??= renderAwsPage(sources)
      .then((html) => {
        cached = { html, until: performance.now() + (sources.cacheMs ?? CACHE_MS) };
        return html;
      })
      .finally(() => (rendering = undefined));
    return rendering;
  };
}

/**
 * Render the AWS metadata page. Each section shows its value or, in its place, the error that kept it away;
 * the page is always rendered within the deadline.
 */
async function renderAwsPage(sources: AwsSources): Promise<string> {
  const signal = AbortSignal.timeout(sources.timeoutMs ?? 3000);
  const sections = ec2Lookups(sources.metadataUrl, signal);
  if (sources.ecsMetadataUri) {
    sections.push(
      labelled("ECS task metadata", getText("GET", `${sources.ecsMetadataUri}/task`, {}, signal).then(prettyJson)),
    );
  }
  if (sources.ecsMetadataFile) {
    sections.push(
      labelled("ECS container metadata file", readRegularFile(sources.ecsMetadataFile, signal).then(prettyJson)),
    );
  }
  const rows = (await Promise.all(sections)).map(([title, r]) => {
    const content =
      "value" in r ? `<pre>${escapeHtml(r.value)}</pre>` : `<p class="error">error: ${escapeHtml(r.error)}</p>`;
    return `<h2>${escapeHtml(title)}</h2>\n${content}`;
  });
  return page("AWS metadata", rows.join("\n"));
}

type Result = { value: string } | { error: string };

/** IMDSv2: one PUT for a session token, then the metadata GETs in parallel with that token. */
function ec2Lookups(base: string, signal: AbortSignal): Array<Promise<[string, Result]>> {
  const token = getText("PUT", `${base}/latest/api/token`, { "X-aws-ec2-metadata-token-ttl-seconds": "60" }, signal);
  return EC2_PATHS.map((path) =>
    labelled(
      `EC2 ${path}`,
      token.then((t) => getText("GET", `${base}/latest/meta-data/${path}`, { "X-aws-ec2-metadata-token": t }, signal)),
    ),
  );
}

/**
 * One metadata request; a user name and password in the URL go as Basic auth (fetch refuses them in the URL). A
 * redirect is an error, never followed: fetch would carry the IMDSv2 token to whatever host it names.
 */
async function getText(
  method: string,
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<string> {
  const target = credentialsAsHeader(url);
  return textOf(
    await fetch(target.url, { method, headers: { ...target.headers, ...headers }, redirect: "error", signal }),
  );
}

async function textOf(res: Response): Promise<string> {
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status} from ${new URL(res.url).pathname}`);
  }
  return res.body ? cappedText(res.body) : "";
}

/** A body or file as text, or an error once it passes MAX_BYTES: leaving the loop cancels the rest of it. */
async function cappedText(source: AsyncIterable<Uint8Array>): Promise<string> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of source) {
    length += chunk.byteLength;
    if (length > MAX_BYTES) throw new Error(`larger than ${MAX_BYTES / 1024} KiB: not shown`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A regular file's text, capped. Anything else is refused: a FIFO's open waits for a writer (O_NONBLOCK makes it return
 * at once) and its read for data, each holding one of libuv's 4 threads for good, so a few pages starved the poems.
 */
async function readRegularFile(path: string, signal: AbortSignal): Promise<string> {
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  if (!(await file.stat().catch(() => undefined))?.isFile()) {
    await file.close();
    throw new Error("not a regular file: not read");
  }
  return cappedText(file.createReadStream({ signal }));
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

async function labelled(title: string, value: Promise<string>): Promise<[string, Result]> {
  try {
    return [title, { value: await value }];
  } catch (err) {
    const e = err as Error;
    const reason =
      e.name === "TimeoutError" || e.name === "AbortError"
        ? "timed out"
        : ((e.cause as Error | undefined)?.message ?? e.message);
    return [title, { error: reason }];
  }
}
