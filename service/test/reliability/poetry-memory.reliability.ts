import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getAll, kill, report, type Service, sleep, startService } from "./harness";

const BIG_POEMS = 200;
const LOOPED_PATHS = 20_000;
// The store's default bounds (DEFAULT_CACHE_LIMITS).
const CACHE_BYTES = 32 << 20;
const CACHE_ENTRIES = 10_000;

let dir: string;
let service: Service | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-memory-"));
  await writeFile(join(dir, "a.txt"), "a poem\n");
  // 1 MiB each: the largest poems the store holds in memory.
  for (let i = 0; i < BIG_POEMS; i++) await writeFile(join(dir, `big${i}.txt`), Buffer.alloc(1 << 20, `poem ${i}\n`));
  await symlink(".", join(dir, "l"));
  await symlink(".", join(dir, "m"));
  service = await startService(["--poetry-dir", dir]);
});

afterAll(async () => {
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

/** The value of a sample line of /metrics, and how long the scrape took. */
async function scrape(url: string): Promise<{ value: (name: string) => number; ms: number; status: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/metrics`);
  const text = await res.text();
  const ms = Math.round(performance.now() - t0);
  return { value: (name) => Number(new RegExp(`^${name} (.+)$`, "m").exec(text)?.[1]), ms, status: res.status };
}

describe("poetry memory under large poems and a symlink loop", () => {
  it(`holds at most its cache's bounds after ${BIG_POEMS} poems of 1 MiB and ${LOOPED_PATHS} looped paths`, async () => {
    const { url, port } = service!;
    await getAll(port, ["/poetry/a.txt", "/poetry/"]);
    await scrape(url);
    await sleep(500);
    const rssBefore = service!.rssKiB();

    const bigPaths = Array.from({ length: BIG_POEMS }, (_, i) => `/poetry/big${i}.txt`);
    // Distinct paths through the two loops (l/m/m/l/…/a.txt), 15 symlinks each: within the kernel's 40 per lookup.
    const looped = Array.from(
      { length: LOOPED_PATHS },
      (_, i) => `/poetry/${Array.from({ length: 15 }, (_, bit) => ((i >> bit) & 1 ? "l" : "m")).join("/")}/a.txt`,
    );
    const bigStatuses = await getAll(port, [...bigPaths, ...bigPaths]);
    const afterBig = await scrape(url);
    const loopedStatuses = await getAll(port, looped);
    const after = await scrape(url);
    await sleep(500);
    const rssAfter = service!.rssKiB();

    const mib = (bytes: number) => +(bytes / 2 ** 20).toFixed(1);
    const figures = {
      requests: { bigPoems: bigStatuses, loopedPaths: loopedStatuses },
      cacheAfterBigPoems: {
        MiB: mib(afterBig.value("dummyapp_poetry_cache_bytes")),
        entries: afterBig.value("dummyapp_poetry_cache_entries"),
      },
      cacheAfterLoopedPaths: {
        MiB: mib(after.value("dummyapp_poetry_cache_bytes")),
        entries: after.value("dummyapp_poetry_cache_entries"),
      },
      poemsCounted: after.value("dummyapp_poems_available"),
      scrapeMs: after.ms,
      rssGrowthMiB: Math.round((rssAfter - rssBefore) / 1024),
    };
    report("poetry memory", figures);
    expect(bigStatuses).toEqual({ 200: 2 * BIG_POEMS });
    expect(loopedStatuses).toEqual({ 200: LOOPED_PATHS });
    expect(after.status).toBe(200);
    // Each real directory counted once: the loops add nothing.
    expect(figures.poemsCounted).toBe(BIG_POEMS + 1);
    expect(afterBig.value("dummyapp_poetry_cache_bytes")).toBeLessThanOrEqual(CACHE_BYTES);
    expect(after.value("dummyapp_poetry_cache_entries")).toBeLessThanOrEqual(CACHE_ENTRIES);
    // Without the bounds the poems alone are held (RSS +256 MiB in a run); bounded, runs grew 46-104 MiB (the cache's
    // 32 MiB and garbage not yet returned to the system).
    expect(figures.rssGrowthMiB).toBeLessThan(170);
  });
});
