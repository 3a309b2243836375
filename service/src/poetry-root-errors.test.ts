// What PoetryRoot makes of the failures a test running as root cannot cause for real: no procfs to check descriptors
// with, a file the service may not read (EACCES, EPERM: root reads everything), a device without a driver (ENODEV:
// mknod needs CAP_MKNOD) and an I/O error. node:fs/promises
// is wrapped so that each test picks the one call that fails.
import type * as fsPromises from "node:fs/promises";
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { openDescriptors } from "../test/helpers";
import { PoetryRoot } from "./poetry-root";

const failing = vi.hoisted(() => ({
  /** readlink of /proc/self/fd/N fails with procfsCode: ENOENT, as without procfs. */
  procfs: false,
  procfsCode: "ENOENT",
  /** The errno the open of a path ending in "a.txt" fails with. */
  openCode: undefined as string | undefined,
  /** Every path opened. */
  opened: [] as string[],
}));

vi.mock("node:fs/promises", async (importOriginal) => {
  const actual = await importOriginal<typeof fsPromises>();
  const fail = (code: string) => Object.assign(new Error(`${code}: mocked`), { code });
  const readlink = (path: string) =>
    failing.procfs && path.startsWith("/proc/self/fd/")
      ? Promise.reject(fail(failing.procfsCode))
      : actual.readlink(path);
  const open = (...args: Parameters<typeof actual.open>) => {
    failing.opened.push(String(args[0]));
    return failing.openCode && String(args[0]).endsWith("a.txt")
      ? Promise.reject(fail(failing.openCode))
      : actual.open(...args);
  };
  return { ...actual, readlink, open };
});

describe("PoetryRoot when the filesystem fails", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "poetry-errors-"));
    await writeFile(join(root, "a.txt"), "a poem\n");
  });
  afterEach(() => {
    failing.procfs = false;
    failing.procfsCode = "ENOENT";
    failing.openCode = undefined;
    failing.opened = [];
  });
  afterAll(async () => {
    vi.restoreAllMocks();
    await rm(root, { recursive: true });
  });

  it("refuses to open a directory whose files it could not check (no /proc/self/fd)", async () => {
    failing.procfs = true;
    await expect(PoetryRoot.open(root)).rejects.toThrow(
      "cannot check opened files: /proc/self/fd (Linux procfs) is not available",
    );
  });

  it.each([
    ["EACCES", "forbidden"],
    ["EPERM", "forbidden"],
    ["ENODEV", "missing"],
  ])("answers the open failing with %s as %s", async (code, kind) => {
    const poetry = await PoetryRoot.open(root);
    failing.openCode = code;
    expect(await poetry.openInside("a.txt")).toEqual({ kind });
  });

  it("rethrows an error that is neither missing nor forbidden (EIO), so that it is answered as a server error", async () => {
    const poetry = await PoetryRoot.open(root);
    failing.openCode = "EIO";
    await expect(poetry.openInside("a.txt")).rejects.toMatchObject({ code: "EIO" });
    failing.openCode = undefined;
    const opened = await poetry.openInside("a.txt");
    expect(opened).toMatchObject({ path: join(root, "a.txt") });
    if ("handle" in opened) await opened.handle.close();
  });

  it("opens nothing a symlink leads to outside the root: realpath refuses it before the descriptor check would", async () => {
    const outside = await mkdtemp(join(tmpdir(), "poetry-outside-"));
    await writeFile(join(outside, "secret.txt"), "not a poem\n");
    try {
      await symlink(join(outside, "secret.txt"), join(root, "leak.txt"));
      const poetry = await PoetryRoot.open(root);
      failing.opened = [];
      expect(await poetry.openInside("leak.txt")).toEqual({ kind: "missing" });
      expect(failing.opened).toEqual([]);
    } finally {
      await rm(outside, { recursive: true });
    }
  });

  it("closes a descriptor whose check fails: procfs gone after the start (missing) or an I/O error (rethrown)", async () => {
    const poetry = await PoetryRoot.open(root);
    const before = openDescriptors();
    failing.opened = [];
    failing.procfs = true;
    expect(await poetry.openInside("a.txt")).toEqual({ kind: "missing" });
    expect(failing.opened).toEqual([join(root, "a.txt")]);
    failing.procfsCode = "EIO";
    await expect(poetry.openInside("a.txt")).rejects.toMatchObject({ code: "EIO" });
    expect(openDescriptors()).toBe(before);
  });
});
