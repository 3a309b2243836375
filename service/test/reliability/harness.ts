// The reliability suite's tools: the built bundle as a real child process, raw loopback sockets, RSS samples.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const serviceDir = fileURLToPath(new URL("../..", import.meta.url));
/** Built by `npm run test:reliability` before vitest starts. */
export const bundle = join(serviceDir, "dist", "main.js");

export type LogLine = Record<string, unknown> & { level: number; msg: string };

/** A running service process and what it has said so far. */
export interface Service {
  port: number;
  url: string;
  child: ChildProcess;
  logs: LogLine[];
  stderr: () => string;
  /** Resolves when the process exits. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Current resident set size in KiB. */
  rssKiB(): number;
  /** SIGTERM, then the exit code and how long the exit took. */
  stop(): Promise<{ code: number | null; ms: number }>;
}

/** Start `node <bundle> --port 127.0.0.1:0 --log-format json …args` and wait for its "accepting connections" line. */
export async function startService(args: string[], options: { bundle?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Service> {
  const child = spawn(process.execPath, [options.bundle ?? bundle, "--port", "127.0.0.1:0", "--log-format", "json", ...args], {
    env: { PATH: process.env.PATH, CRASH_GUARD: "off", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: LogLine[] = [];
  let partial = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) if (line) logs.push(JSON.parse(line) as LogLine);
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + 10_000;
  let port: number | undefined;
  while (port === undefined) {
    port = logs.find((l) => l.msg === "accepting connections")?.port as number | undefined;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`service did not start: ${stderr}`);
    }
    await sleep(20);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    child,
    logs,
    stderr: () => stderr,
    exit,
    rssKiB: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]),
    async stop() {
      const t0 = performance.now();
      if (child.exitCode === null) child.kill("SIGTERM");
      const { code } = await exit;
      return { code, ms: Math.round(performance.now() - t0) };
    },
  };
}

/** Kill a service that a failed test left running (no-op once it has exited). */
export function kill(service: Service | undefined): void {
  if (service && service.child.exitCode === null && service.child.signalCode === null) service.child.kill("SIGKILL");
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback port nothing listens on (bound, then released). */
export function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

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
    Buffer.concat([Buffer.from("GET "), typeof path === "string" ? Buffer.from(path, "latin1") : path, Buffer.from(` HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`)]),
  );
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
