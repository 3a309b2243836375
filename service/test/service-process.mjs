// The service bundle as a child process, for the tests, the reliability suite, the ci probe test and the bench: build
// it, start it until it is ready, read what it says, stop it. Plain JavaScript with JSDoc types, so that the bench can
// import it with node alone and the TypeScript tests can check its types.
import { spawn, spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const serviceDir = fileURLToPath(new URL("..", import.meta.url));
/** What `npm run build` writes and `npm start` runs. */
export const defaultBundle = join(serviceDir, "dist", "main.js");
const buildScript = join(serviceDir, "build.mjs");

/** @typedef {Record<string, unknown> & { level: number; msg: string }} LogLine */
/** @typedef {{ code: number | null; signal: NodeJS.Signals | null }} Exit */

/**
 * A running service process and what it has said so far.
 * @typedef {object} ServiceProcess
 * @property {number} port
 * @property {string} url `http://127.0.0.1:<port>`
 * @property {import("node:child_process").ChildProcess} child
 * @property {LogLine[]} logs its stdout's JSON lines, when stdout is piped (parsed when read)
 * @property {() => string} stderr what it wrote on stderr so far, when stderr is piped
 * @property {Promise<Exit>} exit resolves when the process has exited and its output has all been read
 * @property {number} startMs from spawn to ready
 * @property {(signal?: NodeJS.Signals) => Promise<Exit & { ms: number }>} stop send `signal` (SIGTERM) unless it has
 *   exited, then its exit and how long it took
 */

/**
 * Run build.mjs: the bundle at `outfile`, stamped by `env` (VERSION, BUILD_TAGS, … on top of this process's).
 * @param {string} [outfile]
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {import("node:child_process").SpawnSyncReturns<string>} its exit status and output
 */
export function buildBundle(outfile = defaultBundle, env = {}) {
  return spawnSync(process.execPath, [buildScript, "--outfile", outfile], {
    env: { ...process.env, ...env },
    encoding: "utf8",
  });
}

/** @param {string} dir */
function newestMtime(dir) {
  return Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => statSync(join(dir, e.name)).mtimeMs));
}

/** Build the default bundle when it is missing or older than its sources; throw with build's stderr if that fails. */
export function ensureBundle() {
  let built = 0;
  try {
    built = statSync(defaultBundle).mtimeMs;
  } catch {}
  if (built >= Math.max(newestMtime(join(serviceDir, "src")), statSync(buildScript).mtimeMs)) return;
  const result = buildBundle();
  if (result.status !== 0) throw new Error(`build failed (exit ${result.status}): ${result.stderr}`);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr);
}

/** @param {string} url @returns {Promise<boolean>} whether a GET on a fresh connection answers 200 */
function answers200(url) {
  return new Promise((resolve) => {
    get(url, { agent: false }, (res) => resolve(res.resume().statusCode === 200)).on("error", () => resolve(false));
  });
}

/**
 * Start `[…prefix] <node> …nodeArgs <script> …args` with `env` on top of `{ PATH, CRASH_GUARD: "off" }`, and wait until
 * it is ready: by default its "accepting connections" log line (the port comes from it); with `readyUrl`, the first 200
 * from a GET there (for a stdout that is not piped). If it exits first or is not ready within `timeoutMs`, it is killed
 * and, once it has ended, the promise rejects with its stderr.
 * @param {object} [options]
 * @param {string[]} [options.args] the script's arguments
 * @param {NodeJS.ProcessEnv} [options.env]
 * @param {string} [options.script] what node runs: the default bundle unless said
 * @param {string} [options.node] the Node binary: this process's unless said
 * @param {string[]} [options.nodeArgs] flags for node itself (--inspect, --cpu-prof, …)
 * @param {string[]} [options.prefix] a command that runs node, such as setpriv
 * @param {"pipe" | "ignore" | number} [options.stdout] "pipe" (read into `logs`), "ignore" (/dev/null) or a file descriptor
 * @param {"pipe" | "inherit"} [options.stderr] "pipe" (read into `stderr()`) or this process's stderr
 * @param {string} [options.readyUrl]
 * @param {number} [options.timeoutMs]
 * @returns {Promise<ServiceProcess>}
 */
export async function startService(options = {}) {
  const { args = [], env = {}, script = defaultBundle, node = process.execPath, nodeArgs = [], prefix = [] } = options;
  const { stdout = "pipe", stderr: stderrMode = "pipe", readyUrl, timeoutMs = 10_000 } = options;
  const t0 = performance.now();
  const [command, ...commandArgs] = [...prefix, node, ...nodeArgs, script, ...args];
  const child = spawn(/** @type {string} */ (command), commandArgs, {
    env: { PATH: process.env.PATH, CRASH_GUARD: "off", ...env },
    stdio: ["ignore", stdout, stderrMode],
  });
  // Lines are kept as text and parsed when `logs` is read: under load, parsing every line as it came made this
  // process a reader slow enough for the service to drop log lines (it drops past 1 MiB waiting).
  /** @type {string[]} */
  const lines = [];
  /** @type {LogLine[]} */
  const parsed = [];
  const logs = () => {
    for (let i = parsed.length; i < lines.length; i++) parsed.push(JSON.parse(/** @type {string} */ (lines[i])));
    return parsed;
  };
  let partial = "";
  child.stdout?.on("data", (/** @type {Buffer} */ chunk) => {
    const text = (partial + chunk.toString()).split("\n");
    partial = /** @type {string} */ (text.pop());
    for (const line of text) if (line) lines.push(line);
  });
  let stderr = "";
  child.stderr?.on("data", (/** @type {Buffer} */ chunk) => (stderr += chunk.toString()));
  // "close", not "exit": the last log lines may still be in the pipe when the process exits, and tests read them after.
  /** @type {Promise<Exit>} */
  const exit = new Promise((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  let exited = false;
  child.on("exit", () => (exited = true));

  const deadline = Date.now() + timeoutMs;
  /** @type {number | undefined} */
  let port;
  while (port === undefined) {
    if (readyUrl === undefined)
      port = /** @type {number | undefined} */ (logs().find((l) => l.msg === "accepting connections")?.port);
    else if (await answers200(readyUrl)) port = Number(new URL(readyUrl).port);
    if (port !== undefined) break;
    if (exited || Date.now() > deadline) {
      const why = exited ? `exit ${child.exitCode ?? child.signalCode}` : `not ready in ${timeoutMs} ms`;
      child.kill("SIGKILL");
      await exit; // all of its stderr read, and no process left behind
      throw new Error(`service did not start (${why}): ${stderr}`);
    }
    // Short: the bench's cold-start figure is spawn to ready.
    await new Promise((r) => setTimeout(r, 2));
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    get logs() {
      return logs();
    },
    stderr: () => stderr,
    exit,
    startMs: performance.now() - t0,
    async stop(signal = "SIGTERM") {
      const t1 = performance.now();
      if (!exited) child.kill(signal);
      return { ...(await exit), ms: Math.round(performance.now() - t1) };
    },
  };
}

/**
 * Kill a service that a failed test left running (no-op once it has exited).
 * @param {ServiceProcess | undefined} service
 */
export function kill(service) {
  if (service && service.child.exitCode === null && service.child.signalCode === null) service.child.kill("SIGKILL");
}

/** @returns {Promise<number>} a loopback port nothing listens on (bound, then released), for a server to be given */
export function closedPort() {
  return new Promise((resolve, reject) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (probe.address());
      probe.close(() => resolve(port));
    });
    probe.on("error", reject);
  });
}
