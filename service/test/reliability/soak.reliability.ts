import { execFile } from "node:child_process";
import { Agent, get } from "node:http";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { kill, report, serviceDir, sleep, startService, type Service } from "./harness";

const WARMUP_S = 15;
const SOAK_S = 60;
const POEM = "/poetry/small-hours.txt";
const autocannonCli = join(serviceDir, "..", "node_modules", "autocannon", "autocannon.js");

let service: Service | undefined;
afterAll(() => kill(service));

/** autocannon in its own process (it needs a core of its own): 50 connections on the poem for `seconds`. */
function autocannon(url: string, seconds: number): Promise<{ requests: number; non2xx: number; errors: number }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [autocannonCli, "-c", "50", "-d", String(seconds), "-n", "-j", url], { maxBuffer: 1 << 24 }, (err, stdout) => {
      if (err) return reject(err);
      const r = JSON.parse(stdout) as { requests: { total: number }; non2xx: number; errors: number };
      resolve({ requests: r.requests.total, non2xx: r.non2xx, errors: r.errors });
    });
  });
}

/** GET `count` distinct unknown paths (half outside any route, half missing poems), eight at a time; status counts. */
async function unknownPaths(port: number, first: number, count: number): Promise<Record<number, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const statuses: Record<number, number> = {};
  let next = first;
  const worker = async () => {
    while (next < first + count) {
      const i = next++;
      const path = i % 2 ? `/nope/${i}` : `/poetry/missing-${i}.txt`;
      const status = await new Promise<number>((resolve, reject) => {
        get({ host: "127.0.0.1", port, path, agent }, (res) => res.resume().on("end", () => resolve(res.statusCode!))).on("error", reject);
      });
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
  return statuses;
}

/** The request metrics' series (sample lines of http_*), and every sample line. */
async function series(url: string): Promise<{ http: string[]; total: number }> {
  const lines = (await (await fetch(`${url}/metrics`)).text()).split("\n").filter((l) => l && !l.startsWith("#"));
  return { http: lines.filter((l) => l.startsWith("http_")).map((l) => l.slice(0, l.lastIndexOf(" "))), total: lines.length };
}

describe("soak", () => {
  it(`holds its memory over ${SOAK_S} s of load and keeps the metrics' series bounded under thousands of unknown paths`, async () => {
    service = await startService(["--poetry-dir", join(serviceDir, "sample-poetry")]);
    const { url, port } = service;

    // Warm-up: the same mix of traffic, so every series the soak can create exists, and the heap finds its size.
    const [warm, warmUnknown] = await Promise.all([autocannon(`${url}${POEM}`, WARMUP_S), unknownPaths(port, 0, 500)]);
    await series(url);
    const before = await series(url);
    await sleep(1000);
    const rssWarmKiB = service.rssKiB();

    const samples: number[] = [];
    const sampler = setInterval(() => samples.push(service!.rssKiB()), 1000);
    const [soak, soakUnknown] = await Promise.all([autocannon(`${url}${POEM}`, SOAK_S), unknownPaths(port, 1_000_000, 5000)]);
    clearInterval(sampler);
    await sleep(1000);
    const rssAfterKiB = service.rssKiB();
    const after = await series(url);

    const mib = (kib: number) => Math.round(kib / 102.4) / 10;
    report("soak", {
      warmupRequests: warm.requests,
      soakRequests: soak.requests,
      unknownPaths: { warmup: warmUnknown, soak: soakUnknown },
      rssMiB: { afterWarmup: mib(rssWarmKiB), min: mib(Math.min(...samples)), max: mib(Math.max(...samples)), after: mib(rssAfterKiB) },
      rssRatio: Math.round((rssAfterKiB / rssWarmKiB) * 100) / 100,
      httpSeries: { before: before.http.length, after: after.http.length },
      allSeries: { before: before.total, after: after.total },
    });
    expect([warm.non2xx, warm.errors, soak.non2xx, soak.errors]).toEqual([0, 0, 0, 0]);
    expect(soakUnknown).toEqual({ 404: 5000 });
    expect(rssAfterKiB).toBeLessThanOrEqual(rssWarmKiB * 1.2);
    expect(after.http).toEqual(before.http);
    expect(service.logs.filter((l) => l.level >= 40)).toEqual([]);
  });
});
