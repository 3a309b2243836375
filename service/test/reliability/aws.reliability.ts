import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  closedPort,
  kill,
  percentile,
  type RawResult,
  rawExchange,
  rawGet,
  report,
  type Service,
  serviceDir,
  sleep,
  startService,
} from "./harness";

const PAGE_REQUEST = "GET /aws HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

const POETRY = join(serviceDir, "sample-poetry");
let dir: string;
const services: Service[] = [];
const stubs: Server[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-aws-"));
});

afterAll(async () => {
  // SIGKILL also ends a thread an unfixed service left blocked opening the FIFO.
  for (const s of services) kill(s);
  for (const stub of stubs) {
    stub.closeAllConnections();
    stub.close();
  }
  await rm(dir, { recursive: true, force: true });
});

const body = (r: RawResult) => r.bytes.toString("utf8");

describe("/aws against hostile metadata sources", () => {
  it("2,000 concurrent pages make a bounded number of metadata calls, a few at a time", async () => {
    const counts = { requests: 0, inFlight: 0, maxInFlight: 0 };
    const stub = createServer((req, res) => {
      counts.requests++;
      counts.maxInFlight = Math.max(counts.maxInFlight, ++counts.inFlight);
      // A little latency, as a real metadata service has, so that concurrent pages overlap.
      setTimeout(() => {
        counts.inFlight--;
        res.end(req.method === "PUT" ? "token" : req.url === "/v4/task" ? "{}" : "value");
      }, 50);
    });
    stubs.push(stub);
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    const imds = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    const service = await startService(["--aws-metadata-url", imds], {
      env: { ECS_CONTAINER_METADATA_URI_V4: `${imds}/v4` },
    });
    services.push(service);

    const t0 = performance.now();
    const pages = await Promise.all(
      Array.from({ length: 2000 }, () => rawExchange(service.port, PAGE_REQUEST, 60_000)),
    );
    const elapsedMs = performance.now() - t0;
    // One round is 5 calls (token, three EC2 values, ECS task); a new round may start every 5 s of cache lifetime.
    const roundsAllowed = 1 + Math.ceil(elapsedMs / 5000);
    report("aws: 2,000 concurrent pages", {
      pages: pages.length,
      answered: pages.filter((r) => r.status === 200).length,
      elapsedMs: Math.round(elapsedMs),
      p50Ms: Math.round(
        percentile(
          pages.map((r) => r.ms),
          50,
        ),
      ),
      p99Ms: Math.round(
        percentile(
          pages.map((r) => r.ms),
          99,
        ),
      ),
      metadataCalls: counts.requests,
      callsAllowed: 5 * roundsAllowed,
      maxCallsInFlight: counts.maxInFlight,
    });
    expect(pages.filter((r) => r.status !== 200)).toEqual([]);
    expect(counts.requests).toBeLessThanOrEqual(5 * roundsAllowed);
    expect(counts.maxInFlight).toBeLessThanOrEqual(4);
    expect(await service.stop()).toMatchObject({ code: 0 });
  });

  it("endless metadata bodies and a large metadata file: memory stays flat and each section says what it cut off", async () => {
    let sent = 0;
    const chunk = Buffer.alloc(64 * 1024, "x");
    // Answers the token, then every metadata GET and the ECS task lookup with a body that never ends.
    const stub = createServer((req, res) => {
      if (req.method === "PUT") return void res.end("token");
      const pump = () => {
        while (!res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) break;
        }
      };
      res.on("drain", pump);
      pump();
    });
    stubs.push(stub);
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    const imds = `http://127.0.0.1:${(stub.address() as AddressInfo).port}`;
    const file = join(dir, "metadata.json");
    await writeFile(file, Buffer.alloc(16 * 1024 ** 2, "f"));
    const env = { ECS_CONTAINER_METADATA_URI_V4: `${imds}/v4`, ECS_CONTAINER_METADATA_FILE: file };
    const service = await startService(["--aws-metadata-url", imds], { env });
    services.push(service);

    const rssBeforeKiB = service.rssKiB();
    let peakKiB = rssBeforeKiB;
    const sampler = setInterval(() => (peakKiB = Math.max(peakKiB, service.rssKiB())), 20);
    const pages = await Promise.all(Array.from({ length: 20 }, () => rawExchange(service.port, PAGE_REQUEST, 30_000)));
    clearInterval(sampler);
    report("aws: endless bodies and a 16 MiB metadata file", {
      pages: pages.length,
      answeredMs: Math.round(Math.max(...pages.map((r) => r.ms))),
      rssBeforeMiB: Math.round(rssBeforeKiB / 1024),
      rssPeakMiB: Math.round(peakKiB / 1024),
      stubSentMiB: Math.round(sent / 1024 ** 2),
    });
    for (const r of pages) {
      expect(r.status).toBe(200);
      expect(body(r).match(/<p class="error">error: larger than 64 KiB: not shown<\/p>/g)).toHaveLength(5);
    }
    // Unbounded, one page held 932 MB; the cap keeps a page's reads to a few hundred KiB.
    expect(peakKiB - rssBeforeKiB).toBeLessThan(100 * 1024);
    expect(await service.stop()).toMatchObject({ code: 0 });
  });

  it("a FIFO as the ECS metadata file: /aws answers in place, and poems and /metrics keep answering meanwhile", async () => {
    const fifo = join(dir, "metadata.fifo");
    execFileSync("mkfifo", [fifo]);
    const env = { ECS_CONTAINER_METADATA_FILE: fifo };
    const service = await startService(
      ["--poetry-dir", POETRY, "--aws-metadata-url", `http://127.0.0.1:${await closedPort()}`],
      { env },
    );
    services.push(service);

    // More pages at once than libuv has threads (4): each unfixed page held one thread, opening the FIFO, for good.
    const pages = Promise.all(Array.from({ length: 16 }, () => rawGet(service.port, "/aws")));
    await sleep(300);
    const others = await Promise.all([
      ...Array.from({ length: 50 }, (_, i) =>
        rawGet(service.port, i % 2 ? "/poetry/small-hours.txt" : "/poetry/build-day.txt"),
      ),
      ...Array.from({ length: 10 }, () => rawGet(service.port, "/metrics")),
    ]);
    const awsPages = await pages;
    report("aws: FIFO as the ECS metadata file", {
      awsPages: awsPages.length,
      awsAnswered: awsPages.filter((r) => r.status === 200).length,
      awsP50Ms: Math.round(
        percentile(
          awsPages.map((r) => r.ms),
          50,
        ),
      ),
      awsMaxMs: Math.round(Math.max(...awsPages.map((r) => r.ms))),
      othersAnswered: `${others.filter((r) => r.status === 200).length}/${others.length}`,
      othersMaxMs: Math.round(Math.max(...others.map((r) => r.ms))),
    });
    // rawGet gives up after 5 s: the page's own deadline is 3 s.
    for (const r of [...awsPages, ...others])
      expect({ status: r.status, ended: r.ended }).toEqual({ status: 200, ended: "closed" });
    for (const r of awsPages)
      expect(body(r)).toContain(
        'ECS container metadata file</h2>\n<p class="error">error: not a regular file: not read</p>',
      );
    expect(await service.stop()).toMatchObject({ code: 0 });
  });
});
