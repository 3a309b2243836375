import { mkdtemp, rm } from "node:fs/promises";
import { Agent, createServer, get, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildBundle } from "../service-process.mjs";
import { closedPort, kill, percentile, report, type Service, serviceDir, sleep, startService } from "./harness";

// Heroku's minimum push interval: the suite has to wait for real pushes.
const INTERVAL_MS = 10_000;
const POEM = "/poetry/small-hours.txt";

let dir: string;
let herokuBundle: string;
const services: Service[] = [];
const collectors: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-pusher-"));
  herokuBundle = join(dir, "main.js");
  const built = buildBundle(herokuBundle, { BUILD_TAGS: "heroku" });
  expect(built.status, built.stderr).toBe(0);
});

afterAll(async () => {
  for (const s of services) kill(s);
  for (const c of collectors) {
    c.closeAllConnections();
    c.close();
  }
  await rm(dir, { recursive: true, force: true });
});

/** A loopback collector that answers every push with `respond` (or never); counts the pushes it received. */
async function collector(
  respond: ((res: import("node:http").ServerResponse) => void) | undefined,
): Promise<{ url: string; pushes: () => number }> {
  let pushes = 0;
  const server = createServer((req, res) => {
    pushes++;
    req.resume();
    respond?.(res);
  });
  collectors.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/metrics`, pushes: () => pushes };
}

/** 200 poem requests, four at a time on keep-alive connections: each one's latency in ms and every status. */
async function burst(port: number): Promise<{ latencies: number[]; statuses: number[] }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  const latencies: number[] = [];
  const statuses: number[] = [];
  let left = 200;
  const worker = async () => {
    while (left-- > 0) {
      const t0 = performance.now();
      statuses.push(
        await new Promise<number>((resolve, reject) => {
          get({ host: "127.0.0.1", port, path: POEM, agent }, (res) =>
            res.resume().on("end", () => resolve(res.statusCode!)),
          ).on("error", reject);
        }),
      );
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  agent.destroy();
  return { latencies, statuses };
}

describe("Heroku metrics pusher under collector faults", () => {
  it("keeps serving, never leaves a rejection unhandled and still shuts down promptly", async () => {
    const refusing = { url: `http://127.0.0.1:${await closedPort()}/metrics`, pushes: () => Number.NaN };
    const hanging = await collector(undefined);
    const failing = await collector((res) => res.writeHead(500).end("collector broken"));
    const cases = [
      { name: "no pusher", url: undefined },
      { name: "refusing", url: refusing.url },
      { name: "hanging", url: hanging.url },
      { name: "answering 500", url: failing.url },
    ] as const;
    for (const c of cases) {
      const env = {
        POETRY_DIR: join(serviceDir, "sample-poetry"),
        METRICS_INTERVAL_OVERRIDE: String(INTERVAL_MS),
        ...(c.url ? { HEROKU_METRICS_URL: c.url } : {}),
      };
      services.push(await startService([], { bundle: herokuBundle, env }));
    }

    // Alternate short bursts over every service until each pusher has failed at least twice (bounded to 60 s).
    const latencies = cases.map(() => [] as number[]);
    const statuses = cases.map(() => [] as number[]);
    const failedPushes = (s: Service) =>
      s.logs.filter((l) => /^heroku metrics push (failed|rejected)$/.test(l.msg)).length;
    const t0 = performance.now();
    while (performance.now() - t0 < 60_000 && !services.slice(1).every((s) => failedPushes(s) >= 2)) {
      for (const [i, s] of services.entries()) {
        const b = await burst(s.port);
        latencies[i]!.push(...b.latencies);
        statuses[i]!.push(...b.statuses);
      }
    }

    // Shut the hanging one down while a push to it is in flight: it must not wait for the collector. The next push
    // comes within one interval; the wait allows two, as timers run late on a busy machine.
    const inFlightFrom = hanging.pushes();
    const waitFrom = performance.now();
    while (hanging.pushes() === inFlightFrom && performance.now() - waitFrom < 2 * INTERVAL_MS) await sleep(20);
    expect(hanging.pushes()).toBe(inFlightFrom + 1);
    const stops = await Promise.all(services.map((s) => s.stop()));

    const p50 = latencies.map((l) => percentile(l, 50));
    const p99 = latencies.map((l) => percentile(l, 99));
    report(
      "heroku pusher under faults",
      Object.fromEntries(
        cases.map((c, i) => [
          c.name,
          {
            requests: statuses[i]!.length,
            p50Ms: Math.round(p50[i]! * 100) / 100,
            p99Ms: Math.round(p99[i]! * 100) / 100,
            p50Ratio: Math.round((p50[i]! / p50[0]!) * 100) / 100,
            p99Ratio: Math.round((p99[i]! / p99[0]!) * 100) / 100,
            failedPushes: failedPushes(services[i]!),
            exit: stops[i],
          },
        ]),
      ),
    );
    for (const [i, s] of services.entries()) {
      expect(
        statuses[i]!.every((status) => status === 200),
        cases[i]!.name,
      ).toBe(true);
      expect(stops[i]!.code, cases[i]!.name).toBe(0);
      expect(stops[i]!.ms, cases[i]!.name).toBeLessThan(2000);
      expect(s.stderr(), cases[i]!.name).toBe("");
      expect(
        s.logs.filter((l) => l.level >= 50),
        cases[i]!.name,
      ).toEqual([]);
      if (i > 0) expect(failedPushes(s), cases[i]!.name).toBeGreaterThanOrEqual(2);
    }
    expect(failing.pushes()).toBeGreaterThanOrEqual(2);
    expect(services[3]!.logs.find((l) => l.msg === "heroku metrics push rejected")).toMatchObject({ status: 500 });
  });
});
