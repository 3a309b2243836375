// The built bundle as the container runs it: `node main.js`, configured by flags and env, stopped by SIGTERM.
import { type ChildProcess, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, createServer, get, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStub, waitFor } from "./helpers";
import {
  buildBundle,
  closedPort,
  defaultBundle,
  ensureBundle,
  type ServiceProcess,
  serviceDir,
  startService,
} from "./service-process.mjs";

const SAMPLE = join(serviceDir, "sample-poetry");
const STAMP = {
  VERSION: "9.8.7-test",
  GIT_COMMIT: "0123456789abcdef0123456789abcdef01234567",
  BUILD_TIME: "2026-01-02T03:04:05Z",
};

/**
 * Start a bundle and wait for its "accepting connections" line. With `asUser`, tests running as root start it as that
 * user through setpriv (as the image runs it, non-root), so file permissions apply to it.
 */
async function start(
  bundle: string,
  args: string[],
  env: Record<string, string> = {},
  asUser?: number,
): Promise<ServiceProcess> {
  const prefix =
    asUser !== undefined && process.getuid?.() === 0
      ? ["setpriv", `--reuid=${asUser}`, `--regid=${asUser}`, "--clear-groups"]
      : [];
  const s = await startService({ script: bundle, args, env, prefix });
  children.push(s.child);
  return s;
}

/** How it ended: the exit code, or the signal that ended it. */
async function ended(s: ServiceProcess): Promise<number | NodeJS.Signals | null> {
  const { code, signal } = await s.exit;
  return code ?? signal;
}

function runToExit(bundle: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bundle, ...args], {
    env: { PATH: process.env.PATH, CRASH_GUARD: "off", ...env },
    encoding: "utf8",
  });
}

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), tried once on an empty directory. */
const canMountTmpfs = (() => {
  const dir = spawnSync("mktemp", ["-d"], { encoding: "utf8" }).stdout.trim();
  const mounted = spawnSync("mount", ["-t", "tmpfs", "-o", "size=4k", "tmpfs", dir]).status === 0;
  if (mounted) spawnSync("umount", [dir]);
  spawnSync("rmdir", [dir]);
  return mounted;
})();

let heroku: string;
let plain: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  ensureBundle();
  const dir = spawnSync("mktemp", ["-d"], { encoding: "utf8" }).stdout.trim();
  plain = join(dir, "plain", "main.js");
  heroku = join(dir, "heroku", "main.js");
  expect(buildBundle(plain, { ...STAMP, BUILD_TAGS: "", DEFAULT_POETRY_DIR: SAMPLE }).status).toBe(0);
  expect(buildBundle(heroku, { ...STAMP, BUILD_TAGS: "heroku", DEFAULT_POETRY_DIR: SAMPLE }).status).toBe(0);
}, 60_000);

afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
});

describe("build", () => {
  it("fails on an unknown build tag, naming the known ones", () => {
    const result = buildBundle(join(tmpdir(), "never", "main.js"), { BUILD_TAGS: "heroku,bogus" });
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe('build: unknown build tag "bogus": known tags are heroku');
  });

  it("refuses an --outfile not ending in .js, which its metafile would overwrite", () => {
    const result = buildBundle(join(tmpdir(), "never", "main"));
    expect(result.status).toBe(2);
    expect(result.stderr.trim()).toBe(
      `build: invalid --outfile "${join(tmpdir(), "never", "main")}": the name must end in .js`,
    );
  });

  it("compiles the Heroku metrics code in only with the heroku tag", async () => {
    const markers = ["node.gc.young.collections", "heroku metrics push failed", "heroku metrics enabled"];
    const withTag = await readFile(heroku, "utf8");
    const without = await readFile(plain, "utf8");
    for (const marker of markers) {
      expect(withTag, marker).toContain(marker);
      expect(without, marker).not.toContain(marker);
    }
    expect(without).toContain("built without Heroku metrics support");
  });

  it("names the metafile's inputs relative to service/, from whatever directory it is run (the SBOM reads them so)", async () => {
    // These builds run from the test's working directory, the repository root.
    const meta = JSON.parse(await readFile(plain.replace(/\.js$/, ".meta.json"), "utf8"));
    const inputs = Object.keys(meta.inputs);
    expect(inputs).toContain("src/main.ts");
    expect(inputs.filter((input) => !/^(src\/|\.\.\/node_modules\/|<define:)/.test(input))).toEqual([]);
  });

  it("writes a source map and needs no node_modules at run time", async () => {
    expect(existsSync(`${plain}.map`)).toBe(true);
    const result = runToExit(plain, ["--version"], { NODE_PATH: "/nonexistent" });
    expect(result.status).toBe(0);
  });
});

describe("command line", () => {
  it("--version prints the stamp and exits 0", () => {
    const result = runToExit(heroku, ["--version"], { LOCATION: "eu-lab" });
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      `dummyapp 9.8.7-test\ncommit: ${STAMP.GIT_COMMIT}\nbuild time: ${STAMP.BUILD_TIME}\nbuild tags: heroku\nnode: ${process.version}\nlocation: eu-lab\n`,
    );
  });

  it("--help lists the options and exits 0", () => {
    const result = runToExit(plain, ["--help"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain("--poetry-dir VALUE");
  });

  it.each([
    [["--port", "70000"], {}, 'dummyapp: invalid --port "70000"'],
    [["--log-format", "xml"], {}, 'dummyapp: invalid --log-format "xml": allowed values are json, text'],
    [["--frobnicate"], {}, "dummyapp: unknown option --frobnicate: allowed options are"],
    [[], { PORT: "99999" }, 'dummyapp: invalid --port "99999"'],
    [
      [],
      { HEROKU_METRICS_URL: "ftp://user:s3cret@collector/m" },
      'dummyapp: invalid HEROKU_METRICS_URL "ftp://***@collector/m": allowed is an http(s) URL',
    ],
    [
      ["--aws-metadata-url", "file:///etc/passwd"],
      {},
      'dummyapp: invalid --aws-metadata-url "file:///etc/passwd": allowed is an http(s) URL',
    ],
    // Checked by a plain build too, as HEROKU_METRICS_URL is.
    [[], { METRICS_INTERVAL_OVERRIDE: "1000" }, 'dummyapp: invalid METRICS_INTERVAL_OVERRIDE "1000"'],
  ])("%j %j: one line on stderr, exit 2", (args, env, message) => {
    const result = runToExit(plain, args, env);
    expect(result.status).toBe(2);
    expect(result.stderr.startsWith(message)).toBe(true);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).not.toContain("s3cret");
  });

  it("keeps the crash-loop guard: a failure right after start exits no sooner than 2 s after start", () => {
    const started = Date.now();
    const result = runToExit(plain, ["--port", "70000"], { CRASH_GUARD: "on" });
    expect(result.status).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
  });

  it("reports a port in use clearly and exits non-zero", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const { port } = blocker.address() as AddressInfo;
    const result = runToExit(plain, ["--port", `127.0.0.1:${port}`]);
    blocker.close();
    expect(result.status).toBe(1);
    expect(result.stderr).toBe("dummyapp: cannot start: address already in use\n");
  });
});

describe("serving", () => {
  it("serves the sample poems by default from the npm-start bundle and logs its start", async () => {
    const s = await start(defaultBundle, ["--port", "127.0.0.1:0"], { LOCATION: "lab" });
    const { port } = s;
    const res = await fetch(`http://127.0.0.1:${port}/poetry/`, { headers: { Accept: "application/json" } });
    expect(await res.json()).toEqual({
      path: "/poetry/",
      directories: ["seasons"],
      poems: ["build-day.txt", "small-hours.txt"],
    });
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
    const startup = s.logs.find((l) => l.msg === "starting")!;
    for (const key of ["version", "commit", "buildTime", "node", "pid", "uid", "gid", "location"])
      expect(startup, key).toHaveProperty(key);
    expect(s.logs.some((l) => l.msg === "built without Heroku metrics support")).toBe(true);
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
  });

  it("answers 403 for poems and directories it may not read (as the image's non-root user)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "poetry-"));
    await chmod(dir, 0o755);
    await writeFile(join(dir, "ok.txt"), "readable\n", { mode: 0o644 });
    await writeFile(join(dir, "secret.txt"), "unreadable\n", { mode: 0o000 });
    await writeFile(join(dir, "big-secret.txt"), Buffer.alloc(2 << 20, "x"), { mode: 0o000 });
    await mkdir(join(dir, "locked"), { mode: 0o755 });
    await writeFile(join(dir, "locked", "x.txt"), "inside a locked directory\n", { mode: 0o644 });
    await chmod(join(dir, "locked"), 0o000);
    const s = await start(defaultBundle, ["--port", "127.0.0.1:0", "--poetry-dir", dir], {}, 65532);
    const { port } = s;
    try {
      expect((await fetch(`http://127.0.0.1:${port}/poetry/ok.txt`)).status).toBe(200);
      for (const path of ["secret.txt", "big-secret.txt", "locked/", "locked/x.txt"]) {
        const res = await fetch(`http://127.0.0.1:${port}/poetry/${path}`);
        expect([path, res.status, await res.text()]).toEqual([path, 403, "forbidden: the service may not read this\n"]);
      }
      expect(s.logs.filter((l) => (l.level as number) >= 50)).toEqual([]);
    } finally {
      s.child.kill("SIGTERM");
      await s.exit;
      await chmod(join(dir, "locked"), 0o755);
      await rm(dir, { recursive: true });
    }
  });

  it("warns and runs without poetry when the directory is missing", async () => {
    const s = await start(plain, ["--port", "127.0.0.1:0", "--poetry-dir", "/nonexistent/poems"]);
    const { port } = s;
    expect(s.logs.find((l) => l.level === 40)).toMatchObject({ poetryDir: "/nonexistent/poems" });
    expect((await fetch(`http://127.0.0.1:${port}/poetry/`)).status).toBe(404);
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
  });

  it("on SIGTERM finishes the request in flight, refuses new connections and exits 0", async () => {
    let tokenAsked!: () => void;
    const asked = new Promise<void>((r) => (tokenAsked = r));
    // A slow metadata service keeps GET /aws in flight while the signal arrives.
    const slow = await startStub((req, res) => {
      if (req.method === "PUT") tokenAsked();
      setTimeout(() => res.writeHead(404).end(), 800);
    });
    const s = await start(plain, ["--port", "127.0.0.1:0", "--aws-metadata-url", slow.url]);
    const { port } = s;
    const inFlight = fetch(`http://127.0.0.1:${port}/aws`);
    await asked;
    s.child.kill("SIGTERM");
    await waitFor(() => s.logs.find((l) => String(l.msg).startsWith("shutting down")));
    const refused = await new Promise<string>((resolve) => {
      const req = request({ port, host: "127.0.0.1", path: "/healthz", agent: false }, () => resolve("answered"));
      req.on("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
      req.end();
    });
    expect(refused).toBe("ECONNREFUSED");
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("AWS metadata");
    expect(await ended(s)).toBe(0);
    expect(s.logs.at(-1)).toMatchObject({ msg: "drained: exiting" });
    await slow.close();
  });

  it.each([
    ["SIGHUP", 0, "drained: exiting"],
    ["SIGQUIT", "SIGQUIT", "exiting now, without draining"],
    ["SIGUSR2", "SIGUSR2", "exiting now, without draining"],
    // Default action "terminate" too: without a handler the batch in memory was lost (20 of 21 lines for SIGALRM).
    ...(["SIGALRM", "SIGVTALRM", "SIGPROF", "SIGXCPU", "SIGXFSZ", "SIGIO", "SIGPWR", "SIGSTKFLT"] as const).map(
      (signal) => [signal, signal, "exiting now, without draining"] as const,
    ),
  ] as const)("on %s writes every log line before it ends (ends by %s)", async (signal, ending, lastMessage) => {
    const s = await start(plain, ["--port", "127.0.0.1:0"]);
    const { port } = s;
    // The start's lines have just been flushed; the next flush is up to 100 ms away, and the signal comes before it.
    const id = (await fetch(`http://127.0.0.1:${port}/healthz`)).headers.get("x-request-id");
    s.child.kill(signal);
    expect(await ended(s)).toBe(ending);
    expect(s.logs.find((l) => l.requestId === id)).toMatchObject({ msg: "request", status: 200 });
    expect(s.logs.at(-1)).toMatchObject({ msg: lastMessage });
  });

  it("leaves SIGPROF to V8's profiler under --cpu-prof (a handler would replace the one it samples with)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cpu-prof-"));
    const s = await startService({
      script: plain,
      args: ["--port", "127.0.0.1:0"],
      nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir],
    });
    children.push(s.child);
    for (let i = 0; i < 50; i++) expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
    expect((await readdir(dir)).filter((f) => f.endsWith(".cpuprofile"))).toHaveLength(1);
    await rm(dir, { recursive: true });
  });

  it("leaves SIGPROF to the inspector under --inspect, so Node does not warn that it is reserved while debugging", async () => {
    const s = await startService({
      script: plain,
      args: ["--port", "127.0.0.1:0"],
      nodeArgs: ["--inspect=127.0.0.1:0"],
    });
    children.push(s.child);
    expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
    expect(s.stderr()).not.toContain("reserved while debugging");
    expect(s.stderr()).toContain("Debugger listening on ws://127.0.0.1:");
  });

  it("ignores SIGUSR1, which would open Node's inspector (Node 20 has no --disable-sigusr1), and says so", async () => {
    // Without the listener Node 20 prints "Debugger listening…" (or that 9229 is taken) on stderr.
    const s = await start(plain, ["--port", "127.0.0.1:0"]);
    s.child.kill("SIGUSR1");
    await waitFor(() => s.logs.find((l) => l.signal === "SIGUSR1"));
    expect(s.logs.find((l) => l.signal === "SIGUSR1")).toMatchObject({
      level: 40,
      msg: expect.stringContaining("ignored"),
    });
    expect((await fetch(`http://127.0.0.1:${s.port}/healthz`)).status).toBe(200);
    expect(s.stderr()).toBe("");
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
  });

  it("with stdout on a full device (/dev/full, ENOSPC), keeps serving, counts the lost lines and says so once on stderr", async () => {
    const port = await closedPort();
    const full = openSync("/dev/full", "w");
    // No log to read the start from: ready when it answers (or failed when it has exited).
    const starting = startService({
      script: plain,
      args: ["--port", `127.0.0.1:${port}`],
      stdout: full,
      readyUrl: `http://127.0.0.1:${port}/healthz`,
    });
    closeSync(full); // spawned by now, with its own copy
    const s = await starting;
    children.push(s.child);
    const { url } = s;
    // Past the ~1,000 requests after which ENOSPC used to end the process; 20 at a time.
    const agent = new Agent({ keepAlive: true });
    const statuses = new Map<number, number>();
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 100; i++) {
          const status = await new Promise<number>((resolve, reject) => {
            get(`${url}/poetry/small-hours.txt`, { agent }, (res) =>
              res.resume().on("end", () => resolve(res.statusCode!)),
            ).on("error", reject);
          });
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    agent.destroy();
    expect([...statuses]).toEqual([[200, 2000]]);
    await new Promise((r) => setTimeout(r, 250)); // the last batch's flush
    const dropped = Number(
      /^dummyapp_log_lines_dropped_total\{reason="write_error"\} (\d+)$/m.exec(
        await (await fetch(`${url}/metrics`)).text(),
      )?.[1],
    );
    expect(dropped).toBeGreaterThanOrEqual(2000);
    expect(s.stderr()).toBe(
      'dummyapp: cannot write log lines to stdout (ENOSPC): dropping them, counted in dummyapp_log_lines_dropped_total{reason="write_error"}\n',
    );
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
  }, 30_000);

  // A real full disk, where writes come up short (tmpfs allocates whole pages): root may mount one, here and in CI's
  // privileged container; elsewhere the fileSink unit test with a short-writing fake stands in.
  it.runIf(canMountTmpfs)(
    "with stdout on a tmpfs that fills and frees again, writes or counts every line and never glues a cut one to another",
    async () => {
      const dir = await mkdtemp(join(tmpdir(), "full-tmpfs-"));
      expect(spawnSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir]).status).toBe(0);
      try {
        // Freed later, so lines are written again after the disk was full.
        await writeFile(join(dir, "filler"), Buffer.alloc(64 * 1024, "x"));
        const port = await closedPort();
        const out = openSync(join(dir, "stdout.log"), "w");
        const starting = startService({
          script: plain,
          args: ["--port", `127.0.0.1:${port}`],
          stdout: out,
          readyUrl: `http://127.0.0.1:${port}/healthz`,
        });
        closeSync(out);
        const s = await starting;
        children.push(s.child);
        // About 250 bytes a line: 1,500 lines are twice the 192 KiB left.
        const agent = new Agent({ keepAlive: true });
        const requests = async (count: number) => {
          await Promise.all(
            Array.from({ length: 20 }, async () => {
              for (let i = 0; i < count / 20; i++) {
                await new Promise<void>((resolve, reject) => {
                  get(`${s.url}/healthz?fill`, { agent }, (res) => res.resume().on("end", resolve)).on("error", reject);
                });
              }
            }),
          );
        };
        await requests(1500);
        await new Promise((r) => setTimeout(r, 250)); // the last batch's flush, into a full disk
        await rm(join(dir, "filler"));
        await requests(20);
        await new Promise((r) => setTimeout(r, 250));
        agent.destroy();
        const metrics = await (await fetch(`${s.url}/metrics`)).text();
        const dropped = Number(/^dummyapp_log_lines_dropped_total\{reason="write_error"\} (\d+)$/m.exec(metrics)?.[1]);
        s.child.kill("SIGTERM");
        expect(await ended(s)).toBe(0);
        const text = await readFile(join(dir, "stdout.log"), "utf8");
        expect(text.endsWith("\n")).toBe(true);
        // A cut line glued to a later one does not parse.
        const logged = text
          .trimEnd()
          .split("\n")
          .map((line) => JSON.parse(line) as { msg: string; query?: string });
        // This test's requests, not the readiness probe's.
        const healthz = logged.filter((l) => l.msg === "request" && l.query === "fill").length;
        expect({ dropped: dropped > 0, written: healthz > 0 }).toEqual({ dropped: true, written: true });
        expect(healthz + dropped).toBe(1520);
      } finally {
        spawnSync("umount", [dir]);
        await rm(dir, { recursive: true });
      }
    },
    30_000,
  );

  it("with the heroku tag, pushes runtime metrics to HEROKU_METRICS_URL and reports its tags", async () => {
    const posts: string[] = [];
    const collector = await startStub((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        posts.push(body);
        res.end();
      });
    });
    const s = await start(heroku, ["--port", "127.0.0.1:0"], {
      HEROKU_METRICS_URL: collector.url,
      METRICS_INTERVAL_OVERRIDE: "10000",
    });
    const { port } = s;
    expect(await (await fetch(`http://127.0.0.1:${port}/version`)).json()).toMatchObject({
      version: "9.8.7-test",
      buildTags: ["heroku"],
    });
    expect(s.logs.find((l) => l.msg === "heroku metrics enabled")).toMatchObject({ intervalMs: 10_000 });
    // The first push comes one 10 s interval after start (the shortest the override allows); allow 2.5 intervals.
    await waitFor(() => (posts.length > 0 ? true : undefined), 25_000);
    expect(Object.keys(JSON.parse(posts[0]!))).toEqual(["counters", "gauges"]);
    s.child.kill("SIGTERM");
    expect(await ended(s)).toBe(0);
    await collector.close();
  }, 30_000);
});
