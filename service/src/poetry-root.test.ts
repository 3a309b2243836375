// PoetryRoot alone: what it opens, what it refuses and which entries it shows, with a sibling directory whose name
// starts with the root's (/x/poetry-secrets next to /x/poetry), which a prefix test without the separator would take
// for inside. The same tree through PoetryStore: poetry-store-escape.test.ts; races: poetry-root-layers.test.ts.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { openDescriptors } from "../test/helpers";
import { PoetryRoot } from "./poetry-root";

describe("PoetryRoot", () => {
  let base: string;
  let root: string;
  let secrets: string;
  let poetry: PoetryRoot;
  let socket: Server;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "x-"));
    root = join(base, "poetry");
    secrets = join(base, "poetry-secrets");
    await mkdir(join(root, "sub"), { recursive: true });
    await mkdir(join(secrets, "vault"), { recursive: true });
    await writeFile(join(secrets, "secret.txt"), "the password\n");
    await writeFile(join(root, "a.txt"), "a poem\n");
    execFileSync("mkfifo", [join(root, "fifo.txt")]);
    await symlink("a.txt", join(root, "alias.txt"));
    await symlink("../poetry-secrets/secret.txt", join(root, "secret.txt"));
    await symlink("../poetry-secrets", join(root, "secrets"));
    // Names no poem has, each failing the open with its own errno, and symlinks to them: none is served nor shown.
    await symlink("fifo.txt", join(root, "fifo-link.txt"));
    await symlink("gone.txt", join(root, "dangling.txt"));
    await symlink("loop-b.txt", join(root, "loop-a.txt"));
    await symlink("loop-a.txt", join(root, "loop-b.txt"));
    socket = createServer();
    await new Promise<void>((resolve) => socket.listen(join(root, "socket.txt"), resolve));
    poetry = await PoetryRoot.open(join(root, "sub", ".."));
  });
  afterAll(async () => {
    await new Promise((resolve) => socket.close(resolve));
    await rm(base, { recursive: true });
  });

  it("knows the directory by its real path, and refuses one that is missing or not a directory", async () => {
    expect(poetry.path).toBe(root);
    await expect(PoetryRoot.open(join(base, "nonexistent"))).rejects.toThrow();
    await expect(PoetryRoot.open(join(root, "a.txt"))).rejects.toThrow(/is not a directory/);
  });

  it("leaves no descriptor open after opening the root, or after refusing a file as the root", async () => {
    const before = openDescriptors();
    await PoetryRoot.open(root);
    await expect(PoetryRoot.open(join(root, "a.txt"))).rejects.toThrow(/is not a directory/);
    expect(openDescriptors()).toBe(before);
  });

  it("opens a poem, the root and a symlink that stays inside, each where it really is, with its version", async () => {
    for (const [rel, path, isFile] of [
      ["a.txt", join(root, "a.txt"), true],
      ["alias.txt", join(root, "a.txt"), true],
      ["", root, false],
      ["sub/", join(root, "sub"), false],
    ] as const) {
      const opened = await poetry.openInside(rel);
      if (!("handle" in opened)) throw new Error(`${rel}: ${opened.kind}`);
      try {
        expect(opened.path).toBe(path);
        expect(opened.stats.isFile()).toBe(isFile);
        expect(opened.version).toBe(`${opened.stats.mtimeMs}:${opened.stats.size}:${opened.stats.ino}`);
        if (isFile) expect((await opened.handle.readFile()).toString()).toBe("a poem\n");
      } finally {
        await opened.handle.close();
      }
    }
  });

  it.each([
    "secret.txt",
    "secrets",
    "secrets/",
    "secrets/secret.txt",
    "secrets/vault",
    "../poetry-secrets",
    "/etc/passwd",
  ])("refuses %j, which leads out of the root", async (rel) => {
    expect(await poetry.openInside(rel)).toEqual({ kind: "missing" });
  });

  it.each([
    ["a FIFO, without blocking on it", "fifo.txt"],
    ["a symlink to a FIFO", "fifo-link.txt"],
    ["a name not there (ENOENT)", "nothing.txt"],
    ["a dangling symlink (ENOENT)", "dangling.txt"],
    ["a poem taken for a directory (ENOTDIR)", "a.txt/x"],
    ["a 300-byte name (ENAMETOOLONG)", "x".repeat(300)],
    ["a symlink loop (ELOOP)", "loop-a.txt"],
    ["a Unix socket (ENXIO)", "socket.txt"],
  ])("refuses %s as missing, and leaves nothing open", async (_what, rel) => {
    const before = openDescriptors();
    expect(await poetry.openInside(rel)).toEqual({ kind: "missing" });
    expect(openDescriptors()).toBe(before);
  });

  it("shows neither special files nor the symlinks into the sibling, and gives a symlink's target", async () => {
    const dir = await poetry.openInside("");
    if (!("handle" in dir)) throw new Error(dir.kind);
    try {
      const { visible, unnamable } = await poetry.visibleEntries(dir);
      expect(visible.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: "a.txt", path: join(root, "a.txt"), isDirectory: false },
        { name: "alias.txt", path: join(root, "a.txt"), isDirectory: false },
        { name: "sub", path: join(root, "sub"), isDirectory: true },
      ]);
      expect(unnamable).toBe(0);
    } finally {
      await dir.handle.close();
    }
  });

  it("opens a directory to count only inside the root, and never through a final symlink", async () => {
    const sub = await poetry.openDirectory(join(root, "sub"));
    expect(sub?.path).toBe(join(root, "sub"));
    await sub?.handle.close();
    expect(await poetry.openDirectory(secrets)).toBeUndefined();
    // Followed, it would open the sibling and answer undefined; O_NOFOLLOW with O_DIRECTORY fails with ENOTDIR on Linux.
    await expect(poetry.openDirectory(join(root, "secrets"))).rejects.toMatchObject({ code: "ENOTDIR" });
  });

  it("lets other work run every 5,000 entries of a big directory: twice for 12,000", async () => {
    const big = join(base, "big");
    await mkdir(big);
    for (let i = 0; i < 12_000; i += 1000)
      await Promise.all(Array.from({ length: 1000 }, (_, j) => writeFile(join(big, `p${i + j}.txt`), "")));
    const bigRoot = await PoetryRoot.open(big);
    const dir = await bigRoot.openInside("");
    if (!("handle" in dir)) throw new Error(dir.kind);
    const yields = vi.spyOn(globalThis, "setImmediate");
    try {
      expect((await bigRoot.visibleEntries(dir)).visible).toHaveLength(12_000);
      expect(yields).toHaveBeenCalledTimes(2);
    } finally {
      yields.mockRestore();
      await dir.handle.close();
    }
  });
});
