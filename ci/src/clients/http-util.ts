/**
 * Plumbing shared by the registry and Heroku Platform API clients: timed requests, one-line errors with no
 * secrets in them, and bounded polling. Global `fetch` only, so the module needs no npm runtime dependency.
 */

/** The `fetch` signature the clients call; tests inject their own. */
export type Fetch = typeof fetch;

/** Waits `ms` milliseconds; tests inject one that returns at once. */
export type Sleep = (ms: number) => Promise<void>;

/** Current time in milliseconds; tests inject a fake clock. */
export type Clock = () => number;

/** Where progress lines and notices go; tests collect them. */
export type Log = (line: string) => void;

/** The real {@link Sleep}. */
export const sleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The `User-Agent` every request of the module sends (Heroku asks API clients to identify themselves):
 * `dummyapp-ci/<version>`, with characters a product token may not hold (`/`, `,`, spaces…) turned into `_`.
 */
export function userAgent(version: string): string {
  return `dummyapp-ci/${version.replace(NOT_TOKEN_CHARS, "_")}`;
}

/** Characters outside RFC 9110's `tchar`. */
const NOT_TOKEN_CHARS = /[^\w.!#$%&'*+^`|~-]/g;

/** An HTTP API call failed. The message is one line: request, status, server error codes; never a credential. */
export class ApiError extends Error {
  /**
   * @param message one line, already free of secrets
   * @param status HTTP status, when a response came back
   * @param code the server's error code (`not_found`, `MANIFEST_UNKNOWN`, …), when it sent one
   * @param requestId the server's `Request-Id` header, when it sent one (quote it to Heroku support)
   */
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    readonly requestId?: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** `text` on one line, at most `max` characters (keeping the end, where failures are usually reported). */
export function oneLine(text: string, max = 500): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `…${flat.slice(-max)}` : flat;
}

/** `text` with every occurrence of each non-empty secret replaced by `***`. */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  return secrets.reduce<string>((out, secret) => (secret ? out.split(secret).join("***") : out), text);
}

/**
 * `fetch(url, init)` bounded by `timeoutMs`. A network failure or timeout becomes an {@link ApiError} saying which
 * request failed and why (`ECONNREFUSED`, timeout), instead of the bare "fetch failed".
 */
export async function send(doFetch: Fetch, url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  try {
    return await doFetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? (err as Error).message;
    throw new ApiError(`${init.method ?? "GET"} ${url}: ${oneLine(String(why))}`);
  }
}

/**
 * How often a wait prints a progress line. CircleCI kills a step after 10 minutes without output; a line every 20 s,
 * plus one try's worst case (a 30 s request timeout and a 5 s pause), keeps every silence under a minute.
 */
export const PROGRESS_EVERY_MS = 20_000;

/** How {@link pollUntil} waits: total budget, pause between tries, and injectable sleep and clock. */
export interface PollOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Pause between tries. */
  intervalMs: number;
  /** Test seams: a real timer and `Date.now` otherwise. */
  sleep?: Sleep;
  now?: Clock;
  /** While waiting, `log(progress(elapsedMs))` at least every {@link PROGRESS_EVERY_MS}. */
  progress?: (elapsedMs: number) => string;
  log?: Log;
}

/**
 * Calls `attempt` until it returns a value other than `undefined`, pausing `intervalMs` between calls; after
 * `timeoutMs` throws an {@link ApiError} whose message is `timeoutMessage()` (called then, so it can say what was
 * last seen). Errors thrown by `attempt` end the polling at once.
 */
export async function pollUntil<T>(
  attempt: () => Promise<T | undefined>,
  options: PollOptions,
  timeoutMessage: () => string,
): Promise<T> {
  const pause = options.sleep ?? sleep;
  const now = options.now ?? Date.now;
  const start = now();
  const deadline = start + options.timeoutMs;
  let reported = start;
  for (;;) {
    const result = await attempt();
    if (result !== undefined) return result;
    if (now() + options.intervalMs > deadline) throw new ApiError(timeoutMessage());
    if (options.progress && now() - reported >= PROGRESS_EVERY_MS) {
      reported = now();
      (options.log ?? console.log)(options.progress(reported - start));
    }
    await pause(options.intervalMs);
  }
}

/** `ms` as `4m 05s` (or `50s`), for progress lines. */
export function minutes(ms: number): string {
  const seconds = Math.round(ms / 1000);
  return seconds < 60 ? `${seconds}s` : `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
}
