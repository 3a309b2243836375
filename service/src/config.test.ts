import { describe, expect, it } from "vitest";
import { runConfig as run } from "../test/helpers";
import { ConfigError, helpText, parseCommand } from "./config";

describe("parseCommand", () => {
  it("uses defaults with no flags and no env", () => {
    const c = run([]);
    expect(c).toMatchObject({
      host: undefined,
      port: 8080,
      logFormat: "json",
      logLevel: "info",
      location: "",
      trustProxy: false,
    });
    expect(c).toMatchObject({
      drainTimeoutMs: 25_000,
      headersTimeoutMs: 20_000,
      crashGuard: true,
      awsMetadataUrl: "http://169.254.169.254",
    });
  });

  it("takes env over defaults and flags over env", () => {
    const env = {
      PORT: "9000",
      POETRY_DIR: "/env/poems",
      LOG_FORMAT: "text",
      LOCATION: "eu",
      TRUST_PROXY: "true",
      LOG_LEVEL: "warn",
    };
    expect(run([], env)).toMatchObject({
      port: 9000,
      poetryDir: "/env/poems",
      logFormat: "text",
      location: "eu",
      trustProxy: true,
      logLevel: "warn",
    });
    const flags = [
      "--port",
      "127.0.0.1:7000",
      "--poetry-dir",
      "/flag/poems",
      "--log-format",
      "json",
      "--no-trust-proxy",
    ];
    expect(run(flags, env)).toMatchObject({
      host: "127.0.0.1",
      port: 7000,
      poetryDir: "/flag/poems",
      logFormat: "json",
      trustProxy: false,
    });
  });

  it("takes the pipeline depth and connection cap from flags or env; auto leaves the cap to the descriptor limit", () => {
    expect(run([])).toMatchObject({ pipelineDepth: 16, maxConnections: undefined });
    expect(run([], { PIPELINE_DEPTH: "4", MAX_CONNECTIONS: "500" })).toMatchObject({
      pipelineDepth: 4,
      maxConnections: 500,
    });
    expect(run(["--pipeline-depth", "1", "--max-connections", "auto"], { MAX_CONNECTIONS: "9" })).toMatchObject({
      pipelineDepth: 1,
      maxConnections: undefined,
    });
  });

  it("gives --version the location from the flag, else LOCATION", () => {
    expect(parseCommand(["--version", "--location", "lab"], { LOCATION: "env" })).toEqual({
      kind: "version",
      location: "lab",
    });
    expect(parseCommand(["--version"], { LOCATION: "env" })).toEqual({ kind: "version", location: "env" });
  });

  it("accepts --flag=value and trailing slashes on the metadata URL", () => {
    expect(run(["--port=:1234", "--aws-metadata-url=http://127.0.0.1:5/"])).toMatchObject({
      port: 1234,
      awsMetadataUrl: "http://127.0.0.1:5",
    });
    expect(run(["--aws-metadata-url=http://127.0.0.1:5/latest//"])).toMatchObject({
      awsMetadataUrl: "http://127.0.0.1:5/latest",
    });
  });

  it.each([
    [["--help"], "help"],
    [["--version", "--location", "lab"], "version"],
    [["--port", "70000", "--help"], "help"],
  ])("%j is the %s command", (argv, kind) => {
    expect(parseCommand(argv, {}).kind).toBe(kind);
  });

  it.each([
    [["--port", "70000"], {}, 'invalid --port "70000": allowed are a port 0-65535'],
    [[], { PORT: "http" }, 'invalid --port "http"'],
    [["--log-format", "xml"], {}, 'invalid --log-format "xml": allowed values are json, text'],
    [[], { LOG_FORMAT: "yaml" }, 'invalid --log-format "yaml"'],
    [
      ["--log-level", "loud"],
      {},
      'invalid --log-level "loud": allowed values are trace, debug, info, warn, error, fatal, silent',
    ],
    [["--bogus"], {}, "unknown option --bogus: allowed options are --port, --poetry-dir"],
    [["-x"], {}, "unknown option -x"],
    [["--port"], {}, "option --port needs a value"],
    [["--trust-proxy=yes"], {}, "option --trust-proxy takes no value: use --trust-proxy or --no-trust-proxy"],
    [["serve"], {}, 'unexpected argument "serve": this program takes only options'],
    [[], { TRUST_PROXY: "maybe" }, 'invalid TRUST_PROXY "maybe": allowed are true/false'],
    [["--drain-timeout=-1"], {}, 'invalid --drain-timeout "-1": allowed are seconds from 0 to 3600'],
    [["--headers-timeout", "0"], {}, 'invalid --headers-timeout "0": allowed are seconds from 1 to 600'],
    [["--pipeline-depth", "0"], {}, 'invalid --pipeline-depth "0": allowed are whole numbers from 1 to 1024'],
    [[], { PIPELINE_DEPTH: "2.5" }, 'invalid --pipeline-depth "2.5": allowed are whole numbers from 1 to 1024'],
    [
      ["--max-connections", "lots"],
      {},
      'invalid --max-connections "lots": allowed are whole numbers from 1 to 1000000 or auto',
    ],
    [["--aws-metadata-url", "ftp://x"], {}, 'invalid --aws-metadata-url "ftp://x/": allowed is an http(s) URL'],
    [["--aws-metadata-url", "http://[::1"], {}, "invalid --aws-metadata-url: not a URL (value not shown"],
    // Unparsable because of the password: "/", "#" or "?" ends the authority early, so no redaction could find it.
    ...["s3cret/x", "s3cret#x", "s3cret?x", "s3cret x/y"].map((password): [string[], NodeJS.ProcessEnv, string] => [
      [],
      { HEROKU_METRICS_URL: `https://user:${password}@collector/m` },
      "invalid HEROKU_METRICS_URL: not a URL (value not shown: it may hold a password); allowed is an http(s) URL",
    ]),
    [
      ["--aws-metadata-url", "ftp://user:s3cret@x"],
      {},
      'invalid --aws-metadata-url "ftp://***@x/": allowed is an http(s) URL',
    ],
    [
      [],
      { HEROKU_METRICS_URL: "file:///etc/passwd" },
      'invalid HEROKU_METRICS_URL "file:///etc/passwd": allowed is an http(s) URL',
    ],
    [[], { HEROKU_METRICS_URL: "ftp://user:s3cret@collector/m" }, 'invalid HEROKU_METRICS_URL "ftp://***@collector/m"'],
    [
      [],
      { HEROKU_METRICS_URL: "ftp://user:s3cret p@ss@collector/m" },
      'invalid HEROKU_METRICS_URL "ftp://***@collector/m"',
    ],
    // Refused, never clamped or defaulted: below Heroku's 10 s, past what a Node timer holds, not whole milliseconds.
    ...["5000", "9999", "2147483648", "99999999999999999999", "15000.5", "1e5", "abc", "-5", " 15000"].map(
      (value): [string[], NodeJS.ProcessEnv, string] => [
        [],
        { METRICS_INTERVAL_OVERRIDE: value },
        `invalid METRICS_INTERVAL_OVERRIDE ${JSON.stringify(value)}: allowed are whole milliseconds from 10000 to 2147483647`,
      ],
    ),
    [
      [],
      { ECS_CONTAINER_METADATA_URI_V4: "unix:///var/run/ecs.sock" },
      'invalid ECS_CONTAINER_METADATA_URI_V4 "unix:///var/run/ecs.sock": allowed is an http(s) URL',
    ],
  ])("%j %j fails with one line naming the option", (argv, env, message) => {
    let error: unknown;
    try {
      parseCommand(argv, env);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain("\n");
    expect((error as Error).message).not.toContain("s3cret");
  });

  it("takes HEROKU_METRICS_URL and an ECS metadata URI that are http(s) URLs, credentials and all", () => {
    const env = {
      HEROKU_METRICS_URL: "https://user:s3cret@collector.example/metrics",
      ECS_CONTAINER_METADATA_URI_V4: "http://169.254.170.2/v4/abc",
    };
    expect(run([], env)).toMatchObject({ herokuMetricsUrl: "https://user:s3cret@collector.example/metrics" });
    expect(run([])).toMatchObject({ herokuMetricsUrl: undefined });
  });

  it.each([
    [undefined, 20_000],
    ["", 20_000],
    ["10000", 10_000],
    ["60000", 60_000],
    ["2147483647", 2_147_483_647],
  ])("takes METRICS_INTERVAL_OVERRIDE=%j as %d ms", (value, ms) => {
    expect(run([], { METRICS_INTERVAL_OVERRIDE: value })).toMatchObject({ herokuMetricsIntervalMs: ms });
  });

  it("opens --help with the usage line and shows VALUE, env and default only where an option has them", () => {
    const lines = helpText().split("\n");
    expect(lines.slice(0, 3)).toEqual([
      "Usage: dummyapp [options]",
      "",
      "Options (flags override environment, environment overrides defaults):",
    ]);
    for (const line of [
      "  --port VALUE               listen address: 8080, :8080, 127.0.0.1:8080 or [::]:8080 [env PORT] (default 8080)",
      // No default (undefined), an empty one, a false one: none shown.
      "  --poetry-dir VALUE         directory of poems served under /poetry/ [env POETRY_DIR]",
      "  --location VALUE           free text shown in version info [env LOCATION]",
      "  --trust-proxy              trust X-Forwarded-* from one proxy hop (Heroku's router) [env TRUST_PROXY]",
      "  --crash-guard              on a failure within 3 s of start, exit no sooner than 2 s after start [env CRASH_GUARD] (default true)",
      "  --help                     print this help and exit",
    ]) {
      expect(lines).toContain(line);
    }
  });

  it("lists every option with its environment variable in --help", () => {
    const help = helpText();
    for (const text of [
      "--port VALUE",
      "[env PORT]",
      "--poetry-dir",
      "[env POETRY_DIR]",
      "--log-format",
      "--trust-proxy",
      "[env LOCATION]",
      "--version",
      "[env PIPELINE_DEPTH] (default 16)",
      "[env MAX_CONNECTIONS] (default auto)",
    ]) {
      expect(help).toContain(text);
    }
  });
});
