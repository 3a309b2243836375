// Symlinks that lead out of the poetry directory into a sibling whose name starts with the root's: /x/poetry-secrets
// next to /x/poetry. A prefix test without the separator (startsWith(root)) would take it for inside.
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PoetryStore } from "./poetry-store";

describe("PoetryStore and a sibling directory named like the root", () => {
  let base: string;
  let store: PoetryStore;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), "x-"));
    const root = join(base, "poetry");
    const secrets = join(base, "poetry-secrets");
    await mkdir(root);
    await mkdir(join(secrets, "vault"), { recursive: true });
    await writeFile(join(secrets, "secret.txt"), "the password\n");
    await writeFile(join(secrets, "vault", "key.txt"), "the key\n");
    await writeFile(join(root, "a.txt"), "a poem\n");
    // A symlink inside the root stays servable: the refusals below are about where the links lead.
    await symlink("a.txt", join(root, "alias.txt"));
    await symlink("../poetry-secrets/secret.txt", join(root, "secret.txt"));
    await symlink("../poetry-secrets", join(root, "secrets"));
    store = await PoetryStore.open(root, 0);
  });
  afterAll(() => rm(base, { recursive: true }));

  it("serves a symlink that stays inside", async () => {
    const found = await store.lookup(["alias.txt"]);
    expect(found.kind === "poem" && found.poem.body?.toString()).toBe("a poem\n");
  });

  it.each([[["secret.txt"]], [["secrets"]], [["secrets", ""]], [["secrets", "secret.txt"]], [["secrets", "vault"]]])(
    "refuses %j, which leads into the sibling",
    async (segments) => {
      expect(await store.lookup(segments)).toEqual({ kind: "missing" });
      expect(await store.openPoem(segments)).toBeUndefined();
    },
  );

  it("neither lists nor counts what the symlinks into the sibling lead to", async () => {
    expect(await store.lookup([])).toMatchObject({
      kind: "directory",
      listing: { directories: [], poems: ["a.txt", "alias.txt"] },
    });
    expect(await store.countPoems()).toEqual({ poems: 2, unreadable: 0, unnamable: 0 });
  });
});
