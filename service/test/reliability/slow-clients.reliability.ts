import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill, percentile, rawExchange, rawGet, report, type Service, sleep, startService } from "./harness";

const HEADERS_TIMEOUT_S = 2;
// Larger than the in-memory limit (1 MiB) and than loopback socket buffers: streamed, and still going when the client leaves.
const BIG_BYTES = 16 << 20;
let dir: string;
let service: Service | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-slow-"));
  await mkdir(join(dir, "poetry"));
  await writeFile(join(dir, "poetry", "a.txt"), "A poem.\n");
  await writeFile(join(dir, "poetry", "big.txt"), Buffer.alloc(BIG_BYTES, "la "));
  service = await startService(["--poetry-dir", join(dir, "poetry"), "--headers-timeout", String(HEADERS_TIMEOUT_S)]);
});

afterAll(async () => {
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** One keep-alive GET on an open socket; resolves when the response ending in `body` has arrived. */
function keepAliveGet(socket: Socket, path: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let received = "";
    const onData = (c: Buffer) => {
      received += c.toString("latin1");
      if (received.startsWith("HTTP/1.1 200") && received.endsWith(`\r\n\r\n${body}`)) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
    socket.once("close", () => reject(new Error(`closed after ${JSON.stringify(received.slice(0, 40))}`)));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  });
}

describe("slow and misbehaving clients", () => {
  it("cuts off a client that sends its headers a byte at a time once the headers timeout passes", async () => {
    const request = Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${"a".repeat(300)}\r\n\r\n`);
    const socket = await open(service!.port);
    const t0 = performance.now();
    let sent = 0;
    let received = "";
    socket.on("data", (c: Buffer) => (received += c.toString("latin1")));
    socket.on("error", () => {});
    // A byte every 50 ms: the whole request would take over 17 s; the loop stops at the close or after 15 s.
    const closedAt = await new Promise<number>((resolve) => {
      const timer = setInterval(() => {
        if (sent < request.length && performance.now() - t0 < 15_000) socket.write(request.subarray(sent, ++sent));
        else resolve(Number.NaN);
      }, 50);
      socket.once("close", () => {
        clearInterval(timer);
        resolve(performance.now() - t0);
      });
    });
    report("byte-at-a-time headers", {
      cutAfterMs: Math.round(closedAt),
      bytesSent: sent,
      of: request.length,
      answer: received.split("\r\n")[0],
    });
    expect(closedAt).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_S * 1000 - 100);
    // Node enforces the timeout on a check every second (connectionsCheckingInterval), and a busy machine may hold
    // either process back a few seconds more; without the check the loop runs its 15 s and closedAt is NaN.
    expect(closedAt).toBeLessThan(HEADERS_TIMEOUT_S * 1000 + 1000 + 3000);
    expect(sent).toBeLessThan(request.length);
    expect(received).not.toContain("200 OK");
  });

  it("keeps serving new clients while hundreds of keep-alive sockets sit idle", async () => {
    const port = service!.port;
    // Idle after one request each (kept by the 95 s keep-alive timeout), and idle before sending anything.
    const keptAlive = await Promise.all(Array.from({ length: 400 }, () => open(port)));
    await Promise.all(keptAlive.map((s) => keepAliveGet(s, "/healthz", "ok\n")));
    const silent = await Promise.all(Array.from({ length: 100 }, () => open(port)));
    for (const s of [...keptAlive, ...silent]) s.on("error", () => {});

    const latencies: number[] = [];
    const answers = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const t0 = performance.now();
        const r = await rawGet(port, "/poetry/a.txt");
        latencies.push(performance.now() - t0);
        return r;
      }),
    );
    const stillOpen = keptAlive.filter((s) => !s.destroyed && s.readyState === "open").length;
    report("idle keep-alive sockets", {
      keptAlive: keptAlive.length,
      silent: silent.length,
      stillOpen,
      newClients: answers.length,
      p50Ms: Math.round(percentile(latencies, 50)),
      maxMs: Math.round(Math.max(...latencies)),
    });
    expect(answers.map((r) => r.status)).toEqual(answers.map(() => 200));
    expect(answers.every((r) => r.bytes.toString("latin1").endsWith("\r\n\r\nA poem.\n"))).toBe(true);
    expect(stillOpen).toBe(keptAlive.length);
    // Still usable afterwards.
    await keepAliveGet(keptAlive[0]!, "/poetry/a.txt", "A poem.\n");
    for (const s of [...keptAlive, ...silent]) s.destroy();
  });

  it("answers oversized headers with 431 and goes on serving", async () => {
    const big = await rawExchange(
      service!.port,
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
    );
    report("oversized headers", { status: big.status });
    expect(big.status).toBe(431);
    expect((await rawGet(service!.port, "/healthz")).status).toBe(200);
    // One short line with the code, not the 20 KB header; it comes with the next flush (within 100 ms).
    const clientError = () => service!.logs.find((l) => l.code === "HPE_HEADER_OVERFLOW");
    for (let i = 0; i < 50 && !clientError(); i++) await sleep(20);
    const line = clientError();
    expect(line).toMatchObject({ msg: "client error", level: 40, status: 431 });
    expect(JSON.stringify(line).length).toBeLessThan(200);
  });

  it("does not log a client that disconnects mid-response as a server error", async () => {
    const port = service!.port;
    const before = service!.logs.length;
    let partial = 0;
    for (let i = 0; i < 20; i++) {
      const socket = await open(port);
      const got = await new Promise<number>((resolve) => {
        let bytes = 0;
        socket.on("data", (c: Buffer) => {
          bytes += c.length;
          // Leave once the response has begun: mid-body, with most of the 16 MiB still to come.
          if (bytes > 64 * 1024) socket.destroy();
        });
        socket.on("close", () => resolve(bytes));
        socket.on("error", () => {});
        socket.write("GET /poetry/big.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      });
      if (got < BIG_BYTES) partial++;
    }
    const served = (await rawGet(port, "/healthz")).status;
    // The request lines come through the logger's batches (flushed every 100 ms) and a pipe: wait for them, bounded.
    const bigRequestLines = () =>
      service!.logs.slice(before).filter((l) => l.msg === "request" && l.path === "/poetry/big.txt");
    for (let i = 0; bigRequestLines().length < 20 && i < 250; i++) await sleep(20);
    await sleep(200); // two more flushes, for a warning logged after the lines
    const lines = service!.logs.slice(before);
    const bigRequests = bigRequestLines();
    report("client disconnects mid-response", {
      disconnects: partial,
      requestLines: bigRequests.length,
      warnOrWorse: lines.filter((l) => l.level >= 40).length,
    });
    expect(partial).toBe(20);
    expect(bigRequests.length).toBe(20);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
    expect(served).toBe(200);
  });
});
