import { readdirSync } from "node:fs";
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { type AppOptions, createApp } from "../src/app";
import { type Config, parseCommand } from "../src/config";
import { createLogger, type Logger } from "../src/logger";
import { type ClientErrorObserver, createHttpServer, type Lifecycle, listen } from "../src/server";

/** A running app on an ephemeral loopback port, its log lines and its lifecycle. */
export interface TestApp {
  url: string;
  logs: Array<Record<string, unknown>>;
  lifecycle: Lifecycle;
  close(): Promise<void>;
}

/** Start the real app behind the real server on 127.0.0.1; AWS metadata points at a closed loopback port by default. */
export async function startApp(overrides: Partial<AppOptions> = {}): Promise<TestApp> {
  const { logger, logs } = captureLogs();
  const lifecycle: Lifecycle = { shuttingDown: false };
  const { app, onClientError } = createApp({
    logger,
    poetry: undefined,
    lifecycle,
    trustProxy: false,
    location: "",
    awsMetadataUrl: "http://127.0.0.1:9",
    env: {},
    ...overrides,
  });
  const { url, close } = await serve(app.callback(), onClientError, lifecycle);
  return { url, logs, lifecycle, close };
}

/** A JSON logger at level info whose lines are parsed into `logs` as they are written. */
export function captureLogs(): { logger: Logger; logs: Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  const logs: Array<Record<string, unknown>> = [];
  stream.on("data", (chunk: Buffer) => {
    for (const line of chunk.toString().split("\n").filter(Boolean)) logs.push(JSON.parse(line));
  });
  return { logger: createLogger("json", "info", stream), logs };
}

/** Serve `handler` (an app's callback) behind the real server (createHttpServer) on an ephemeral 127.0.0.1 port. */
export async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  onClientError: ClientErrorObserver = () => {},
  lifecycle: Lifecycle = { shuttingDown: false },
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createHttpServer(handler, 5000, onClientError, lifecycle);
  const { port } = await listen(server, 0, "127.0.0.1");
  return { url: `http://127.0.0.1:${port}`, close: () => closeServer(server) };
}

/** A plain loopback HTTP server for playing a remote party (metadata service, collector). */
export async function startStub(
  handler: Parameters<typeof createServer>[1],
): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, server, close: () => closeServer(server) };
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Wait until `check` returns a value, polling every 20 ms, or fail after `ms`. */
export async function waitFor<T>(check: () => T | undefined, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A GET (or other method) with the path sent exactly as given: fetch would normalise dot-segments away. */
export function rawRequest(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { hostname, port, path, method: init.method ?? "GET", headers: init.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString("latin1") }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

/** The configuration `argv` and `env` give, for a command line that runs the service (throws for --help and --version). */
export function runConfig(argv: string[], env: NodeJS.ProcessEnv = {}): Config {
  const command = parseCommand(argv, env);
  if (command.kind !== "run") throw new Error(`expected run, got ${command.kind}`);
  return command.config;
}

/** Text placed just outside a served poetry directory: a response that contains it has leaked a file from outside. */
export const CANARY = "CANARY-7f3a-never-serve-me";

/** How many descriptors this process holds now (a leak shows as one more after the code under test ran). */
export function openDescriptors(): number {
  return readdirSync("/proc/self/fd").length;
}
