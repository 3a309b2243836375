import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { startApp, startStub, waitFor } from "../test/helpers";
import { type HerokuMetricsPayload, startHerokuMetrics } from "./heroku-metrics";
import { createLogger } from "./logger";

const COUNTERS = [
  "node.gc.collections",
  "node.gc.pause.ns",
  "node.gc.old.collections",
  "node.gc.old.pause.ns",
  "node.gc.young.collections",
  "node.gc.young.pause.ns",
];
const GAUGES = [
  "node.eventloop.usage.percent",
  "node.eventloop.delay.ms.median",
  "node.eventloop.delay.ms.p95",
  "node.eventloop.delay.ms.p99",
  "node.eventloop.delay.ms.max",
];

function capture() {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.on("data", (c: Buffer) =>
    c
      .toString()
      .split("\n")
      .filter(Boolean)
      .forEach((l) => {
        lines.push(JSON.parse(l));
      }),
  );
  return { logger: createLogger("json", "info", stream), lines };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => resolve(body));
  });
}

describe("startHerokuMetrics", () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c();
  });

  it("POSTs Heroku's JSON shape to the collector every interval, GC counters as deltas", async () => {
    const bodies: HerokuMetricsPayload[] = [];
    const headers: IncomingMessage["headers"][] = [];
    const collector = await startStub(async (req, res) => {
      headers.push(req.headers);
      bodies.push(JSON.parse(await readBody(req)));
      res.end();
    });
    cleanups.push(() => collector.close());
    const { logger } = capture();
    // A push is aborted after half the interval: 200 ms left 100 ms, which a loaded 2-core machine missed every time.
    const stop = startHerokuMetrics({ url: `${collector.url}/metrics`, intervalMs: 1000, logger });
    cleanups.push(stop);
    // Make garbage so the young generation is collected at least once.
    const junk: unknown[] = [];
    for (let i = 0; i < 200_000; i++) junk.push({ i });
    junk.length = 0;
    await waitFor(() => (bodies.length >= 2 ? true : undefined), 10_000);
    expect(headers[0]!["content-type"]).toBe("application/json");
    for (const body of bodies) {
      expect(Object.keys(body.counters).sort()).toEqual([...COUNTERS].sort());
      expect(Object.keys(body.gauges).sort()).toEqual([...GAUGES].sort());
      for (const v of [...Object.values(body.counters), ...Object.values(body.gauges)])
        expect(v).toBeGreaterThanOrEqual(0);
    }
    const total = bodies.reduce((n, b) => n + b.counters["node.gc.collections"]!, 0);
    expect(total).toBeGreaterThan(0);
    for (const b of bodies) {
      expect(b.counters["node.gc.collections"]).toBe(
        b.counters["node.gc.old.collections"]! + b.counters["node.gc.young.collections"]!,
      );
    }
  });

  // A space, a tab (which the URL parser drops) and an "@" in the password each defeated a regex over the URL's text.
  it.each(["s3cret", "s3c ret", "s3c\tret", "p@ss w0rd"])(
    "sends a collector URL's credentials as Basic auth and never logs them (password %j)",
    async (password) => {
      const authorizations: Array<string | undefined> = [];
      const collector = await startStub((req, res) => {
        authorizations.push(req.headers.authorization);
        req.resume().on("end", () => res.end());
      });
      cleanups.push(() => collector.close());
      const { logger, lines } = capture();
      const url = collector.url.replace("//", `//metrics:${password}@`);
      cleanups.push(startHerokuMetrics({ url: `${url}/metrics`, intervalMs: 1000, logger }));
      await waitFor(() => (authorizations.length > 0 ? true : undefined), 10_000);
      const sent = password.replace("\t", "");
      expect(authorizations[0]).toBe(`Basic ${Buffer.from(`metrics:${sent}`).toString("base64")}`);
      expect(lines.find((l) => l.msg === "heroku metrics enabled")).toMatchObject({
        url: `${collector.url.replace("//", "//***@")}/metrics`,
      });
      expect(lines.filter((l) => String(l.msg).startsWith("heroku metrics push"))).toEqual([]);
      const logged = JSON.stringify(lines);
      for (const piece of [sent, ...password.split(/[\s@]/).filter((p) => p.length >= 3)]) {
        expect(logged).not.toContain(piece);
      }
    },
  );

  it.each([
    ["refuses connections", undefined],
    ["answers 500", 500],
    ["hangs", 0],
  ])("keeps serving when the collector %s, logs it and stops cleanly", async (_what, status) => {
    let url = "http://127.0.0.1:9/metrics";
    if (status !== undefined) {
      const collector = await startStub((_req, res) => {
        if (status) res.writeHead(status).end("collector broke");
      });
      cleanups.push(() => collector.close());
      url = collector.url;
    }
    const { logger, lines } = capture();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    cleanups.push(() => process.off("unhandledRejection", onUnhandled));
    const stop = startHerokuMetrics({ url, intervalMs: 100, logger });
    const app = await startApp();
    cleanups.push(() => app.close());
    await waitFor(() => lines.find((l) => String(l.msg).startsWith("heroku metrics push")), 3000);
    for (let i = 0; i < 20; i++) expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
    stop();
    const after = lines.length;
    await new Promise((r) => setTimeout(r, 350));
    expect(lines.slice(after).filter((l) => String(l.msg).startsWith("heroku metrics push"))).toEqual([]);
    expect(unhandled).toEqual([]);
  });
});
