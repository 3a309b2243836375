// The reliability suite's tools: the built bundle as a real child process, raw loopback sockets, RSS samples, and a
// DevTools Protocol session for reading the service's heap.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { Agent, get } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import {
  closedPort,
  kill,
  type LogLine,
  type ServiceProcess,
  serviceDir,
  startService as startProcess,
} from "../service-process.mjs";

export { closedPort, kill, type LogLine, serviceDir };

/** A running service process and what it has said so far. */
export interface Service extends ServiceProcess {
  /** Current resident set size in KiB. */
  rssKiB(): number;
}

/**
 * Start `node …nodeArgs <bundle> --port 127.0.0.1:0 --log-format json …args` and wait for its "accepting connections"
 * line; the bundle is built by `npm run test:reliability` before vitest starts. `stalledStdout`: stop reading its
 * stdout after that line, as a log shipper that hangs would; the pipe fills (Node and the kernel buffer about 128 KiB)
 * and `logs` stops growing. `prefix`: a command the node command line is handed to (`sh -c 'ulimit -n 256 && exec "$@"'`).
 */
export async function startService(
  args: string[],
  options: {
    bundle?: string;
    env?: NodeJS.ProcessEnv;
    nodeArgs?: string[];
    stalledStdout?: boolean;
    prefix?: string[];
  } = {},
): Promise<Service> {
  const { bundle, env, nodeArgs, stalledStdout, prefix } = options;
  const service = await startProcess({
    script: bundle,
    args: ["--port", "127.0.0.1:0", "--log-format", "json", ...args],
    env,
    nodeArgs,
    prefix,
  });
  if (stalledStdout) service.child.stdout!.pause();
  // Object.assign, not a spread: a spread would copy `logs` once instead of keeping its getter.
  return Object.assign(service, {
    rssKiB: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${service.child.pid}/status`, "utf8"))?.[1]),
  });
}

/** What Node itself writes on stderr for `--inspect`: the session's URL, the help link, each debugger's arrival. */
export const INSPECTOR_STDERR =
  /^(Debugger listening on ws:\/\/\S+|For help, see: https:\/\/nodejs\.org\/\S+|Debugger attached\.)$/;

/** A Chrome DevTools Protocol session: each command resolves with its result or rejects with its error. */
export interface Inspector {
  call(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): void;
}

/**
 * Attach to a service started with `nodeArgs: ["--inspect=127.0.0.1:0"]`, at the URL Node printed on stderr.
 * Needs a global WebSocket: Node 22 has one, Node 20 with --experimental-websocket (the suite's vitest config).
 */
export async function inspect(service: Service): Promise<Inspector> {
  const url = /Debugger listening on (ws:\/\/\S+)/.exec(service.stderr())?.[1];
  if (!url) throw new Error(`no inspector URL on the service's stderr: ${service.stderr()}`);
  const socket = new WebSocket(url);
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = () => reject(new Error(`cannot connect to the inspector at ${url}`));
  });
  const pending = new Map<
    number,
    { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }
  >();
  socket.onmessage = (event: MessageEvent) => {
    const message = JSON.parse(event.data as string) as {
      id?: number;
      result?: Record<string, unknown>;
      error?: { message: string };
    };
    const waiting = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiting) return; // an event: none is enabled, so none is awaited
    pending.delete(message.id!);
    if (message.error) waiting.reject(new Error(`${waiting.method}: ${message.error.message}`));
    else waiting.resolve(message.result ?? {});
  };
  let nextId = 1;
  return {
    call(method, params = {}) {
      const id = nextId++;
      socket.send(JSON.stringify({ id, method, params }));
      return new Promise((resolve, reject) => pending.set(id, { resolve, reject, method }));
    },
    close: () => socket.close(),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What came back on a raw connection: every byte, the status line's code (0 if none) and why it ended. */
export interface RawResult {
  bytes: Buffer;
  status: number;
  ended: "closed" | "timeout" | "error";
  ms: number;
}

/**
 * Send `request` as raw bytes on a new loopback connection (no client-side validation or normalisation) and read
 * until the server closes the connection or `timeoutMs` passes.
 */
export function rawExchange(port: number, request: Buffer | string, timeoutMs = 5000): Promise<RawResult> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const chunks: Buffer[] = [];
    const socket = connect(port, "127.0.0.1", () => socket.write(request));
    const done = (ended: RawResult["ended"]) => {
      clearTimeout(timer);
      socket.destroy();
      const bytes = Buffer.concat(chunks);
      resolve({ bytes, status: statusOf(bytes), ended, ms: performance.now() - t0 });
    };
    const timer = setTimeout(() => done("timeout"), timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => done("closed"));
    socket.on("close", () => done("closed"));
    socket.on("error", () => done("error"));
  });
}

export function statusOf(bytes: Buffer): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(bytes.subarray(0, 16).toString("latin1"))?.[1] ?? 0);
}

/** A GET with `Connection: close`, the path sent byte for byte. */
export function rawGet(port: number, path: Buffer | string, headers = ""): Promise<RawResult> {
  return rawExchange(
    port,
    Buffer.concat([
      Buffer.from("GET "),
      typeof path === "string" ? Buffer.from(path, "latin1") : path,
      Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`),
    ]),
  );
}

const autocannonCli = join(serviceDir, "..", "node_modules", "autocannon", "autocannon.js");

/** autocannon in its own process (it needs a core of its own): `connections` connections on `url` for `seconds`. */
export function autocannon(
  url: string,
  seconds: number,
  connections = 50,
): Promise<{ requests: number; non2xx: number; errors: number }> {
  return new Promise((resolve, reject) => {
    const args = [autocannonCli, "-c", String(connections), "-d", String(seconds), "-n", "-j", url];
    execFile(process.execPath, args, { maxBuffer: 1 << 24 }, (err, stdout) => {
      if (err) return reject(err);
      const r = JSON.parse(stdout) as { requests: { total: number }; non2xx: number; errors: number };
      resolve({ requests: r.requests.total, non2xx: r.non2xx, errors: r.errors });
    });
  });
}

/** Percentile (0–100) of an unsorted list. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Print a figure so it shows in CI output (vitest passes console output through). */
export function report(title: string, figures: Record<string, unknown>): void {
  console.log(`[reliability] ${title}: ${JSON.stringify(figures)}`);
}

/** GET every path, eight at a time; status counts. */
export async function getAll(port: number, paths: string[]): Promise<Record<number, number>> {
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const statuses: Record<number, number> = {};
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const path = paths[next++]!;
      const status = await new Promise<number>((resolve, reject) => {
        get({ host: "127.0.0.1", port, path, agent }, (res) =>
          res.resume().on("end", () => resolve(res.statusCode!)),
        ).on("error", reject);
      });
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  agent.destroy();
  return statuses;
}

/** One scrape of /metrics: the value of each unlabelled sample named (NaN for one not there). */
export async function metricValues(port: number, names: string[]): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Object.fromEntries(names.map((n) => [n, Number(new RegExp(`^${n} (\\S+)$`, "m").exec(text)?.[1])]));
}
