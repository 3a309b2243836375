import { url as inspectorUrl } from "node:inspector";
import { createApp } from "./app";
import { buildInfo } from "./build-info";
import { type Config, ConfigError, crashGuardWanted, helpText, parseCommand } from "./config";
import { ConnectionLimit, defaultMaxConnections } from "./connection-limit";
import { closeLogger, createLogger, type Logger } from "./logger";
import { addConnectionMetrics, addPipelineMetrics } from "./metrics";
import { limitPipelining } from "./pipeline-limit";
import { PoetryStore } from "./poetry-store";
import { createHttpServer, drain, type Lifecycle, listen } from "./server";
import { versionInfo, versionText } from "./version";

// The `heroku` build tag: esbuild defines this as true or false, so the unused branch and its import vanish from the bundle.
declare const __HEROKU_METRICS__: boolean;

const CRASH_WINDOW_MS = 3000;
const CRASH_MIN_LIFETIME_MS = 2000;
const startedAt = performance.now();

/** Entry point of the bundle: parse flags and env, then serve until a signal (service/README.md: Signals). */
async function main(): Promise<void> {
  let config: Config;
  try {
    const command = parseCommand(process.argv.slice(2), process.env);
    if (command.kind === "help") return void process.stdout.write(helpText());
    if (command.kind === "version") {
      return void process.stdout.write(versionText(versionInfo(buildInfo, command.location, process.env)));
    }
    config = command.config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${buildInfo.name}: ${err.message}\n`);
    return exitAfterGuard(2, crashGuardWanted(process.argv.slice(2), process.env));
  }

  const logger = createLogger(config.logFormat, config.logLevel);
  try {
    await serve(config, logger);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const reason = e.code === "EADDRINUSE" ? "address already in use" : e.message;
    process.stderr.write(`${buildInfo.name}: cannot start: ${reason}\n`);
    logger.fatal({ err }, "cannot start");
    await closeLogger(logger);
    return exitAfterGuard(1, config.crashGuard);
  }
}

async function serve(config: Config, logger: Logger): Promise<void> {
  const { version, commit, buildTime, buildTags } = buildInfo;
  logger.info(
    {
      version,
      commit,
      buildTime,
      buildTags,
      node: process.version,
      pid: process.pid,
      uid: process.getuid?.(),
      gid: process.getgid?.(),
      location: config.location,
    },
    "starting",
  );
  const poetry = await PoetryStore.open(config.poetryDir).catch((err: Error) => {
    logger.warn(
      { poetryDir: config.poetryDir, reason: err.message },
      "poetry directory unavailable: running without the poetry pages",
    );
    return undefined;
  });
  const lifecycle: Lifecycle = { shuttingDown: false };
  const { app, metrics, onClientError } = createApp({ ...config, logger, poetry, lifecycle, env: process.env });
  const connections = new ConnectionLimit(config.maxConnections ?? defaultMaxConnections());
  const pipeline = limitPipelining(app.callback(), config.pipelineDepth, connections);
  const server = createHttpServer(pipeline.handler, config.headersTimeoutMs, onClientError, lifecycle);
  connections.attach(server);
  addPipelineMetrics(metrics.registry, pipeline);
  addConnectionMetrics(metrics.registry, connections);
  const address = await listen(server, config.port, config.host);
  logger.info(
    {
      address: address.address,
      port: address.port,
      maxConnections: connections.max,
      pipelineDepth: config.pipelineDepth,
    },
    "accepting connections",
  );

  let stopHerokuMetrics = () => {};
  if (__HEROKU_METRICS__) {
    const { startHerokuMetrics } = await import("./heroku-metrics");
    const { herokuMetricsUrl: url, herokuMetricsIntervalMs: intervalMs } = config;
    if (url) stopHerokuMetrics = startHerokuMetrics({ url, intervalMs, logger });
  } else {
    logger.info("built without Heroku metrics support");
  }

  const shutdown = async (signal: string) => {
    if (lifecycle.shuttingDown) {
      logger.warn({ signal }, "second signal: exiting now");
      return exit(logger, 1);
    }
    lifecycle.shuttingDown = true;
    logger.info({ signal, drainTimeoutMs: config.drainTimeoutMs }, "shutting down: draining connections");
    stopHerokuMetrics();
    const clean = await drain(server, config.drainTimeoutMs);
    if (clean) logger.info("drained: exiting");
    else logger.warn("drain timeout: cut the remaining connections");
    exit(logger, clean ? 0 : 1);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // The terminal or session that started the service has gone: stop as on SIGTERM rather than die mid-request.
  process.on("SIGHUP", () => void shutdown("SIGHUP"));
  for (const signal of QUIT_SIGNALS) quitOnSignal(signal, logger);
  // Node opens its inspector (a debugger with full control, on 127.0.0.1:9229) on SIGUSR1 unless a listener exists;
  // the image's node also runs with --disable-sigusr1, this covers a Node without it (20) or run by hand.
  process.on("SIGUSR1", () =>
    logger.warn({ signal: "SIGUSR1" }, "SIGUSR1 ignored: start node with --inspect to debug"),
  );
}

/**
 * Signals whose default action ends the process, sent by someone (kill, a timer, a resource limit): each quits with the
 * log written. Not here: SIGILL, SIGSEGV, SIGBUS, SIGFPE, SIGABRT, SIGTRAP, SIGSYS (a fault or a debugger: the process
 * itself is broken, no JavaScript can run safely) and SIGKILL (cannot be caught).
 */
const QUIT_SIGNALS: NodeJS.Signals[] = [
  "SIGQUIT",
  "SIGUSR2",
  "SIGALRM",
  "SIGVTALRM",
  "SIGPROF",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGIO",
  "SIGPWR",
  "SIGSTKFLT",
];

/**
 * "Quit now", as the signal's default action would, but with the log lines batched so far written first: no drain,
 * then the signal's own ending (exit status 128 + n, a core dump for SIGQUIT where enabled). A signal one of Node's
 * diagnostic flags already claimed (--heapsnapshot-signal, --report-on-signal take SIGUSR2; V8's profiler samples with
 * SIGPROF under --cpu-prof or --prof or a debugger, and a handler here would replace its own) is left to it.
 */
function quitOnSignal(signal: NodeJS.Signals, logger: Logger): void {
  if (process.listenerCount(signal) > 0) return;
  const nodeFlags = [...process.execArgv, process.env.NODE_OPTIONS ?? ""].join(" ");
  // Under a debugger too: Node reserves SIGPROF for the inspector's profiler ("reserved while debugging").
  if (signal === "SIGPROF" && (/--(cpu-)?prof\b/.test(nodeFlags) || inspectorUrl() !== undefined)) return;
  // `once`: the default action is back as soon as this runs, so a second signal ends the process at once.
  process.once(signal, () => {
    logger.warn({ signal }, "exiting now, without draining");
    void closeLogger(logger, 1000).then(() => process.kill(process.pid, signal));
  });
}

function exit(logger: Logger, code: number): void {
  void closeLogger(logger).then(() => process.exit(code));
}

/** The crash-loop guard: a process that fails right after start lives at least 2 s, so a supervisor cannot spin on it. */
function exitAfterGuard(code: number, guard: boolean): void {
  const elapsed = performance.now() - startedAt;
  const wait = guard && elapsed < CRASH_WINDOW_MS ? Math.max(0, CRASH_MIN_LIFETIME_MS - elapsed) : 0;
  setTimeout(() => process.exit(code), wait);
}

main().catch((err: unknown) => {
  process.stderr.write(`${buildInfo.name}: ${(err as Error).message}\n`);
  process.exit(1);
});
