import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill, metricValues, rawGet, report, type Service, sleep, startService } from "./harness";

// The service runs with 256 descriptors, so its default cap is (256 - 64) / 2 = 96 connections.
const DESCRIPTORS = 256;
const MAX_CONNECTIONS = 96;
const IDLE_CLIENTS = 400;
// Streamed from its own descriptor (poems over 1 MiB are not held in memory), and larger than loopback buffers.
const BIG_BYTES = 16 << 20;
let dir: string;
let service: Service | undefined;
const sockets: Socket[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-connections-"));
  await mkdir(join(dir, "shelf"));
  for (let i = 0; i < 40; i++) await writeFile(join(dir, "shelf", `p${i}.txt`), `poem ${i}\n`);
  await writeFile(join(dir, "big.txt"), Buffer.alloc(BIG_BYTES, "la "));
  service = await startService(["--poetry-dir", dir], {
    prefix: ["sh", "-c", `ulimit -n ${DESCRIPTORS} && exec "$@"`, "sh"],
  });
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

/**
 * Open a connection, send `request`, and once `ready` says the bytes so far are enough stop reading and resolve with
 * them; resolve with what came if it closes first or 5 s pass.
 */
function client(port: number, request: string, ready: (received: string) => boolean): Promise<string> {
  return new Promise((resolve) => {
    let received = "";
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    sockets.push(socket);
    socket.on("error", () => {});
    socket.on("data", (c: Buffer) => {
      received += c.toString("latin1");
      if (!ready(received)) return;
      socket.pause();
      resolve(received);
    });
    socket.once("close", () => resolve(received));
    setTimeout(() => resolve(received), 5000);
  });
}

const METRICS = [
  "dummyapp_connections_open",
  "dummyapp_connections_max",
  "dummyapp_connections_shed_total",
  "dummyapp_connections_refused_total",
];

describe(`connections under a ${DESCRIPTORS}-descriptor limit`, () => {
  it(`sheds idle keep-alive connections so ${IDLE_CLIENTS} idle clients cannot lock a fresh one out`, async () => {
    const { port } = service!;
    const healthz = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    // Twenty at a time, each answered and left open (keep-alive): together far past the descriptor limit.
    let answered = 0;
    // Bounded at 30 s: without the cap, accepts fail (EMFILE) and each batch waits out its 5 s.
    const deadline = performance.now() + 30_000;
    for (let i = 0; i < IDLE_CLIENTS && performance.now() < deadline; i += 20) {
      const batch = await Promise.all(
        Array.from({ length: 20 }, () => client(port, healthz, (r) => r.endsWith("\r\n\r\nok\n"))),
      );
      answered += batch.filter((r) => r.startsWith("HTTP/1.1 200")).length;
    }
    await sleep(500); // idle connections are shed once idle 200 ms
    const poems = await Promise.all(Array.from({ length: 40 }, (_, i) => rawGet(port, `/poetry/shelf/p${i}.txt`)));
    const listing = await rawGet(port, "/poetry/shelf/");
    const big = await rawGet(port, "/poetry/big.txt");
    const metrics = await metricValues(port, METRICS);
    report("idle keep-alive flood", {
      idleClients: IDLE_CLIENTS,
      answered,
      poems: poems.filter((r) => r.status === 200).length,
      listing: listing.status,
      bigPoemBytes: big.bytes.length,
      ...metrics,
    });
    expect(metrics.dummyapp_connections_max).toBe(MAX_CONNECTIONS);
    expect(poems.map((r) => r.status)).toEqual(poems.map(() => 200));
    expect(listing.status).toBe(200);
    expect(big.status).toBe(200);
    expect(big.bytes.length).toBeGreaterThan(BIG_BYTES);
    expect(metrics.dummyapp_connections_open).toBeLessThanOrEqual(MAX_CONNECTIONS);
    // Each connection past the cap was either let in by shedding an older idle one or, when none had been idle
    // 200 ms yet (the flood comes faster than that), refused; runs: 221-347 shed, 0-96 refused.
    const shed = metrics.dummyapp_connections_shed_total!;
    expect(shed).toBeGreaterThan(0);
    expect(shed + metrics.dummyapp_connections_refused_total!).toBeGreaterThanOrEqual(IDLE_CLIENTS - MAX_CONNECTIONS);
    expect(service!.stderr()).toBe("");
    expect(service!.logs.filter((l) => l.level >= 50)).toEqual([]);
  });

  it("refuses connections at the cap when every one is busy, and serves again once they go", async () => {
    const { port } = service!;
    for (const s of sockets.splice(0)) s.destroy();
    await sleep(200);
    // Each asks for the big poem and reads only its first bytes: the response cannot finish, the connection stays busy.
    const bigRequest = "GET /poetry/big.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    const busy: Promise<string>[] = [];
    for (let i = 0; i < MAX_CONNECTIONS + 20; i++) {
      busy.push(client(port, bigRequest, (r) => r.length > 0));
      await sleep(5);
    }
    const first = await Promise.all(busy);
    const refusedAnswers = first.filter((r) => r === "").length;
    const fresh = await rawGet(port, "/healthz");
    for (const s of sockets.splice(0)) s.destroy();
    await sleep(500);
    const after = await rawGet(port, "/poetry/shelf/p1.txt");
    const metrics = await metricValues(port, METRICS);
    report("busy connections at the cap", {
      busyClients: MAX_CONNECTIONS + 20,
      servedBusy: first.filter((r) => r.startsWith("HTTP/1.1 200")).length,
      refusedAnswers,
      freshAtCap: fresh.status,
      freshAfter: after.status,
      ...metrics,
    });
    // 96 connections are let in (93 under the shedding threshold, 3 of the burst room), the other 20 refused.
    expect(refusedAnswers).toBeGreaterThanOrEqual(10);
    expect(fresh.status).toBe(0);
    expect(metrics.dummyapp_connections_refused_total).toBeGreaterThanOrEqual(refusedAnswers);
    expect(after.status).toBe(200);
    expect(service!.stderr()).toBe("");
  });
});
