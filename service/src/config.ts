import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { buildInfo } from "./build-info";
import { redactedUrl } from "./credentials";

/** Everything the service can be told at start, after flags, env and defaults are merged. */
export interface Config {
  /** Host to bind; undefined lets Node bind `::` (dual-stack) where the host has IPv6, else `0.0.0.0`. */
  host: string | undefined;
  port: number;
  poetryDir: string;
  logFormat: "json" | "text";
  logLevel: string;
  location: string;
  trustProxy: boolean;
  /** Base URL of the EC2 instance metadata service (IMDSv2). */
  awsMetadataUrl: string;
  /** HEROKU_METRICS_URL: where a `heroku` build pushes runtime metrics, when set. */
  herokuMetricsUrl: string | undefined;
  /** METRICS_INTERVAL_OVERRIDE: how often a `heroku` build pushes them, in milliseconds. */
  herokuMetricsIntervalMs: number;
  drainTimeoutMs: number;
  headersTimeoutMs: number;
  /** Off only in tests: delay a fast crash so a supervisor does not spin. */
  crashGuard: boolean;
  /** Requests of one connection handled at a time; the connection is not read while this many wait. */
  pipelineDepth: number;
  /** Open connections allowed; undefined: from the descriptor limit (see defaultMaxConnections). */
  maxConnections: number | undefined;
}

/** A bad flag or environment value: main prints the message on one line and exits 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** What main should do: print help, print the version, or run with a config. */
export type Command = { kind: "help" } | { kind: "version"; location: string } | { kind: "run"; config: Config };

// The bundle is CommonJS, so __dirname is its directory; from source (tests) the working directory stands in.
const BUNDLE_DIR = typeof __dirname === "undefined" ? process.cwd() : __dirname;
const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
/** Heroku's metrics push interval: 20 s by default, never below 10 s (as Heroku's own plugin). */
const METRICS_INTERVAL_MS = { default: 20_000, min: 10_000, max: 2 ** 31 - 1 };

const options = {
  port: {
    type: "string",
    env: "PORT",
    help: "listen address: 8080, :8080, 127.0.0.1:8080 or [::]:8080",
    default: "8080",
  },
  "poetry-dir": {
    type: "string",
    env: "POETRY_DIR",
    help: "directory of poems served under /poetry/",
    default: undefined,
  },
  "log-format": {
    type: "string",
    env: "LOG_FORMAT",
    help: "json (one object a line) or text (for humans)",
    default: "json",
  },
  "log-level": { type: "string", env: "LOG_LEVEL", help: LOG_LEVELS.join(", "), default: "info" },
  location: { type: "string", env: "LOCATION", help: "free text shown in version info", default: "" },
  "trust-proxy": {
    type: "boolean",
    env: "TRUST_PROXY",
    help: "trust X-Forwarded-* from one proxy hop (Heroku's router)",
    default: false,
  },
  "aws-metadata-url": {
    type: "string",
    env: "AWS_METADATA_URL",
    help: "EC2 instance metadata base URL",
    default: "http://169.254.169.254",
  },
  "drain-timeout": {
    type: "string",
    env: "DRAIN_TIMEOUT",
    help: "seconds to let in-flight requests finish on SIGTERM",
    default: "25",
  },
  "headers-timeout": {
    type: "string",
    env: "HEADERS_TIMEOUT",
    help: "seconds a client may take to send request headers",
    default: "20",
  },
  "crash-guard": {
    type: "boolean",
    env: "CRASH_GUARD",
    help: "on a failure within 3 s of start, exit no sooner than 2 s after start",
    default: true,
  },
  "pipeline-depth": {
    type: "string",
    env: "PIPELINE_DEPTH",
    help: "requests of one connection handled at a time; the connection is not read meanwhile",
    default: "16",
  },
  "max-connections": {
    type: "string",
    env: "MAX_CONNECTIONS",
    help: "open connections allowed (auto: half the descriptor limit less 64)",
    default: "auto",
  },
  help: { type: "boolean", env: undefined, help: "print this help and exit", default: false },
  version: { type: "boolean", env: undefined, help: "print version information and exit", default: false },
} as const;

type OptionName = keyof typeof options;

/** The `--help` text: every flag with its environment variable and default. */
export function helpText(): string {
  const rows = Object.entries(options).map(([name, o]) => {
    const flag = `--${name}${o.type === "string" ? " VALUE" : ""}`;
    const env = o.env ? ` [env ${o.env}]` : "";
    const dflt = o.default === undefined || o.default === false || o.default === "" ? "" : ` (default ${o.default})`;
    return `  ${flag.padEnd(26)} ${o.help}${env}${dflt}`;
  });
  return `Usage: ${buildInfo.name} [options]\n\nOptions (flags override environment, environment overrides defaults):\n${rows.join("\n")}\n`;
}

/**
 * Turn argv (without node and script) and the environment into a command.
 * @throws {ConfigError} naming the option and what is allowed.
 */
export function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command {
  const parsed = parseFlags(argv);
  const raw = (name: OptionName): string | boolean | undefined => {
    const o = options[name];
    return parsed[name] ?? (o.env ? env[o.env] : undefined) ?? o.default;
  };
  const str = (name: OptionName) => raw(name) as string | undefined;
  const bool = (name: OptionName) => parseBoolean(name, raw(name));
  if (parsed.help) return { kind: "help" };
  if (parsed.version) return { kind: "version", location: str("location")! };

  const logFormat = str("log-format");
  if (logFormat !== "json" && logFormat !== "text") {
    throw new ConfigError(`invalid --log-format ${JSON.stringify(logFormat)}: allowed values are json, text`);
  }
  const logLevel = str("log-level")!;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      `invalid --log-level ${JSON.stringify(logLevel)}: allowed values are ${LOG_LEVELS.join(", ")}`,
    );
  }
  const awsMetadataUrl = parseHttpUrl("--aws-metadata-url", str("aws-metadata-url")!);
  // Read from the environment by the /aws page; checked here so a bad one stops the start, not every page.
  if (env.ECS_CONTAINER_METADATA_URI_V4)
    parseHttpUrl("ECS_CONTAINER_METADATA_URI_V4", env.ECS_CONTAINER_METADATA_URI_V4);
  return {
    kind: "run",
    config: {
      ...parseListen(str("port")!),
      poetryDir: str("poetry-dir") ?? resolve(BUNDLE_DIR, buildInfo.defaultPoetryDir),
      logFormat,
      logLevel,
      location: str("location")!,
      trustProxy: bool("trust-proxy"),
      awsMetadataUrl: awsMetadataUrl.replace(/\/+$/, ""),
      herokuMetricsUrl: env.HEROKU_METRICS_URL ? parseHttpUrl("HEROKU_METRICS_URL", env.HEROKU_METRICS_URL) : undefined,
      herokuMetricsIntervalMs: parseMetricsInterval(env.METRICS_INTERVAL_OVERRIDE),
      drainTimeoutMs: parseSeconds("drain-timeout", str("drain-timeout")!, 0, 3600),
      headersTimeoutMs: parseSeconds("headers-timeout", str("headers-timeout")!, 1, 600),
      crashGuard: bool("crash-guard"),
      pipelineDepth: parseCount("pipeline-depth", str("pipeline-depth")!, 1, 1024),
      maxConnections:
        str("max-connections") === "auto" ? undefined : parseCount("max-connections", str("max-connections")!, 1, 1e6),
    },
  };
}

function parseFlags(argv: readonly string[]): Partial<Record<OptionName, string | boolean>> {
  const allowed = () =>
    Object.keys(options)
      .map((n) => `--${n}`)
      .join(", ");
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(Object.entries(options).map(([n, o]) => [n, { type: o.type }])),
      strict: true,
      allowPositionals: true,
      allowNegative: true,
    });
    if (positionals.length > 0) {
      throw new ConfigError(
        `unexpected argument ${JSON.stringify(positionals[0])}: this program takes only options (${allowed()})`,
      );
    }
    return values as Partial<Record<OptionName, string | boolean>>;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as { code?: string }).code;
    const flag = /'(-[^']*)'/.exec((err as Error).message)?.[1] ?? "";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION")
      throw new ConfigError(`unknown option ${flag}: allowed options are ${allowed()}`);
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      const name = flag.split(" ")[0]!;
      // parseArgs uses this code both for a string option without a value and a boolean one given `=value`.
      if (options[name.slice(2) as OptionName]?.type === "boolean")
        throw new ConfigError(`option ${name} takes no value: use ${name} or --no-${name.slice(2)}`);
      throw new ConfigError(`option ${name} needs a value`);
    }
    throw new ConfigError((err as Error).message.split("\n")[0]!);
  }
}

/**
 * Whether the crash-loop guard is wanted, read leniently (last --crash-guard/--no-crash-guard flag, else CRASH_GUARD),
 * so it is honoured even when another option is invalid and parseCommand throws.
 */
export function crashGuardWanted(argv: readonly string[], env: NodeJS.ProcessEnv): boolean {
  const flag = argv.findLast((arg) => /^--(no-)?crash-guard(=|$)/.test(arg));
  if (flag) return !flag.startsWith("--no-") && !/=(0|false|no|off)$/i.test(flag);
  // Unset is the default (on); set but empty is false, as parseCommand reads it.
  return env.CRASH_GUARD === undefined || !/^(0|false|no|off|)$/i.test(env.CRASH_GUARD);
}

/**
 * Parse a listen address: `8080`, `:8080`, `127.0.0.1:8080` or `[::]:8080`.
 * @throws {ConfigError} for anything else or a port outside 0–65535.
 */
export function parseListen(value: string): { host: string | undefined; port: number } {
  const m = /^(?:(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+))?:)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new ConfigError(
      `invalid --port ${JSON.stringify(value)}: allowed are a port 0-65535 optionally with a host, as 8080, :8080, 127.0.0.1:8080 or [::]:8080`,
    );
  }
  return { host: m[1] ?? (m[2] || undefined), port };
}

/**
 * @throws {ConfigError} unless `value` is an absolute http(s) URL with a host. The message shows a URL that parses
 * without its credentials, and never one that does not: where its password ends cannot be told ("/" or "#" in it).
 */
function parseHttpUrl(name: string, value: string): string {
  const allowed = "allowed is an http(s) URL with a host, as https://user:password@host:8443/path";
  if (!URL.canParse(value))
    throw new ConfigError(`invalid ${name}: not a URL (value not shown: it may hold a password); ${allowed}`);
  const url = new URL(value);
  if ((url.protocol !== "http:" && url.protocol !== "https:") || !url.host) {
    throw new ConfigError(`invalid ${name} ${JSON.stringify(redactedUrl(url))}: ${allowed}`);
  }
  return value;
}

/**
 * METRICS_INTERVAL_OVERRIDE: unset or empty is the default; else whole milliseconds within range, or a ConfigError.
 * The top is the longest a Node timer holds (about 24.8 days): past it setInterval warns and fires every 1 ms.
 */
function parseMetricsInterval(value: string | undefined): number {
  if (!value) return METRICS_INTERVAL_MS.default;
  const { min, max } = METRICS_INTERVAL_MS;
  const n = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    throw new ConfigError(
      `invalid METRICS_INTERVAL_OVERRIDE ${JSON.stringify(value)}: allowed are whole milliseconds from ${min} to ${max}`,
    );
  }
  return n;
}

function parseSeconds(name: OptionName, value: string, min: number, max: number): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
    throw new ConfigError(`invalid --${name} ${JSON.stringify(value)}: allowed are seconds from ${min} to ${max}`);
  }
  return Math.round(n * 1000);
}

function parseCount(name: OptionName, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < min || n > max) {
    const auto = options[name].default === "auto" ? " or auto" : "";
    throw new ConfigError(
      `invalid --${name} ${JSON.stringify(value)}: allowed are whole numbers from ${min} to ${max}${auto}`,
    );
  }
  return n;
}

function parseBoolean(name: OptionName, value: string | boolean | undefined): boolean {
  if (typeof value === "boolean") return value;
  const v = (value ?? "").toLowerCase();
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off", ""].includes(v)) return false;
  throw new ConfigError(
    `invalid ${options[name].env} ${JSON.stringify(value)}: allowed are true/false, 1/0, yes/no, on/off`,
  );
}
