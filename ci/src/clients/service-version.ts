/**
 * The deployed service's `/version`, as a deploy checks it: read once before the release (the commit a rollback must
 * bring back), then probed until it reports the released commit, or a rollback's release.
 */
import { type Clock, type Fetch, type Log, minutes, oneLine, pollUntil, type Sleep, send } from "./http-util.js";

/** How long `/version` may take to show a commit. */
export const VERIFY_TIMEOUT_MS = 180_000;

/** What every `/version` request sends. */
function versionHeaders(userAgent: string): Record<string, string> {
  return { Accept: "application/json", "User-Agent": userAgent };
}

/** `<url>/version` once, or undefined when it does not answer with JSON. */
export async function readVersion(
  url: string,
  userAgent: string,
  doFetch: Fetch = fetch,
): Promise<Record<string, unknown> | undefined> {
  try {
    const response = await send(doFetch, `${url}/version`, { headers: versionHeaders(userAgent) }, 10_000);
    if (response.ok) return (await response.json()) as Record<string, unknown>;
    await response.body?.cancel();
  } catch {
    // Down before the deploy: a rollback then cannot be checked against the earlier commit.
  }
  return undefined;
}

/** What {@link waitForVersion} probes. */
export interface VersionProbe {
  /** The service's base URL, e.g. `https://pt-dummy-app.herokuapp.com`; `/version` is appended. */
  url: string;
  /** Done when `/version` reports this `commit`… */
  commit?: string;
  /** …or, with Heroku's dyno metadata, this `heroku.release` (e.g. `v46`). */
  release?: string;
  /** Sent as `User-Agent`. */
  userAgent: string;
  /** Give up after this long; default {@link VERIFY_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Pause between probes; default 5 s. */
  intervalMs?: number;
  /** Test seams: the global `fetch`, a real timer, `Date.now` and `console.log` otherwise. */
  fetch?: Fetch;
  sleep?: Sleep;
  now?: Clock;
  log?: Log;
}

/**
 * Probes `<url>/version` until its JSON reports `commit` (or `heroku.release` is `release`), and returns that JSON.
 * Refused connections, errors and other commits are expected while dynos restart, so they only count as "not yet";
 * prints a progress line at least every minute; after `timeoutMs` throws an {@link ApiError} saying what was last seen.
 */
export async function waitForVersion(probe: VersionProbe): Promise<Record<string, unknown>> {
  const url = `${probe.url.replace(/\/+$/, "")}/version`;
  const timeoutMs = probe.timeoutMs ?? VERIFY_TIMEOUT_MS;
  const wanted = [probe.commit && `commit ${probe.commit}`, probe.release && `release ${probe.release}`]
    .filter(Boolean)
    .join(" or ");
  let last = "no answer";
  const reports = async () => {
    try {
      const response = await send(probe.fetch ?? fetch, url, { headers: versionHeaders(probe.userAgent) }, 10_000);
      if (!response.ok) {
        last = `HTTP ${response.status}`;
        await response.body?.cancel();
        return undefined;
      }
      const body = (await response.json()) as { commit?: unknown; heroku?: { release?: unknown } };
      if ((probe.commit && body.commit === probe.commit) || (probe.release && body.heroku?.release === probe.release))
        return body;
      last = `commit ${String(body.commit)}`;
    } catch (err) {
      last = oneLine((err as Error).message, 200);
    }
    return undefined;
  };
  const options = {
    timeoutMs,
    intervalMs: probe.intervalMs ?? 5_000,
    sleep: probe.sleep,
    now: probe.now,
    log: probe.log,
    progress: (elapsed: number) =>
      `waiting for ${url} to report ${wanted}: ${last} after ${minutes(elapsed)} of ${minutes(timeoutMs)}`,
  };
  return pollUntil(
    reports,
    options,
    () => `${url} did not report ${wanted} within ${Math.round(timeoutMs / 1000)}s (last: ${last})`,
  );
}
