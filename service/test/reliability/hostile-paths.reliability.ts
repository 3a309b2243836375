import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kill, type RawResult, rawGet, report, type Service, startService } from "./harness";

// A canary file beside the poetry directory (and in a sibling directory), and symlinks inside the poetry directory
// that lead out to it: nothing the corpus sends may bring its bytes back.
const CANARY = `CANARY-${randomBytes(12).toString("hex")}`;
let dir: string;
let service: Service | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "dummyapp-hostile-"));
  const poetry = join(dir, "poetry");
  await mkdir(join(poetry, "sub"), { recursive: true });
  await mkdir(join(dir, "secret"));
  await writeFile(join(dir, "canary.txt"), CANARY);
  await writeFile(join(dir, "secret", "canary.txt"), CANARY);
  await writeFile(join(poetry, "a.txt"), "A poem.\n");
  await writeFile(join(poetry, "sub", "b.txt"), "B poem.\n");
  await writeFile(join(poetry, ".hidden.txt"), CANARY);
  await symlink("a.txt", join(poetry, "inside.txt"));
  await symlink("../canary.txt", join(poetry, "out.txt"));
  await symlink(join(dir, "canary.txt"), join(poetry, "abs.txt"));
  await symlink("../secret", join(poetry, "outdir"));
  await symlink("..", join(poetry, "up"));
  await symlink("../..", join(poetry, "sub", "up2"));
  service = await startService(["--poetry-dir", poetry]);
});

afterAll(async () => {
  kill(service);
  await rm(dir, { recursive: true, force: true });
});

const utf8 = (s: string) => Buffer.from(s, "utf8");

/** The hostile corpus: paths after `/poetry/`, as the exact bytes to put on the request line. */
function corpus(): Array<string | Buffer> {
  const dots = [
    "..",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e.",
    "%252e%252e",
    "%c0%ae%c0%ae",
    "%e0%80%ae%e0%80%ae",
    "%c0%2e%c0%2e",
    "..%00",
    "%ef%bc%8e%ef%bc%8e",
    "%u002e%u002e",
  ];
  const separators = ["/", "\\", "%2f", "%2F", "%5c", "%5C", "%252f", "%c0%af", "%e0%80%af", "%ef%bc%8f", "//", "/./"];
  const paths: Array<string | Buffer> = [];
  for (const dot of dots) {
    for (const sep of separators) {
      for (let depth = 1; depth <= 3; depth++) paths.push(`${`${dot}${sep}`.repeat(depth)}canary.txt`);
    }
  }
  paths.push(
    // symlinks inside the directory whose targets are outside it
    "out.txt",
    "abs.txt",
    "outdir",
    "outdir/",
    "outdir/canary.txt",
    "up",
    "up/",
    "up/canary.txt",
    "up/secret/canary.txt",
    "sub/up2/canary.txt",
    "sub/up2/",
    "%6fut.txt",
    "o%75t.txt",
    "outdir%2fcanary.txt",
    // dot-files and dot-segments
    ".hidden.txt",
    "%2ehidden.txt",
    "sub/../.hidden.txt",
    ".",
    "./",
    "./a.txt",
    "sub/./b.txt",
    "sub/../a.txt",
    "sub/..",
    "sub/%2e%2e/a.txt",
    ".%2fa.txt",
    // absolute and foreign-system paths
    "/etc/passwd",
    "%2fetc%2fpasswd",
    "\\etc\\passwd",
    "C:\\Windows\\win.ini",
    "C:%5cWindows%5cwin.ini",
    "file:///etc/passwd",
    "//canary.txt",
    "%2f..%2fcanary.txt",
    // malformed percent-encoding
    "%",
    "%%",
    "%zz",
    "a.txt%",
    "%e0%80",
    "%c0",
    "%ff%fe",
    "%ed%a0%80",
    // very long segments and paths
    "a".repeat(256),
    `${"a".repeat(1000)}.txt`,
    "x/".repeat(2000),
    "a".repeat(17_000),
  );
  // NUL and control bytes, percent-encoded and raw
  for (let c = 0; c < 0x20; c++) paths.push(`a.txt%${c.toString(16).padStart(2, "0")}`);
  paths.push(
    "a.txt%7f",
    Buffer.from("a.txt\x00"),
    Buffer.from("a\x01.txt"),
    Buffer.from("\x7f"),
    Buffer.from("a.txt\t"),
  );
  // unicode look-alikes of dots and slashes, raw UTF-8 and encoded
  for (const s of [
    "．．／canary.txt",
    "‥/canary.txt",
    "．．/canary.txt",
    "..／canary.txt",
    "⁄..⁄canary.txt",
    "﹒﹒/canary.txt",
  ]) {
    paths.push(utf8(s), encodeURIComponent(s));
  }
  return paths;
}

/** Send every path with a few connections at a time. */
async function sendAll(paths: Array<string | Buffer>, port: number): Promise<RawResult[]> {
  const results: RawResult[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      const path = paths[i]!;
      results[i] = await rawGet(
        port,
        Buffer.concat([Buffer.from("/poetry/"), typeof path === "string" ? Buffer.from(path, "latin1") : path]),
      );
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return results;
}

describe("hostile paths against /poetry/", () => {
  it("never returns the canary, never answers 5xx, refuses every path that leaves the directory, and keeps serving", async () => {
    const port = service!.port;
    const paths = corpus();
    expect(paths.length).toBeGreaterThanOrEqual(300);

    const results = await sendAll(paths, port);
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    report("hostile paths", { paths: paths.length, statuses: Object.fromEntries(statuses) });

    const show = (i: number) => `${String(paths[i])} -> ${results[i]!.bytes.subarray(0, 200).toString("latin1")}`;
    const leaked = results.flatMap((r, i) => (r.bytes.includes(CANARY) ? [show(i)] : []));
    expect(leaked).toEqual([]);
    const notRefused = results.flatMap((r, i) => (r.status >= 400 && r.status < 500 ? [] : [show(i)]));
    expect(notRefused).toEqual([]);

    // The same server still serves: health, a poem, a poem in a sub-directory and a symlink that stays inside.
    for (const [path, body] of [
      ["/healthz", "ok\n"],
      ["/poetry/a.txt", "A poem.\n"],
      ["/poetry/sub/b.txt", "B poem.\n"],
      ["/poetry/inside.txt", "A poem.\n"],
    ]) {
      const r = await rawGet(port, path!);
      expect(r.status, path).toBe(200);
      expect(r.bytes.toString("latin1").endsWith(`\r\n\r\n${body}`), path).toBe(true);
    }
    expect(service!.logs.filter((l) => l.level >= 50)).toEqual([]);
  });
});
