import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PoetryStore } from "./poetry-store";

describe("PoetryStore with symlink loops and large poems", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await mkdir(join(dir, "sub"));
    await writeFile(join(dir, "a.txt"), "a poem\n");
    await writeFile(join(dir, "sub", "b.txt"), "b poem\n");
    await symlink(".", join(dir, "loop"));
    await symlink(".", join(dir, "loop2"));
    await symlink("..", join(dir, "sub", "up"));
    for (let i = 0; i < 8; i++) await writeFile(join(dir, `big${i}.txt`), Buffer.alloc(1 << 20, `poem ${i}\n`));
  });
  afterAll(() => rm(dir, { recursive: true }));

  it("counts each real directory once, however many symlinks lead back to it", async () => {
    const store = await PoetryStore.open(dir);
    expect(await store.countPoems()).toEqual({ poems: 10, unreadable: 0 });
  });

  it("keeps its cache within its bounds of entries and bytes, and still serves what it evicted", async () => {
    const limits = { entries: 50, bytes: 3 << 20 };
    const store = await PoetryStore.open(dir, 60_000, limits);
    // 256 distinct paths through the loops to the same poem, then eight poems of 1 MiB each.
    for (let i = 0; i < 256; i++) {
      const through = Array.from({ length: 8 }, (_, bit) => ((i >> bit) & 1 ? "loop" : "loop2"));
      const found = await store.lookup([...through, "a.txt"]);
      expect(found.kind === "poem" && found.poem.body?.toString()).toBe("a poem\n");
    }
    expect(store.cacheSize().entries).toBeLessThanOrEqual(limits.entries);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 8; i++) {
        const found = await store.lookup([`big${i}.txt`]);
        expect(found.kind === "poem" && found.poem.body?.subarray(0, 7).toString()).toBe(`poem ${i}\n`.slice(0, 7));
      }
    }
    expect(store.cacheSize().bytes).toBeLessThanOrEqual(limits.bytes);
    expect(store.cacheSize().bytes).toBeGreaterThan(1 << 20);
  });
});
