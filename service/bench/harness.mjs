// What bench.mjs and profile.mjs share: where things are, starting and stopping the servers, and one autocannon run.
import { execFileSync, spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
export const serviceDir = join(here, "..");
export const repo = join(serviceDir, "..");
export const bundle = join(serviceDir, "dist", "main.js");
export const poetryDir = join(serviceDir, "sample-poetry");
export const poemName = "small-hours.txt";
/** Every server the bench can run: the service and the reference servers (reference-servers.mjs). */
export const kinds = ["service", "koa", "koa-router", "baseline"];
const autocannonBin = join(repo, "node_modules", "autocannon", "autocannon.js");

function newestMtime(dir) {
  return Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => statSync(join(dir, e.name)).mtimeMs));
}

/** Build the bundle when it is missing or older than its sources. */
export function ensureBundle() {
  let built = 0;
  try {
    built = statSync(bundle).mtimeMs;
  } catch {}
  if (built < Math.max(newestMtime(join(serviceDir, "src")), statSync(join(serviceDir, "build.mjs")).mtimeMs)) {
    execFileSync(process.execPath, [join(serviceDir, "build.mjs")], { cwd: serviceDir, stdio: "inherit" });
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}

/** One GET on a fresh connection: status, raw headers and body. */
export function fetchRaw(port, path) {
  return new Promise((resolve, reject) => {
    const req = get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Start one server (the service bundle, or a reference server) and wait for its first 200 on /healthz; `ms` is the
 * time from spawn to that answer. Its JSON request logs go to /dev/null: serialised and written all the same.
 * @param nodeArgs flags for node itself, such as --cpu-prof.
 */
export async function startServer(kind, nodeArgs = []) {
  if (!kinds.includes(kind)) throw new Error(`server ${kind}: expected one of ${kinds.join(", ")}`);
  const port = await freePort();
  const args =
    kind === "service"
      ? [bundle, "--port", `127.0.0.1:${port}`, "--poetry-dir", poetryDir, "--log-format", "json"]
      : [join(here, "reference-servers.mjs"), kind, String(port), join(poetryDir, poemName)];
  const t0 = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ["ignore", "ignore", "inherit"] });
  let exited = false;
  child.on("exit", () => (exited = true));
  for (let i = 0; i < 2000; i++) {
    if (exited) throw new Error(`${kind} server exited during start`);
    const res = await fetchRaw(port, "/healthz").catch(() => undefined);
    if (res?.status === 200) return { kind, port, child, ms: performance.now() - t0 };
    await sleep(2);
  }
  child.kill();
  throw new Error(`${kind} server did not answer /healthz`);
}

/** SIGTERM a server and wait for it to exit. */
export function stopServer(server) {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve();
    server.child.once("exit", resolve);
    server.child.kill("SIGTERM");
  });
}

/** One autocannon run in its own process, so it never shares the server's core; its JSON result. */
export function autocannon(port, path, seconds, { connections = "100", pipelining = "10" } = {}) {
  const args = [autocannonBin, "-c", String(connections), "-p", String(pipelining), "-d", String(seconds), "-n", "-j"];
  const result = JSON.parse(execFileSync(process.execPath, [...args, `http://127.0.0.1:${port}${path}`], { maxBuffer: 1 << 24 }));
  if (result.errors || result.timeouts || result.non2xx) {
    throw new Error(`load on ${path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
  }
  return result;
}
