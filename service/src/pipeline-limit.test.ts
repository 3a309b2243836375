import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { limitPipelining } from "./pipeline-limit";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** A server behind the limit whose handler keeps each response until `release` is called, and a raw client. */
async function setup(depth: number, hold: boolean) {
  const held: ServerResponse[] = [];
  const calls: { path: string; turn: number }[] = [];
  let turn = 0;
  // Counts event-loop turns: a setImmediate chain moves on once per turn.
  let ticker = setImmediate(function tick() {
    turn++;
    ticker = setImmediate(tick);
  });
  const limit = limitPipelining((req, res) => {
    calls.push({ path: req.url!, turn });
    if (hold) held.push(res);
    else res.end(`${req.url}\n`);
  }, depth);
  let parsed = 0;
  const server = createServer((req, res) => {
    parsed++;
    limit.handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const socket = connect((server.address() as AddressInfo).port, "127.0.0.1");
  let received = "";
  socket.on("data", (c: Buffer) => (received += c.toString("latin1")));
  closers.push(() => {
    clearImmediate(ticker);
    socket.destroy();
    server.closeAllConnections();
    server.close();
  });
  const pipeline = (n: number) =>
    socket.write(Array.from({ length: n }, (_, i) => `GET /${i} HTTP/1.1\r\nHost: x\r\n\r\n`).join(""));
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { limit, held, calls, pipeline, until, received: () => received, parsed: () => parsed };
}

describe("limitPipelining", () => {
  it("hands a socket's requests to the handler `depth` at a time and stops reading it meanwhile", async () => {
    const { limit, held, calls, pipeline, until, received } = await setup(2, true);
    pipeline(10);
    await until(() => calls.length >= 2 && limit.pausedSockets() === 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(calls.map((c) => c.path)).toEqual(["/0", "/1"]);
    expect(limit.pausedSockets()).toBe(1);
    expect(limit.pauses()).toBe(1);
    // Each finished response lets the next one in, in order, and the socket is read again once all are answered.
    for (let i = 0; i < 10; i++) {
      await until(() => held.length > i);
      held[i]!.end(`${i}\n`);
    }
    await until(() => received().split("HTTP/1.1 200").length === 11);
    expect(calls.map((c) => c.path)).toEqual(Array.from({ length: 10 }, (_, i) => `/${i}`));
    expect(
      received()
        .match(/\r\n\r\n\d+\n/g)
        ?.map((b) => Number(b.trim())),
    ).toEqual([...Array(10).keys()]);
    expect(limit.pausedSockets()).toBe(0);
  });

  it("stops reading a socket whose `depth` requests are unanswered, though Node resumes it after each request", async () => {
    const { limit, calls, pipeline, until, parsed } = await setup(2, true);
    pipeline(20_000); // 600 KB: Node reads 64 KiB at a time, about 2,000 of these requests
    await until(() => limit.pausedSockets() === 1);
    await new Promise((r) => setTimeout(r, 300));
    expect(calls.length).toBe(2);
    expect(parsed()).toBeLessThan(5000);
  });

  it("yields to the event loop after `depth` requests of one socket", async () => {
    const { calls, pipeline, until } = await setup(4, false);
    pipeline(40);
    await until(() => calls.length === 40);
    const perTurn = new Map<number, number>();
    for (const c of calls) perTurn.set(c.turn, (perTurn.get(c.turn) ?? 0) + 1);
    expect(calls.length).toBe(40);
    // A turn may see `depth` started as they arrive and `depth` more from the check phase, before the counter moves.
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(8);
  });
});
