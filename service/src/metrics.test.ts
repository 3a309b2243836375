import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type TestApp } from "../test/helpers";
import { buildInfo } from "./build-info";
import { createMetrics } from "./metrics";
import { PoetryStore } from "./poetry-store";

const SAMPLE = new URL("../sample-poetry", import.meta.url).pathname;
const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;
// In CI a missing promtool is a broken install, not a reason to skip.
const itWithPromtool = hasPromtool || process.env.CI === "true" ? it : it.skip;
if (!hasPromtool && process.env.CI !== "true") console.warn("SKIPPED: promtool not installed (apt-get install prometheus)");

describe("GET /metrics", () => {
  let t: TestApp;
  let text: string;
  beforeAll(async () => {
    t = await startApp({ poetry: await PoetryStore.open(SAMPLE) });
    await fetch(`${t.url}/poetry/build-day.txt`);
    await fetch(`${t.url}/poetry/seasons/autumn.txt`);
    for (let i = 0; i < 50; i++) await fetch(`${t.url}/random/${i}`);
    await fetch(`${t.url}/healthz`, { method: "POST" });
    const res = await fetch(`${t.url}/metrics`);
    expect(res.headers.get("content-type")).toContain("text/plain; version=0.0.4");
    text = await res.text();
  });
  afterAll(() => t.close());

  it("labels requests by route template, so unknown paths share one series", () => {
    expect(text).toContain('http_requests_total{method="GET",route="/poetry/{*path}",status="200"} 2');
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status="404"} 50');
    expect(text).toContain('http_requests_total{method="POST",route="unmatched",status="405"} 1');
    expect(text).toMatch(/http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/poetry\/\{\*path\}",status="200"\} \d/);
    expect(text).not.toContain("/random/");
  });

  it("reports build info, poems available and Node's default metrics", () => {
    expect(text).toMatch(/dummyapp_build_info\{version="[^"]+",commit="[^"]+",build_tags=""\} 1/);
    expect(text).toContain("dummyapp_poems_available 3");
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).toContain("nodejs_eventloop_lag_seconds");
  });

  itWithPromtool("passes promtool check metrics (only prom-client's own nodejs_active_* gauges may be linted)", () => {
    const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    const problems = `${result.stdout}${result.stderr}`.split("\n").filter(Boolean);
    const ours = problems.filter((line) => !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(line));
    expect(ours).toEqual([]);
    expect(result.error).toBeUndefined();
  });
});

describe("createMetrics request series", () => {
  it("counts, sums and buckets each (method, route, status) as prom-client's histogram would, bounds inclusive", async () => {
    const { registry, observeRequest } = createMetrics(buildInfo, undefined);
    for (const seconds of [0.005, 0.0051, 0.3, 20]) observeRequest("GET", "/a", 200, seconds);
    observeRequest("BREW", "/a", 200, 0.001);
    const text = await registry.metrics();
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}+*.]/g, "\\$&")} (.+)$`, "m").exec(text)?.[1]);
    const get = 'method="GET",route="/a",status="200"';
    expect(value(`http_request_duration_seconds_bucket{le="0.005",${get}}`)).toBe(1);
    expect(value(`http_request_duration_seconds_bucket{le="0.01",${get}}`)).toBe(2);
    expect(value(`http_request_duration_seconds_bucket{le="0.25",${get}}`)).toBe(2);
    expect(value(`http_request_duration_seconds_bucket{le="0.5",${get}}`)).toBe(3);
    expect(value(`http_request_duration_seconds_bucket{le="10",${get}}`)).toBe(3);
    expect(value(`http_request_duration_seconds_bucket{le="+Inf",${get}}`)).toBe(4);
    expect(value(`http_request_duration_seconds_count{${get}}`)).toBe(4);
    expect(value(`http_request_duration_seconds_sum{${get}}`)).toBeCloseTo(20.3101, 6);
    expect(value(`http_requests_total{${get}}`)).toBe(4);
    expect(value('http_requests_total{method="OTHER",route="/a",status="200"}')).toBe(1);
    // A second scrape reports the same totals: the counter is refilled, not added to.
    expect(await registry.metrics()).toContain(`http_requests_total{${get}} 4\n`);
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain("http_request_duration_seconds_count{");
  });
});
