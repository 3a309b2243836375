import { mkdir, mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill, percentile, rawGet, report, type Service, sleep, startService } from "./harness";

// Issue 17 items 2 and 3, as the attacks were made: names of ~100 characters (a 5 MB page), 100 non-reading clients.
const NAMES = 50_000;
const READERS = 100;
const TRUNCATED_BYTES = 20_000_000;

let dir: string;
let service: Service | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-readers-"));
  await mkdir(join(dir, "many"));
  const pad = "x".repeat(40);
  for (let i = 0; i < NAMES; i += 1000) {
    await Promise.all(
      Array.from({ length: 1000 }, (_, j) => writeFile(join(dir, "many", `${pad}-${i + j}.txt`), "x\n")),
    );
  }
  service = await startService(["--poetry-dir", dir]);
}, 120_000);

afterAll(async () => {
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

/** Open a connection, send `request` and never read: what a client that stops reading holds in the service. */
function nonReader(port: number, request: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.pause();
      socket.write(request, () => resolve(socket));
    });
    socket.on("error", reject);
  });
}

/** `/healthz` latencies in ms and failures, one probe every 50 ms for `ms`, while RSS is sampled at its worst. */
async function probe(port: number, ms: number) {
  const healthzMs: number[] = [];
  let failed = 0;
  let peak = 0;
  // Sampled on a timer, not between probes: a probe can wait seconds for a service that is busy copying.
  const sampler = setInterval(() => (peak = Math.max(peak, service!.rssKiB())), 50);
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const t0 = performance.now();
    if ((await rawGet(port, "/healthz").catch(() => undefined))?.status !== 200) failed++;
    healthzMs.push(Math.round(performance.now() - t0));
    await sleep(50);
  }
  clearInterval(sampler);
  return { healthzMs, failed, peakRssMiB: Math.round(peak / 1024) };
}

describe("poetry under clients that do not read", () => {
  it(`holds a ${NAMES}-name listing once for ${READERS} clients that never read it`, async () => {
    const { port } = service!;
    // Warm: the listing is read, rendered and cached once.
    const page = await fetch(`http://127.0.0.1:${port}/poetry/many/`);
    const pageBytes = (await page.arrayBuffer()).byteLength;
    await sleep(500);
    const rssBefore = Math.round(service!.rssKiB() / 1024);
    const request = "GET /poetry/many/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const sockets = await Promise.all(Array.from({ length: READERS }, () => nonReader(port, request)));
    try {
      const { healthzMs, failed, peakRssMiB } = await probe(port, 3000);
      const figures = {
        pageMB: +(pageBytes / 1e6).toFixed(2),
        readers: READERS,
        rssBeforeMiB: rssBefore,
        peakRssMiB,
        healthzMs: { p50: percentile(healthzMs, 50), max: Math.max(...healthzMs) },
        healthzFailed: failed,
      };
      report("large listing, non-reading clients", figures);
      // Before (a string encoded per response): 116 -> 1,092 MB for 100 clients, /healthz 2.3 s. One shared Buffer
      // costs a socket's bookkeeping per client; 250 MiB is 4x what runs measured.
      expect(failed).toBe(0);
      expect(peakRssMiB - rssBefore).toBeLessThan(250);
      expect(Math.max(...healthzMs)).toBeLessThan(3000);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });

  it("closes the connection of a poem truncated while it streams, and logs the bytes sent", async () => {
    const { port } = service!;
    const poem = join(dir, "shrinking.txt");
    await writeFile(poem, Buffer.alloc(TRUNCATED_BYTES, "a poem about to shrink\n"));
    const id = "truncated-reliability-0001";
    const socket = await nonReader(
      port,
      `GET /poetry/shrinking.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: ${id}\r\n\r\n` +
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    );
    const received: Buffer[] = [];
    const closed = new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => received.push(chunk));
      socket.on("close", () => resolve());
    });
    // Read until the headers have come (the poem is open and streaming), then stop reading and truncate it.
    socket.resume();
    for (let i = 0; i < 500 && !Buffer.concat(received).includes("\r\n\r\n"); i++) await sleep(10);
    socket.pause();
    await sleep(300);
    // Past what loopback buffers hold already (about 4 MiB), so the service reads on to the new end first.
    await truncate(poem, 12_000_000);
    const t0 = performance.now();
    socket.resume();
    // Bounded: before the fix the socket stayed open until the keep-alive timeout (96 s).
    await Promise.race([closed, sleep(10_000)]);
    const closedAfterMs = Math.round(performance.now() - t0);
    const all = Buffer.concat(received);
    const bodyStart = all.indexOf("\r\n\r\n") + 4;
    for (let i = 0; i < 50 && !service!.logs.some((l) => l.requestId === id && l.msg === "request"); i++)
      await sleep(20);
    const line = service!.logs.find((l) => l.requestId === id && l.msg === "request");
    const figures = {
      promised: Number(/content-length: (\d+)/i.exec(all.subarray(0, bodyStart).toString())?.[1]),
      received: all.length - bodyStart,
      logged: line?.bytes,
      closedAfterMs,
      pipelinedResponseInBody: all.subarray(bodyStart).includes("HTTP/1.1"),
    };
    report("poem truncated mid-stream", figures);
    expect(socket.destroyed).toBe(true);
    expect(closedAfterMs).toBeLessThan(10_000);
    expect(figures.pipelinedResponseInBody).toBe(false);
    expect(figures.promised).toBe(TRUNCATED_BYTES);
    expect(figures.received).toBeLessThan(TRUNCATED_BYTES);
    expect(line?.bytes).toBeGreaterThanOrEqual(figures.received);
    expect(line?.bytes).toBeLessThan(TRUNCATED_BYTES);
  });
});
