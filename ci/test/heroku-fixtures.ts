// What the Heroku client tests share: the token, app and image they use, a fake clock, a loopback /version service,
// and the client and releaser of a HerokuContractDouble as the module makes them. Time is faked (injected sleep and
// clock), so polling and back-off run instantly and are measurable.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "vitest";
import { HerokuApi, type HerokuApiOptions } from "../src/clients/heroku-api.js";
import { ApiError } from "../src/clients/http-util.js";
import { HerokuReleaser } from "../src/heroku-release.js";
import { HerokuContractDouble } from "./heroku-contract-double.js";

export const TOKEN = `HRKU-${randomBytes(16).toString("hex")}`;
export const APP = "pt-dummy-app";
export const AGENT = "dummyapp-ci/1.2.0";
export const IMAGE = `sha256:${createHash("sha256").update("config").digest("hex")}`;
export const COMMIT = "abc123";

/** A contract double where APP runs v41 and IMAGE is pushed for `web`, as each Heroku test starts. */
export async function startDouble(): Promise<HerokuContractDouble> {
  const double = await HerokuContractDouble.start(TOKEN);
  double.addApp(APP, "container", 41);
  double.pushImage(APP, "web", IMAGE);
  return double;
}

/** A clock that only moves when the code under test sleeps; `sleeps` records each wait, `lines` each progress line. */
export function fakeTime() {
  const time = { now: 0, sleeps: [] as number[], lines: [] as { at: number; line: string }[] };
  return {
    time,
    sleep: async (ms: number) => {
      time.sleeps.push(ms);
      time.now += ms;
    },
    now: () => time.now,
    log: (line: string) => void time.lines.push({ at: time.now, line }),
  };
}

/** The rejection of `promise`, which must be an ApiError that does not contain the token. */
export async function failure(promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  expect((err as ApiError).message).not.toContain(TOKEN);
  expect((err as ApiError).message).not.toContain("\n");
  return err as ApiError;
}

/** The longest stretch without a progress line between 0 and `end`, on the fake clock. */
export function longestSilence(lines: { at: number }[], end: number): number {
  const times = [0, ...lines.map((l) => l.at), end];
  return Math.max(...times.slice(1).map((t, i) => t - times[i]!));
}

/** A loopback service whose `/version` answers what `answer` returns for the n-th probe (from 1). */
export async function startVersionServer(
  answer: (n: number) => [number, unknown],
): Promise<{ url: string; agents: unknown[]; close(): Promise<void> }> {
  let n = 0;
  const agents: unknown[] = [];
  const server: Server = createServer((req, res) => {
    agents.push(req.headers["user-agent"]);
    const [status, body] = answer(++n);
    res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    agents,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `clock`, except that Heroku expires v42 (destroys its image) at each pause, so a pending v42 ends `expired`. */
export function expiring(
  clock: ReturnType<typeof fakeTime>,
  double: HerokuContractDouble,
): ReturnType<typeof fakeTime> {
  const sleep = async (ms: number) => {
    double.expire(APP, 42);
    await clock.sleep(ms);
  };
  return { ...clock, sleep };
}

/** A client of `double` on the fake clock, as the module makes one. */
export function clientOf(
  double: HerokuContractDouble,
  clock: ReturnType<typeof fakeTime>,
  options: Partial<HerokuApiOptions> = {},
) {
  return new HerokuApi({
    apiUrl: double.url,
    token: TOKEN,
    userAgent: AGENT,
    sleep: clock.sleep,
    log: clock.log,
    ...options,
  });
}

/** A releaser over {@link clientOf}, on the same clock and, when `options` has one, the same fetch. */
export function releaserOf(
  double: HerokuContractDouble,
  clock: ReturnType<typeof fakeTime>,
  options: Partial<HerokuApiOptions> = {},
) {
  const { sleep, now, log } = clock;
  return new HerokuReleaser(clientOf(double, clock, options), {
    userAgent: AGENT,
    fetch: options.fetch,
    sleep,
    now,
    log,
  });
}
