// The /poetry/ routes through the app: listings, poems, conditional GETs, and paths that must not leave the directory.
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CANARY, rawRequest, startApp, type TestApp } from "../test/helpers";
import { PoetryStore } from "./poetry-store";

describe("/poetry/", () => {
  let t: TestApp;
  let dir: string;
  let poems: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "poetry-"));
    poems = join(dir, "poems");
    await mkdir(join(poems, "sub"), { recursive: true });
    await writeFile(join(dir, "canary.txt"), CANARY);
    await writeFile(join(poems, "a.txt"), "first poem\n");
    await writeFile(join(poems, "<b&c>.txt"), "odd name\n");
    await writeFile(join(poems, ".secret"), CANARY);
    // Names no request can ask for (the route refuses backslashes and control characters): never listed.
    for (const name of ["back\\slash.txt", "new\nline.txt", "tab\t.txt"])
      await writeFile(join(poems, name), "unaskable\n");
    await writeFile(join(poems, "sub", "b.txt"), "second poem\n");
    await symlink(join(dir, "canary.txt"), join(poems, "escape.txt"));
    await symlink(dir, join(poems, "escape-dir"));
    await symlink("a.txt", join(poems, "alias.txt"));
    t = await startApp({ poetry: await PoetryStore.open(poems, 0) });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true });
  });

  it("lists poems and directories as HTML, escaped, without dot-files or escaping symlinks", async () => {
    const res = await fetch(`${t.url}/poetry/`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<a href="a.txt">a.txt</a>');
    expect(html).toContain('<a href="sub/">sub/</a>');
    expect(html).toContain('<a href="alias.txt">alias.txt</a>');
    expect(html).toContain('<a href="%3Cb%26c%3E.txt">&lt;b&amp;c&gt;.txt</a>');
    for (const hidden of [".secret", "escape.txt", "escape-dir"]) expect(html).not.toContain(hidden);
  });

  it("lists as JSON on Accept: application/json", async () => {
    const res = await fetch(`${t.url}/poetry/`, { headers: { Accept: "application/json" } });
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(res.headers.get("vary")).toMatch(/\bAccept\b/);
    expect((await fetch(`${t.url}/poetry/sub/`)).headers.get("vary")).toMatch(/\bAccept\b/);
    expect(await res.json()).toEqual({
      path: "/poetry/",
      directories: ["sub"],
      poems: ["<b&c>.txt", "a.txt", "alias.txt"],
    });
    const sub = await fetch(`${t.url}/poetry/sub/`, { headers: { Accept: "application/json" } });
    expect(await sub.json()).toEqual({ path: "/poetry/sub/", directories: [], poems: ["b.txt"] });
  });

  it("serves a poem as UTF-8 text with ETag and Last-Modified, and 304 on a conditional GET", async () => {
    const res = await fetch(`${t.url}/poetry/sub/b.txt`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/plain; charset=utf-8");
    expect(await res.text()).toBe("second poem\n");
    const etag = res.headers.get("etag")!;
    const lastModified = res.headers.get("last-modified")!;
    expect(etag).toMatch(/^"[^"]+"$/);
    expect(new Date(lastModified).getTime()).toBeGreaterThan(0);
    // rawRequest, because fetch adds Cache-Control: no-cache to conditional requests.
    const byTag = await rawRequest(t.url, "/poetry/sub/b.txt", { headers: { "If-None-Match": etag } });
    expect(byTag.status).toBe(304);
    expect(byTag.body).toBe("");
    const byDate = await rawRequest(t.url, "/poetry/sub/b.txt", { headers: { "If-Modified-Since": lastModified } });
    expect(byDate.status).toBe(304);
    const stale = await rawRequest(t.url, "/poetry/sub/b.txt", { headers: { "If-None-Match": '"other"' } });
    expect(stale.status).toBe(200);
  });

  it("serves a symlink that stays inside the directory", async () => {
    expect(await (await fetch(`${t.url}/poetry/alias.txt`)).text()).toBe("first poem\n");
  });

  it("redirects /poetry and directories without a trailing slash", async () => {
    for (const [from, to] of [
      ["/poetry", "/poetry/"],
      ["/poetry/sub", "/poetry/sub/"],
    ]) {
      const res = await fetch(`${t.url}${from}`, { redirect: "manual" });
      expect(res.status, from).toBe(301);
      expect(res.headers.get("location")).toBe(to);
    }
  });

  it("serves an edited poem, with a new ETag", async () => {
    await writeFile(join(poems, "changing.txt"), "version one\n");
    const first = await fetch(`${t.url}/poetry/changing.txt`);
    expect(await first.text()).toBe("version one\n");
    await writeFile(join(poems, "changing.txt"), "version two, longer\n");
    await utimes(join(poems, "changing.txt"), new Date(), new Date(Date.now() + 5000));
    const second = await fetch(`${t.url}/poetry/changing.txt`);
    expect(await second.text()).toBe("version two, longer\n");
    expect(second.headers.get("etag")).not.toBe(first.headers.get("etag"));
  });

  it("answers 404 for a Unix socket or a FIFO, as for any other non-poem, and logs no failure", async () => {
    const socket = createServer();
    await new Promise<void>((resolve) => socket.listen(join(poems, "socket.txt"), resolve));
    execFileSync("mkfifo", [join(poems, "fifo.txt")]);
    try {
      for (const name of ["socket.txt", "fifo.txt"]) {
        const res = await rawRequest(t.url, `/poetry/${name}`);
        expect(res.status, name).toBe(404);
        expect(await (await fetch(`${t.url}/poetry/`)).text()).not.toContain(name);
      }
      expect(t.logs.filter((l) => l.msg === "request failed")).toEqual([]);
    } finally {
      await new Promise((resolve) => socket.close(resolve));
      await rm(join(poems, "fifo.txt"));
    }
  });

  it.each([
    ["/poetry/../canary.txt", 400],
    ["/poetry/..%2fcanary.txt", 400],
    ["/poetry/%2e%2e/canary.txt", 400],
    ["/poetry/%2e%2e%2fcanary.txt", 400],
    ["/poetry/sub/../../canary.txt", 400],
    ["/poetry/..\\canary.txt", 400],
    ["/poetry/..%5ccanary.txt", 400],
    ["/poetry/%c0%ae%c0%ae/canary.txt", 400],
    ["/poetry/%c0%af", 400],
    ["/poetry/a.txt%00.html", 400],
    ["/poetry/%ff", 400],
    ["/poetry/./a.txt", 400],
    ["/poetry//etc/passwd", 400],
    ["/poetry/%252e%252e/canary.txt", 404],
    ["/poetry/.secret", 404],
    ["/poetry/escape.txt", 404],
    ["/poetry/escape-dir/canary.txt", 404],
    ["/poetry/escape-dir/", 404],
    [`/poetry/${"a".repeat(4000)}`, 404],
  ])("%s never leaves the directory (%d)", async (path, status) => {
    const res = await rawRequest(t.url, path);
    expect(res.status).toBe(status);
    expect(res.body).not.toContain(CANARY);
  });
});

describe("a poetry directory that is not there", () => {
  it("cannot be opened, so the app runs without poetry", async () => {
    await expect(PoetryStore.open("/nonexistent/poems")).rejects.toThrow();
    const file = join(await mkdtemp(join(tmpdir(), "poetry-")), "file.txt");
    await writeFile(file, "not a directory");
    await expect(PoetryStore.open(file)).rejects.toThrow(/is not a directory/);
  });
});
