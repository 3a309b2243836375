import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startApp, type TestApp } from "../test/helpers";
import { buildInfo } from "./build-info";
import { createMetrics } from "./metrics";
import { PoetryStore } from "./poetry-store";

const SAMPLE = new URL("../sample-poetry", import.meta.url).pathname;
const hasPromtool = spawnSync("promtool", ["--version"]).status === 0;
// In CI a missing promtool is a broken install, not a reason to skip.
const itWithPromtool = hasPromtool || process.env.CI === "true" ? it : it.skip;
if (!hasPromtool && process.env.CI !== "true")
  console.warn("SKIPPED: promtool not installed (apt-get install prometheus)");

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
    expect(text).toMatch(
      /http_request_duration_seconds_bucket\{le="0.005",method="GET",route="\/poetry\/\{\*path\}",status="200"\} \d/,
    );
    expect(text).not.toContain("/random/");
  });

  it("reports build info, poems available and Node's default metrics", () => {
    expect(text).toMatch(/dummyapp_build_info\{version="[^"]+",commit="[^"]+",build_tags=""\} 1/);
    expect(text).toContain("dummyapp_poems_available 3");
    expect(text).toContain("dummyapp_poetry_unreadable_directories 0");
    // The two poems fetched, at least, and their bytes.
    expect(Number(/^dummyapp_poetry_cache_entries (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(/^dummyapp_poetry_cache_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(text).toContain("process_resident_memory_bytes");
    expect(text).toContain("nodejs_eventloop_lag_seconds");
  });

  itWithPromtool("passes promtool check metrics (only prom-client's own nodejs_active_* gauges may be linted)", () => {
    const result = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
    const problems = `${result.stdout}${result.stderr}`.split("\n").filter(Boolean);
    const ours = problems.filter(
      (line) =>
        !/^nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/.test(
          line,
        ),
    );
    expect(ours).toEqual([]);
    expect(result.error).toBeUndefined();
  });
});

describe("createMetrics request series", () => {
  it("counts, sums and buckets each (method, route, status) as prom-client's histogram would, bounds inclusive", async () => {
    const { registry, observeRequest } = createMetrics(buildInfo, undefined, () => ({ bufferFull: 0, writeError: 0 }));
    for (const seconds of [0.005, 0.0051, 0.3, 20]) observeRequest("GET", "/a", 200, seconds);
    observeRequest("BREW", "/a", 200, 0.001);
    const text = await registry.metrics();
    const value = (series: string) =>
      Number(new RegExp(`^${series.replace(/[{}+*.]/g, "\\$&")} (.+)$`, "m").exec(text)?.[1]);
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

describe("/metrics when the poems cannot all be counted", () => {
  /** Scrape and return the status and the value of each of the named samples. */
  async function scrape(url: string, names: string[]) {
    const res = await fetch(`${url}/metrics`);
    const text = await res.text();
    const values = names.map((name) => Number(new RegExp(`^${name} (.+)$`, "m").exec(text)?.[1]));
    return { status: res.status, values, text };
  }

  it("still answers, counting what it can, when the poetry directory is deleted under it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "a.txt"), "a\n");
    await writeFile(join(dir, "sub", "b.txt"), "b\n");
    // Counted afresh at every scrape (no TTL), so the second scrape sees the deletion.
    const { registry } = createMetrics(
      buildInfo,
      await PoetryStore.open(dir),
      () => ({ bufferFull: 0, writeError: 0 }),
      0,
    );
    const names = ["dummyapp_poems_available", "dummyapp_poetry_unreadable_directories"];
    const values = (text: string) => names.map((name) => Number(new RegExp(`^${name} (.+)$`, "m").exec(text)?.[1]));
    expect(values(await registry.metrics())).toEqual([2, 0]);
    await rm(dir, { recursive: true });
    const gone = await registry.metrics();
    expect(values(gone)).toEqual([0, 1]);
    expect(gone).toContain("process_resident_memory_bytes");
  });

  it("walks the tree at most once per TTL however often it is scraped", async () => {
    /** Metrics over a tree whose count is the number of walks so far. */
    const walked = (ttlMs: number) => {
      const walks = { count: 0 };
      const poetry = {
        countPoems: async () => ({ poems: ++walks.count, unreadable: 0, unnamable: 0 }),
        cacheSize: () => ({ entries: 0, bytes: 0 }),
      };
      return {
        walks,
        registry: createMetrics(buildInfo, poetry, () => ({ bufferFull: 0, writeError: 0 }), ttlMs).registry,
      };
    };
    // A minute: far longer than 20 scrapes take, however busy the machine.
    const cached = walked(60_000);
    for (let i = 0; i < 20; i++) expect(await cached.registry.metrics()).toContain("dummyapp_poems_available 1\n");
    expect(cached.walks.count).toBe(1);
    const fresh = walked(0);
    for (let i = 1; i <= 3; i++) expect(await fresh.registry.metrics()).toContain(`dummyapp_poems_available ${i}\n`);
  });

  it("skips a directory it cannot read and counts the rest", async () => {
    // Running as root, permissions cannot make a directory unreadable; a path past PATH_MAX (4096) can. Only a shell's
    // relative `cd` builds (and GNU rm removes) a tree that deep.
    const dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await writeFile(join(dir, "a.txt"), "a\n");
    const deep = spawnSync("bash", [
      "-ec",
      `cd "$1"; n=$(printf 'd%.0s' {1..255}); for i in {1..17}; do mkdir "$n"; cd "$n"; echo poem > p.txt; done`,
      "-",
      dir,
    ]);
    expect(deep.status, deep.stderr.toString()).toBe(0);
    const t = await startApp({ poetry: await PoetryStore.open(dir) });
    try {
      // The root's poem and those of the first 15 levels; the 16th level's path is too long to read.
      expect(await scrape(t.url, ["dummyapp_poems_available", "dummyapp_poetry_unreadable_directories"])).toMatchObject(
        { status: 200, values: [16, 1] },
      );
    } finally {
      await t.close();
      spawnSync("rm", ["-rf", dir]);
    }
  });

  it("still answers when counting fails outright, and says so", async () => {
    const { registry } = createMetrics(
      buildInfo,
      { countPoems: () => Promise.reject(new Error("EIO")), cacheSize: () => ({ entries: 0, bytes: 0 }) },
      () => ({ bufferFull: 0, writeError: 0 }),
    );
    const text = await registry.metrics();
    expect(text).toContain("dummyapp_poems_available 0");
    expect(text).toContain("dummyapp_poetry_unreadable_directories 1");
    expect(text).toContain("dummyapp_poetry_unnamable_entries 0");
    expect(text).toContain("dummyapp_build_info");
  });
});
