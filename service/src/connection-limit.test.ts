import { createServer, type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ConnectionLimit, defaultMaxConnections, descriptorLimit } from "./connection-limit";
import { limitPipelining } from "./pipeline-limit";

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max processes             63432                63432                processes
Max open files            20000                524288               files
Max locked memory         8388608              8388608              bytes
`;

describe("the descriptor limit", () => {
  it("is the soft 'Max open files' limit, and undefined when unlimited or missing", () => {
    expect(descriptorLimit(LIMITS)).toBe(20_000);
    expect(descriptorLimit(LIMITS.replace("20000  ", "unlimited"))).toBeUndefined();
    expect(descriptorLimit("")).toBeUndefined();
    expect(descriptorLimit()).toBeGreaterThan(0); // this process's own, from /proc/self/limits
  });

  it("leaves 64 descriptors and one for each connection's streamed poem", () => {
    expect(defaultMaxConnections(20_000)).toBe(9968);
    expect(defaultMaxConnections(256)).toBe(96);
    expect(defaultMaxConnections(10)).toBe(1);
  });
});

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A server capped at `max` connections whose handler answers /hold only when told. */
async function capped(max: number, shedAfterIdleMs = 0) {
  const limit = new ConnectionLimit(max, shedAfterIdleMs);
  const held: ServerResponse[] = [];
  const pipeline = limitPipelining((req, res) => (req.url === "/hold" ? held.push(res) : res.end("ok\n")), 4, limit);
  const server = createServer(pipeline.handler);
  limit.attach(server);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const sockets: Socket[] = [];
  closers.push(() => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    server.close();
  });
  /** Connect, send `GET path`, resolve with the first bytes back ("" if the connection closed without any). */
  const request = (path: string) =>
    new Promise<string>((resolve) => {
      const s = connect(port, "127.0.0.1", () => s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`));
      sockets.push(s);
      s.on("error", () => {});
      s.once("data", (c: Buffer) => resolve(c.toString("latin1")));
      s.once("close", () => resolve(""));
    });
  /** Connect and send nothing. */
  const silent = () =>
    new Promise<void>((resolve) => {
      const s = connect(port, "127.0.0.1", () => resolve());
      sockets.push(s);
      s.on("error", () => {});
    });
  return { limit, held, request, silent, sockets };
}

describe("ConnectionLimit", () => {
  it("sheds the longest idle keep-alive connections to let new clients in", async () => {
    const { limit, request, sockets } = await capped(8);
    // One at a time, each answered and left idle: the cap sheds the 8 oldest (8 − 8/32 = 7 are kept).
    for (let i = 0; i < 15; i++) expect(await request("/")).toMatch(/^HTTP\/1\.1 200/);
    await new Promise((r) => setTimeout(r, 50));
    expect(limit.shed()).toBe(8);
    expect(limit.open()).toBe(7);
    expect(sockets.slice(0, 8).every((s) => s.destroyed)).toBe(true);
    expect(sockets.slice(8).some((s) => s.destroyed)).toBe(false);
    expect(limit.refused()).toBe(0);
  });

  it("sheds connections that never sent a request, oldest first", async () => {
    const { limit, request, silent, sockets } = await capped(8);
    for (let i = 0; i < 20; i++) await silent();
    await new Promise((r) => setTimeout(r, 50));
    expect(await request("/")).toMatch(/^HTTP\/1\.1 200/);
    expect(limit.refused()).toBe(0);
    expect(limit.shed()).toBe(14);
    expect(sockets.slice(0, 14).every((s) => s.destroyed)).toBe(true);
  });

  it("sheds no connection idle for less than the grace, so a burst of new clients cannot push each other out", async () => {
    const { limit, request, silent } = await capped(8, 1500); // long enough that a loaded machine opens all 8 within it
    for (let i = 0; i < 8; i++) await silent();
    await new Promise((r) => setTimeout(r, 50));
    expect(await request("/")).toBe(""); // refused: all 8 are new
    expect(limit.shed()).toBe(0);
    expect(limit.refused()).toBe(1);
    // Once they have been idle long enough, one is shed without waiting for another connection: the next gets in.
    await new Promise((r) => setTimeout(r, 1600));
    expect(limit.shed()).toBe(1);
    expect(await request("/")).toMatch(/^HTTP\/1\.1 200/);
    expect(limit.refused()).toBe(1);
  });

  it("refuses new connections at the cap when none is idle", async () => {
    const { limit, held, request } = await capped(4);
    for (let i = 0; i < 4; i++) {
      void request("/hold");
      for (let t = 0; t < 100 && held.length <= i; t++) await new Promise((r) => setTimeout(r, 10));
    }
    expect(await request("/")).toBe("");
    expect(limit.refused()).toBe(1);
    expect(limit.shed()).toBe(0);
    // Answered, they turn idle: the next client gets in by shedding one.
    for (const res of held) res.end("done\n");
    await new Promise((r) => setTimeout(r, 50));
    expect(await request("/")).toMatch(/^HTTP\/1\.1 200/);
    expect(limit.shed()).toBeGreaterThanOrEqual(1);
  });
});
