import { get } from "node:http";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { autocannon, kill, percentile, report, type Service, serviceDir, sleep, startService } from "./harness";

const LOAD_S = 10;
const POEM = "/poetry/small-hours.txt";
// Generous for a shared 2-core machine under load; a service whose event loop waits on a full pipe never answers.
const PROBE_TIMEOUT_MS = 3000;
/** What stdout may keep (1 MiB in the service, about 128 KiB in the pipe), in request lines of 150 bytes or more. */
const MAX_KEPT_LINES = 10_000;

let service: Service | undefined;
afterAll(() => kill(service));

/** GET /healthz on a new connection: milliseconds to the full answer, or why there was none. */
function probe(port: number): Promise<number | "timeout" | `status ${number}` | "error"> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = get({ host: "127.0.0.1", port, path: "/healthz", agent: false }, (res) => {
      res
        .resume()
        .on("end", () =>
          resolve(res.statusCode === 200 ? Math.round(performance.now() - t0) : `status ${res.statusCode!}`),
        );
    });
    req.setTimeout(PROBE_TIMEOUT_MS, () => {
      req.destroy();
      resolve("timeout");
    });
    req.on("error", () => resolve("error"));
  });
}

describe("log pressure", () => {
  it("with stdout's reader stopped: /healthz answers under load, log lines are dropped and counted, SIGTERM exits promptly", async () => {
    service = await startService(["--poetry-dir", join(serviceDir, "sample-poetry"), "--drain-timeout", "10"], {
      stalledStdout: true,
    });
    const { url, port } = service;
    const rssBefore = service.rssKiB();

    const probes: Array<Awaited<ReturnType<typeof probe>>> = [];
    let loading = true;
    const prober = (async () => {
      while (loading) {
        probes.push(await probe(port));
        await sleep(200);
      }
    })();
    const load = await autocannon(`${url}${POEM}`, LOAD_S, 20);
    loading = false;
    await prober;

    const metrics = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) })).text();
    const dropped = Number(/^dummyapp_log_lines_dropped_total\{reason="buffer_full"\} (\d+)$/m.exec(metrics)?.[1]);
    const rssAfter = service.rssKiB();
    // Bounded, so a service that ignores SIGTERM fails here instead of hanging the suite.
    const stopped = await Promise.race([
      service.stop(),
      sleep(20_000).then(() => ({ code: null, ms: Number.POSITIVE_INFINITY })),
    ]);

    const answered = probes.filter((p): p is number => typeof p === "number");
    report("log pressure (stdout not read)", {
      requests: load.requests,
      non2xx: load.non2xx,
      errors: load.errors,
      linesDropped: dropped,
      healthzProbes: probes.length,
      healthzUnanswered: probes.length - answered.length,
      healthzP50Ms: percentile(answered, 50),
      healthzMaxMs: Math.max(...answered),
      rssMiB: `${(rssBefore / 1024).toFixed(1)} -> ${(rssAfter / 1024).toFixed(1)}`,
      sigtermExit: stopped.code,
      sigtermMs: stopped.ms,
    });
    expect(probes.length).toBeGreaterThan(5);
    expect(probes.filter((p) => typeof p !== "number")).toEqual([]);
    expect(load.non2xx + load.errors).toBe(0);
    expect(dropped).toBeGreaterThan(0);
    expect(dropped).toBeGreaterThanOrEqual(load.requests - MAX_KEPT_LINES);
    expect(rssAfter - rssBefore).toBeLessThan(100 * 1024);
    expect(stopped.code).toBe(0);
    // Drain (idle connections close at once) plus up to 2 s waiting for stdout to take the last lines.
    expect(stopped.ms).toBeLessThan(10_000);
  });
});
