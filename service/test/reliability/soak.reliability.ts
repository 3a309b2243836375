import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  autocannon,
  getAll,
  INSPECTOR_STDERR,
  type Inspector,
  inspect,
  kill,
  report,
  type Service,
  serviceDir,
  sleep,
  startService,
} from "./harness";

const WARMUP_S = 15;
const SOAK_S = 60;
const POEM = "/poetry/small-hours.txt";
const SAMPLE_EVERY_S = 5;
const MiB = 1 << 20;
// Growth of what survives a full collection over the soak: healthy soaks here 0.04–0.14 MiB/min; 1 KiB kept every
// 100 requests is several MiB/min at this load.
const GROWTH_LIMIT_MIB_PER_MIN = 0.5;

let service: Service | undefined;
afterAll(() => kill(service));

/** GET `count` distinct unknown paths (half outside any route, half missing poems), eight at a time; status counts. */
function unknownPaths(port: number, first: number, count: number): Promise<Record<number, number>> {
  const paths = Array.from({ length: count }, (_, n) => first + n).map((i) =>
    i % 2 ? `/nope/${i}` : `/poetry/missing-${i}.txt`,
  );
  return getAll(port, paths);
}

/**
 * What the service holds after a full garbage collection, in bytes: heap in use plus memory outside the heap, which
 * counts every Buffer (`external` includes `arrayBuffers`). Collection and reading are one evaluation, so no request
 * runs between them: a healthy soak read 9.67–9.78 MiB so, and 9.9–18.8 MiB as HeapProfiler.collectGarbage then
 * Runtime.evaluate.
 */
async function retainedBytes(inspector: Inspector): Promise<number> {
  const { result } = await inspector.call("Runtime.evaluate", {
    expression: "gc(), process.memoryUsage()",
    returnByValue: true,
  });
  const { heapUsed, external } = (result as { value: NodeJS.MemoryUsage }).value;
  return heapUsed + external;
}

/**
 * Theil–Sen slope of y over x: the median of the slopes between every two points, so that one sample caught holding
 * something transient weighs little (a healthy soak read 12.32 MiB once among 11.83–11.97: 0.14 MiB/min so, 0.26 by
 * least squares).
 */
function medianSlope(points: Array<{ x: number; y: number }>): number {
  const slopes = points
    .flatMap((p, i) => points.slice(i + 1).map((q) => (q.y - p.y) / (q.x - p.x)))
    .sort((a, b) => a - b);
  const mid = slopes.length >> 1;
  return slopes.length % 2 ? slopes[mid]! : (slopes[mid - 1]! + slopes[mid]!) / 2;
}

/**
 * The request metrics' series (sample lines of http_requests_total and http_request_duration_seconds), the client
 * errors' series, and every sample line.
 */
async function series(url: string): Promise<{ http: string[]; clientErrors: string[]; total: number }> {
  const lines = (await (await fetch(`${url}/metrics`)).text()).split("\n").filter((l) => l && !l.startsWith("#"));
  const names = (prefix: string) =>
    lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(0, l.lastIndexOf(" ")));
  return { http: names("http_request"), clientErrors: names("http_client_errors_total"), total: lines.length };
}

describe("soak", () => {
  it(`holds its memory over ${SOAK_S} s of load and keeps the metrics' series bounded under thousands of unknown paths`, async () => {
    service = await startService(["--poetry-dir", join(serviceDir, "sample-poetry")], {
      nodeArgs: ["--inspect=127.0.0.1:0", "--expose-gc"],
    });
    const { url, port } = service;
    const inspector = await inspect(service);

    // Warm-up: the same mix of traffic, so every series the soak can create exists, and the heap finds its size.
    const [warm, warmUnknown] = await Promise.all([autocannon(`${url}${POEM}`, WARMUP_S), unknownPaths(port, 0, 500)]);
    await series(url);
    const before = await series(url);

    // Under the soak's load, every SAMPLE_EVERY_S from the first to the last: what survives a full collection.
    const rssKiB: number[] = [];
    const rssSampler = setInterval(() => rssKiB.push(service!.rssKiB()), 1000);
    const t0 = performance.now();
    const load = Promise.all([autocannon(`${url}${POEM}`, SOAK_S), unknownPaths(port, 1_000_000, 5000)]);
    const retained: Array<{ x: number; y: number }> = [];
    for (let at = SAMPLE_EVERY_S; at < SOAK_S; at += SAMPLE_EVERY_S) {
      await sleep(t0 + at * 1000 - performance.now());
      const minutes = (performance.now() - t0) / 60_000;
      retained.push({ x: minutes, y: (await retainedBytes(inspector)) / MiB });
    }
    const [soak, soakUnknown] = await load;
    clearInterval(rssSampler);
    const after = await series(url);
    inspector.close();

    const growth = medianSlope(retained);
    const round = (n: number) => Math.round(n * 100) / 100;
    report("soak", {
      warmupRequests: warm.requests,
      soakRequests: soak.requests,
      unknownPaths: { warmup: warmUnknown, soak: soakUnknown },
      retainedMiB: retained.map((p) => round(p.y)),
      growthMiBPerMin: round(growth),
      limitMiBPerMin: GROWTH_LIMIT_MIB_PER_MIN,
      rssMiB: { min: round(Math.min(...rssKiB) / 1024), max: round(Math.max(...rssKiB) / 1024) },
      httpSeries: { before: before.http.length, after: after.http.length },
      clientErrorSeries: after.clientErrors,
      allSeries: { before: before.total, after: after.total },
    });
    expect([warm.non2xx, warm.errors, soak.non2xx, soak.errors]).toEqual([0, 0, 0, 0]);
    expect(soakUnknown).toEqual({ 404: 5000 });
    expect(growth).toBeLessThan(GROWTH_LIMIT_MIB_PER_MIN);
    expect(after.http).toEqual(before.http);
    // A load generator's connections may end in resets: those are counted by Node's error code, whatever the paths.
    expect(after.clientErrors.every((l) => /^http_client_errors_total\{code="[A-Z_]+"\}$/.test(l))).toBe(true);
    expect(after.clientErrors.length).toBeLessThanOrEqual(5);
    expect(service.logs.filter((l) => l.level >= 40)).toEqual([]);
    expect(
      service
        .stderr()
        .split("\n")
        .filter((l) => l && !INSPECTOR_STDERR.test(l)),
    ).toEqual([]);
  });
});
