import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closedPort, kill, percentile, rawGet, report, serviceDir, sleep, startService, type RawResult, type Service } from "./harness";

const POETRY = join(serviceDir, "sample-poetry");
let dir: string;
const services: Service[] = [];
const fifos: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-aws-"));
});

afterAll(async () => {
  for (const s of services) kill(s);
  // Release any thread still blocked opening a FIFO for reading, should the fix be missing.
  for (const fifo of fifos) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader is waiting.
    }
  }
  await rm(dir, { recursive: true, force: true });
});

const body = (r: RawResult) => r.bytes.toString("utf8");

describe("/aws against hostile metadata sources", () => {
  it("a FIFO as the ECS metadata file: /aws answers in place, and poems and /metrics keep answering meanwhile", async () => {
    const fifo = join(dir, "metadata.fifo");
    execFileSync("mkfifo", [fifo]);
    fifos.push(fifo);
    const env = { ECS_CONTAINER_METADATA_FILE: fifo };
    const service = await startService(["--poetry-dir", POETRY, "--aws-metadata-url", `http://127.0.0.1:${await closedPort()}`], { env });
    services.push(service);

    // More pages at once than libuv has threads (4): each unfixed page held one thread, opening the FIFO, for good.
    const pages = Promise.all(Array.from({ length: 16 }, () => rawGet(service.port, "/aws")));
    await sleep(300);
    const others = await Promise.all([
      ...Array.from({ length: 50 }, (_, i) => rawGet(service.port, i % 2 ? "/poetry/small-hours.txt" : "/poetry/build-day.txt")),
      ...Array.from({ length: 10 }, () => rawGet(service.port, "/metrics")),
    ]);
    const awsPages = await pages;
    report("aws: FIFO as the ECS metadata file", {
      awsPages: awsPages.length,
      awsAnswered: awsPages.filter((r) => r.status === 200).length,
      awsP50Ms: Math.round(percentile(awsPages.map((r) => r.ms), 50)),
      awsMaxMs: Math.round(Math.max(...awsPages.map((r) => r.ms))),
      othersAnswered: `${others.filter((r) => r.status === 200).length}/${others.length}`,
      othersMaxMs: Math.round(Math.max(...others.map((r) => r.ms))),
    });
    // rawGet gives up after 5 s: the page's own deadline is 3 s.
    for (const r of [...awsPages, ...others]) expect({ status: r.status, ended: r.ended }).toEqual({ status: 200, ended: "closed" });
    for (const r of awsPages) expect(body(r)).toContain('ECS container metadata file</h2>\n<p class="error">error: not a regular file: not read</p>');
    expect(await service.stop()).toMatchObject({ code: 0 });
  });
});
