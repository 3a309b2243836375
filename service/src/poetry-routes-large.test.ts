// Large poems and listings through the app: streaming, slow and vanishing clients, rendered pages cached and shared.
import { mkdir, mkdtemp, readdir, readlink, rm, symlink, truncate, utimes, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import etag from "etag";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { CANARY, rawRequest, startApp, type TestApp, waitFor } from "../test/helpers";
import { DEFAULT_CACHE_LIMITS, PoetryStore } from "./poetry-store";

// etag, counted: a listing's page is hashed each time it is rendered.
vi.mock("etag", async (importOriginal) => {
  const original = (await importOriginal<{ default: typeof import("etag") }>()).default;
  return { default: vi.fn(original) };
});

describe("large poems", () => {
  let t: TestApp;
  let dir: string;
  let big: string;
  const BIG = Buffer.alloc(3 << 20, "a large poem\n");
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await mkdir(join(dir, "poems"));
    await writeFile(join(dir, "canary.txt"), CANARY.repeat(1000));
    big = join(dir, "poems", "big.txt");
    await writeFile(big, BIG);
    // Cached for a minute, so only the per-response open stands between a swapped file and the client.
    t = await startApp({ poetry: await PoetryStore.open(join(dir, "poems"), 60_000) });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true });
  });

  /** Resume a paused socket and read a response of `bodyLength` bytes, or until it closes; all it received. */
  async function readUntil(socket: Socket, bodyLength = Number.POSITIVE_INFINITY): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let length = 0;
    let bodyStart = -1;
    socket.resume();
    await new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        length += chunk.length;
        if (bodyStart < 0) bodyStart = Buffer.concat(chunks).indexOf("\r\n\r\n") + 4;
        if (bodyStart >= 4 && length - bodyStart >= bodyLength) resolve();
      });
      socket.on("close", () => resolve());
      socket.on("error", () => resolve());
    });
    return Buffer.concat(chunks);
  }

  /** Descriptors of this process open on `path`. */
  async function openOn(path: string): Promise<string[]> {
    const fds = await readdir("/proc/self/fd");
    const targets = await Promise.all(fds.map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")));
    return targets.filter((target) => target === path);
  }

  it("closes the descriptor when the client goes away mid-stream", async () => {
    const { port } = new URL(t.url);
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path: "/poetry/big.txt", agent: false }, (res) => {
        res.once("data", () => {
          req.destroy();
          resolve();
        });
      });
      req.on("error", (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
    let open = await openOn(big);
    for (let tries = 0; open.length > 0 && tries < 100; tries++) {
      await new Promise((r) => setTimeout(r, 50));
      open = await openOn(big);
    }
    expect(open).toEqual([]);
  });

  it("goes out with its Content-Length, which the request log reports", async () => {
    const res = await fetch(`${t.url}/poetry/big.txt`);
    expect(res.headers.get("content-length")).toBe(String(BIG.length));
    expect((await res.arrayBuffer()).byteLength).toBe(BIG.length);
    const id = res.headers.get("x-request-id");
    expect(t.logs.find((l) => l.requestId === id && l.msg === "request")).toMatchObject({
      status: 200,
      bytes: BIG.length,
    });
  });

  it("logs, once a slow client has it all, the bytes sent and the time until then", async () => {
    // 32 MiB: more than loopback's socket buffers hold, so the service cannot finish before the client reads.
    const slow = Buffer.alloc(32 << 20, "a long poem\n");
    await writeFile(join(dir, "poems", "slow.txt"), slow);
    const { port } = new URL(t.url);
    const socket = connect(Number(port), "127.0.0.1");
    socket.write("GET /poetry/slow.txt HTTP/1.1\r\nHost: x\r\nX-Request-Id: slow-reader-000000000000\r\n\r\n");
    socket.pause();
    await new Promise((r) => setTimeout(r, 400));
    const received = await readUntil(socket, slow.length);
    socket.destroy();
    expect(received.subarray(received.indexOf("\r\n\r\n") + 4).equals(slow)).toBe(true);
    const line = await waitFor(() => t.logs.find((l) => l.requestId === "slow-reader-000000000000"));
    expect(line).toMatchObject({ status: 200, bytes: slow.length });
    expect(line.durationUs).toBeGreaterThanOrEqual(400_000);
  });

  it("closes the connection and logs what it sent when the poem is truncated while a slow client reads it", async () => {
    const name = join(dir, "poems", "shrinking.txt");
    await writeFile(name, Buffer.alloc(24 << 20, "a poem about to shrink\n"));
    const { port } = new URL(t.url);
    const socket = connect(Number(port), "127.0.0.1");
    // A second request pipelined behind: its response must never appear inside the first body.
    socket.write(
      "GET /poetry/shrinking.txt HTTP/1.1\r\nHost: x\r\nX-Request-Id: truncated-00000000000000\r\n\r\n" +
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    socket.pause();
    await new Promise((r) => setTimeout(r, 200));
    await truncate(name, 1 << 20);
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    const received = await readUntil(socket);
    await closed;
    const head = received.subarray(0, received.indexOf("\r\n\r\n") + 4).toString();
    expect(head.toLowerCase()).toContain(`content-length: ${24 << 20}`);
    const bodyBytes = received.length - head.length;
    expect(bodyBytes).toBeLessThan(24 << 20);
    expect(received.subarray(head.length).includes("HTTP/1.1")).toBe(false);
    const line = await waitFor(() => t.logs.find((l) => l.requestId === "truncated-00000000000000"));
    expect(line.status).toBe(200);
    expect(line.bytes).toBeGreaterThanOrEqual(bodyBytes);
    expect(line.bytes).toBeLessThan(24 << 20);
    expect(t.logs.find((l) => l.requestId === "truncated-00000000000000" && l.level === 40)).toMatchObject({
      bytes: line.bytes,
      promised: 24 << 20,
    });
    expect(t.logs.filter((l) => l.msg === "response error")).toEqual([]);
    expect(await (await fetch(`${t.url}/metrics`)).text()).toMatch(/^dummyapp_poems_cut_short_total 1$/m);
  });

  it("is served whole, then not at all once swapped for a symlink leading out, though the lookup is cached", async () => {
    const res = await fetch(`${t.url}/poetry/big.txt`);
    expect(Buffer.from(await res.arrayBuffer()).equals(BIG)).toBe(true);
    await rm(big);
    await symlink(join(dir, "canary.txt"), big);
    const swapped = await rawRequest(t.url, "/poetry/big.txt");
    expect(swapped.body).not.toContain(CANARY);
    expect(swapped.status).toBe(404);
  });
});

describe("large listings", () => {
  let t: TestApp;
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    // More than a rendering batch (5,000 names), so a rendering spans turns of the event loop.
    await Promise.all(Array.from({ length: 6000 }, (_, i) => writeFile(join(dir, `many-${i}.txt`), "x\n")));
    // Revalidated on every request: an unchanged directory keeps its listing, and so its rendered pages.
    t = await startApp({ poetry: await PoetryStore.open(dir, 0) });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true });
  });

  /** Pages rendered (and hashed) since the last call. */
  function renders(): number {
    const calls = vi
      .mocked(etag)
      .mock.calls.filter(([entity]) => (Buffer.isBuffer(entity) ? entity : String(entity)).includes("many-2999.txt"));
    vi.mocked(etag).mockClear();
    return calls.length;
  }

  it("are rendered once per directory version and format, not per request", async () => {
    renders();
    for (let i = 0; i < 3; i++) {
      const html = await fetch(`${t.url}/poetry/`);
      expect(await html.text()).toContain('<a href="many-2999.txt">many-2999.txt</a>');
      const json = await fetch(`${t.url}/poetry/`, { headers: { Accept: "application/json" } });
      expect(((await json.json()) as { poems: string[] }).poems).toHaveLength(6000);
    }
    expect(renders()).toBe(2);
    await writeFile(join(dir, "many-new.txt"), "x\n");
    await utimes(dir, new Date(), new Date(Date.now() + 5000));
    // Requests that come while it renders wait for that one rendering.
    const changed = await Promise.all(Array.from({ length: 5 }, async () => (await fetch(`${t.url}/poetry/`)).text()));
    for (const page of changed) expect(page).toContain("many-new.txt");
    expect(renders()).toBe(1);
  });
});

describe("a large listing to clients that do not read", () => {
  let t: TestApp;
  let dir: string;
  // 20,000 names of 204 characters: a 8.6 MB page, more than loopback's buffers take from one response.
  const pad = "n".repeat(196);
  let store: PoetryStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    for (let i = 0; i < 20_000; i += 1000)
      await Promise.all(Array.from({ length: 1000 }, (_, j) => writeFile(join(dir, `${pad}-${i + j}.txt`), "x\n")));
    store = await PoetryStore.open(dir, 60_000);
    t = await startApp({ poetry: store });
  }, 60_000);
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true });
  });

  it("is cached with its rendered pages, their bytes counted, within the default bounds", async () => {
    const html = Buffer.from(await (await fetch(`${t.url}/poetry/`)).arrayBuffer());
    const json = Buffer.from(
      await (await fetch(`${t.url}/poetry/`, { headers: { Accept: "application/json" } })).arrayBuffer(),
    );
    const cached = store.cached([]);
    expect(cached?.kind === "directory" && cached.listing.poems.length).toBe(20_000);
    // The names (204 bytes and their overhead each) and both pages: 17.3 MB, under the 32 MiB bound.
    const { bytes } = store.cacheSize();
    expect(bytes).toBeGreaterThanOrEqual(html.length + json.length + 20_000 * 204);
    expect(bytes).toBeLessThan(DEFAULT_CACHE_LIMITS.bytes);
  });

  it("shares one copy of its bytes between responses", async () => {
    const page = Buffer.from(await (await fetch(`${t.url}/poetry/`)).arrayBuffer());
    expect(page.length).toBeGreaterThan(8_000_000);
    const { port } = new URL(t.url);
    const before = process.memoryUsage().rss;
    const sockets = await Promise.all(
      Array.from(
        { length: 32 },
        () =>
          new Promise<Socket>((resolve) => {
            const socket = connect(Number(port), "127.0.0.1", () => {
              socket.pause();
              socket.write("GET /poetry/ HTTP/1.1\r\nHost: x\r\n\r\n", () => resolve(socket));
            });
          }),
      ),
    );
    try {
      // Until every response is written as far as it goes (the page is cached: each is one write).
      await new Promise((r) => setTimeout(r, 500));
      const grown = process.memoryUsage().rss - before;
      // A copy per response (a string encoded for each) held what loopback did not take for each of the 32 clients:
      // RSS +568 MB in a run; shared, runs grew by -22 to +2 MB.
      expect(grown).toBeLessThan(3 * page.length);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
  });
});
