import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill, metricValues, percentile, rawGet, report, type Service, sleep, startService } from "./harness";

const POEM = "A small poem,\nanswered from memory.\n";
let dir: string;
let service: Service | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-pipelining-"));
  await writeFile(join(dir, "a.txt"), POEM);
  service = await startService(["--poetry-dir", dir]);
});

afterAll(async () => {
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

/** A connection that writes `request` `count` times in one go; it reads (and counts) responses only if `reads`. */
function pipeliner(
  port: number,
  request: string,
  count: number,
  reads: boolean,
): { socket: Socket; bytes: () => number } {
  let bytes = 0;
  const socket = connect(port, "127.0.0.1", () => socket.write(request.repeat(count)));
  socket.on("error", () => {});
  if (reads) socket.on("data", (c: Buffer) => (bytes += c.length));
  else socket.pause();
  return { socket, bytes: () => bytes };
}

/** `/healthz` on a new connection every `everyMs` for `ms`: each probe's latency, and whether all were 200. */
async function probe(port: number, ms: number, everyMs: number): Promise<{ latencies: number[]; all200: boolean }> {
  const latencies: number[] = [];
  let all200 = true;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const r = await rawGet(port, "/healthz");
    latencies.push(r.ms);
    all200 &&= r.status === 200;
    await sleep(everyMs);
  }
  return { latencies, all200 };
}

describe("pipelining clients", () => {
  it("holds a bounded amount for clients that pipeline poems and never read", async () => {
    const { port } = service!;
    const request = "GET /poetry/a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const count = Math.ceil(4.7e6 / request.length); // the 4.7 MB a connection
    await rawGet(port, "/poetry/a.txt"); // cached, as under a real attack
    const rssBefore = service!.rssKiB();
    const attackers = Array.from({ length: 8 }, () => pipeliner(port, request, count, false));
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, service!.rssKiB())), 100);
    // 8 s: without the limit RSS passed 1.3 GB within it; with it the growth stops once loopback buffers are full.
    const probes = await probe(port, 8000, 200);
    const fresh = await rawGet(port, "/poetry/a.txt");
    const metrics = await metricValues(port, ["dummyapp_pipeline_paused_sockets", "dummyapp_pipeline_pauses_total"]);
    clearInterval(sampler);
    for (const a of attackers) a.socket.destroy();
    const figures = {
      connections: attackers.length,
      bytesSentEach: request.length * count,
      rssBeforeMiB: Math.round(rssBefore / 1024),
      peakRssMiB: Math.round(peak / 1024),
      healthzP50Ms: Math.round(percentile(probes.latencies, 50)),
      healthzMaxMs: Math.round(Math.max(...probes.latencies)),
      probes: probes.latencies.length,
      fresh: fresh.status,
      ...metrics,
    };
    report("pipelining non-readers", figures);
    expect(probes.all200).toBe(true);
    expect(fresh.status).toBe(200);
    expect(fresh.bytes.toString("latin1").endsWith(`\r\n\r\n${POEM}`)).toBe(true);
    expect(metrics.dummyapp_pipeline_paused_sockets).toBe(8);
    expect(metrics.dummyapp_pipeline_pauses_total).toBeGreaterThanOrEqual(8);
    // Runs grew 110-130 MiB on a loaded 2-core machine (the parsed read each socket waits on, and garbage); without
    // the limit 1,270 MiB.
    expect((peak - rssBefore) / 1024).toBeLessThan(400);
    // Healthy again once they are gone.
    expect((await rawGet(port, "/healthz")).status).toBe(200);
  });

  it("serves other clients while four clients pipeline /healthz", async () => {
    const { port } = service!;
    const request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const quiet = await probe(port, 1000, 25);
    const attackers = Array.from({ length: 4 }, () => pipeliner(port, request, 100_000, true));
    await sleep(100);
    // 4 s of the attack: without the limit a probe waited for all 400,000 requests (16 s on a loaded machine).
    const loud = await probe(port, 4000, 25);
    const answered = attackers.map((a) => Math.round(a.bytes() / 1024));
    for (const a of attackers) a.socket.destroy();
    const figures = {
      quiet: { p50Ms: Math.round(percentile(quiet.latencies, 50)), maxMs: Math.round(Math.max(...quiet.latencies)) },
      underAttack: {
        probes: loud.latencies.length,
        p50Ms: Math.round(percentile(loud.latencies, 50)),
        maxMs: Math.round(Math.max(...loud.latencies)),
      },
      attackerKiBReceived: answered,
    };
    report("pipelining /healthz fairness", figures);
    expect(loud.all200).toBe(true);
    // Runs: p50 20-110 ms, max 320-510 ms at load average 20+ (issue: 1.27 s median, 3.6 s max).
    expect(figures.underAttack.p50Ms).toBeLessThan(500);
    expect(figures.underAttack.maxMs).toBeLessThan(2500);
    // The attackers are served too, not starved.
    for (const kib of answered) expect(kib).toBeGreaterThan(0);
  });
});
