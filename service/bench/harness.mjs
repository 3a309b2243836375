// What bench.mjs and profile.mjs share: where things are, starting the servers, and one autocannon run.
import { execFileSync } from "node:child_process";
import { get } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { closedPort, defaultBundle, serviceDir, startService } from "../test/service-process.mjs";

export { ensureBundle } from "../test/service-process.mjs";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = join(serviceDir, "..");
export const bundle = defaultBundle;
export const poetryDir = join(serviceDir, "sample-poetry");
export const poemName = "small-hours.txt";
/** Every server the bench can run: the service and the reference servers (reference-servers.mjs). */
export const kinds = ["service", "koa", "koa-router", "baseline"];
const autocannonBin = join(repo, "node_modules", "autocannon", "autocannon.js");

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

/**
 * Start one server (the service bundle, or a reference server) and wait for its first 200 on /healthz; `startMs` is the
 * time from spawn to that answer; `stop()` sends SIGTERM and waits for its exit. Its JSON request logs go to /dev/null:
 * serialised and written all the same.
 * @param nodeArgs flags for node itself, such as --cpu-prof.
 * @param options `serviceBundle`: another build of the service to run (another commit's, to compare).
 */
export async function startServer(kind, nodeArgs = [], { serviceBundle = bundle } = {}) {
  if (!kinds.includes(kind)) throw new Error(`server ${kind}: expected one of ${kinds.join(", ")}`);
  const port = await closedPort();
  const [script, ...args] =
    kind === "service"
      ? [serviceBundle, "--port", `127.0.0.1:${port}`, "--poetry-dir", poetryDir, "--log-format", "json"]
      : [join(here, "reference-servers.mjs"), kind, String(port), join(poetryDir, poemName)];
  const readyUrl = `http://127.0.0.1:${port}/healthz`;
  return {
    kind,
    ...(await startService({
      script,
      args,
      env: process.env,
      nodeArgs,
      stdout: "ignore",
      stderr: "inherit",
      readyUrl,
    })),
  };
}

/** One autocannon run in its own process, so it never shares the server's core; its JSON result. */
export function autocannon(port, path, seconds, { connections = "100", pipelining = "10" } = {}) {
  const args = [autocannonBin, "-c", String(connections), "-p", String(pipelining), "-d", String(seconds), "-n", "-j"];
  const result = JSON.parse(
    execFileSync(process.execPath, [...args, `http://127.0.0.1:${port}${path}`], { maxBuffer: 1 << 24 }),
  );
  if (result.errors || result.timeouts || result.non2xx) {
    throw new Error(`load on ${path}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`);
  }
  return result;
}
