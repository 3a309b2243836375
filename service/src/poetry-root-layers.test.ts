// Which layer of PoetryRoot.openInside refuses what, when the tree changes between its realpath check and its open
// (the race an attacker with write access to the poetry directory would play). realpath is wrapped so that each
// test swaps the tree at exactly that moment, and open so that the test sees every file a descriptor was opened on.
import type * as fsPromises from "node:fs/promises";
import { mkdir, mkdtemp, readlink, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { PoetryRoot } from "./poetry-root";
import { PoetryStore } from "./poetry-store";

const race = vi.hoisted(() => ({
  /** Run once, right after realpath resolved to `at`. */
  swap: undefined as { at: string; change: () => Promise<void> } | undefined,
  /** The real path of every descriptor opened. */
  opened: [] as string[],
}));

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof fsPromises>();
  const realpath = async (path: string) => {
    const real = await actual.realpath(path);
    const swap = race.swap;
    if (swap?.at === real) {
      race.swap = undefined;
      await swap.change();
    }
    return real;
  };
  const open = async (...args: Parameters<typeof actual.open>) => {
    const handle = await actual.open(...args);
    race.opened.push(await actual.readlink(`/proc/self/fd/${handle.fd}`));
    return handle;
  };
  return { ...actual, realpath, open };
});

describe("PoetryRoot when the tree is swapped between its check and its open", () => {
  let base: string;
  let root: string;
  let outside: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "poetry-race-"));
    root = join(base, "poetry");
    outside = join(base, "elsewhere");
    await mkdir(join(root, "sub", "inner"), { recursive: true });
    await writeFile(join(root, "a.txt"), "a poem\n");
    await writeFile(join(root, "sub", "b.txt"), "b poem\n");
    await mkdir(join(outside, "inner"), { recursive: true });
    await writeFile(join(outside, "secret.txt"), "the password\n");
    await writeFile(join(outside, "b.txt"), "the key\n");
    await writeFile(join(outside, "inner", "hidden-name.txt"), "x\n");
    race.opened = [];
  });
  afterEach(() => rm(base, { recursive: true }));
  afterAll(() => vi.restoreAllMocks());

  const isOutside = (path: string) => path.startsWith(outside);

  /** Replace `path` by a symlink to `target` in one rename, as an attacker would. */
  async function replaceWithSymlink(path: string, target: string) {
    await symlink(target, `${path}.new`);
    await rename(`${path}.new`, path);
  }

  it("O_NOFOLLOW: a poem swapped for a symlink to an outside file is never opened", async () => {
    const poetry = await PoetryRoot.open(root);
    race.swap = {
      at: join(root, "a.txt"),
      change: () => replaceWithSymlink(join(root, "a.txt"), join(outside, "secret.txt")),
    };
    expect(await poetry.openInside("a.txt")).toEqual({ kind: "missing" });
    expect(race.swap).toBeUndefined();
    // Without O_NOFOLLOW the descriptor check below would still refuse it, but only after opening the outside file.
    expect(race.opened.filter(isOutside)).toEqual([]);
  });

  it("O_NOFOLLOW: a directory swapped for a symlink to an outside directory is never opened", async () => {
    const poetry = await PoetryRoot.open(root);
    race.swap = { at: join(root, "sub"), change: () => swapDirectory(join(root, "sub"), outside) };
    expect(await poetry.openInside("sub")).toEqual({ kind: "missing" });
    expect(race.swap).toBeUndefined();
    expect(race.opened.filter(isOutside)).toEqual([]);
  });

  it("/proc/self/fd check: a poem under a directory swapped for a symlink is opened outside, then refused", async () => {
    const poetry = await PoetryRoot.open(root);
    const file = join(root, "sub", "b.txt");
    race.swap = { at: file, change: () => swapDirectory(join(root, "sub"), outside) };
    expect(await poetry.openInside("sub/b.txt")).toEqual({ kind: "missing" });
    // O_NOFOLLOW guards the last component only: the open went through the swapped directory to the outside file.
    expect(race.opened.filter(isOutside)).toEqual([join(outside, "b.txt")]);

    // PoetryStore.openPoem opens the poem again for each response, through the same check.
    const store = await PoetryStore.open(root, 0);
    race.opened = [];
    await restoreDirectory(join(root, "sub"));
    race.swap = { at: file, change: () => swapDirectory(join(root, "sub"), outside) };
    expect(await store.openPoem(["sub", "b.txt"])).toBeUndefined();
    expect(race.opened.filter(isOutside)).toEqual([join(outside, "b.txt")]);
  });

  it("/proc/self/fd check: a listing under a directory swapped for a symlink is opened outside, then refused", async () => {
    const poetry = await PoetryRoot.open(root);
    race.swap = { at: join(root, "sub", "inner"), change: () => swapDirectory(join(root, "sub"), outside) };
    expect(await poetry.openInside("sub/inner")).toEqual({ kind: "missing" });
    expect(race.opened.filter(isOutside)).toEqual([join(outside, "inner")]);
  });

  it("PoetryStore serves the same paths when nothing is swapped, and opens nothing outside", async () => {
    const store = await PoetryStore.open(root, 0);
    const poem = await store.lookup(["sub", "b.txt"]);
    expect(poem.kind === "poem" && poem.poem.body?.toString()).toBe("b poem\n");
    expect(await store.lookup(["sub"])).toMatchObject({
      kind: "directory",
      listing: { directories: ["inner"], poems: ["b.txt"] },
    });
    expect((await store.openPoem(["a.txt"]))?.body?.toString()).toBe("a poem\n");
    expect(race.opened.filter(isOutside)).toEqual([]);
    expect(race.opened.length).toBeGreaterThan(0);
  });

  /** Move a directory aside (to `<dir>.moved`) and put a symlink to `target` in its place. */
  async function swapDirectory(dir: string, target: string) {
    await rename(dir, `${dir}.moved`);
    await symlink(target, dir);
  }

  async function restoreDirectory(dir: string) {
    expect(await readlink(dir)).toBe(outside);
    await rm(dir);
    await rename(`${dir}.moved`, dir);
  }
});
