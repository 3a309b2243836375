import { describe, expect, it } from "vitest";
import { runConfig as run } from "../test/helpers";
import { ConfigError, crashGuardWanted, parseListen } from "./config";

// The values each option takes and refuses at its bounds; config.test.ts has the commands, precedence and help.

describe("listen address", () => {
  it.each([
    ["8080", undefined, 8080],
    [":8080", undefined, 8080],
    ["127.0.0.1:8080", "127.0.0.1", 8080],
    ["[::]:8080", "::", 8080],
    ["[::1]:0", "::1", 0],
    ["localhost:65535", "localhost", 65535],
  ])("%s binds host %s port %d", (value, host, port) => {
    expect(parseListen(value)).toEqual({ host, port });
  });

  it("trims whitespace around the address, as an env file may leave it", () => {
    expect(parseListen(" 127.0.0.1:8080\n")).toEqual({ host: "127.0.0.1", port: 8080 });
  });

  it.each(["70000", "", "abc", "::8080", "1.2.3.4:", "[::]", "-1", "8080x", "http://x:80"])("rejects %j", (value) => {
    expect(() => parseListen(value)).toThrow(ConfigError);
    expect(() => parseListen(value)).toThrow(/invalid --port .*allowed are a port 0-65535/);
  });
});

describe("crashGuardWanted", () => {
  it.each([
    [[], {}, true],
    [[], { CRASH_GUARD: "off" }, false],
    [[], { CRASH_GUARD: "" }, false],
    [["--no-crash-guard", "--port", "70000"], {}, false],
    [["--crash-guard"], { CRASH_GUARD: "0" }, true],
    [["--crash-guard=false"], {}, false],
    [["--no-crash-guard", "--crash-guard"], {}, true],
    // Only the whole word turns it off, in a flag's value as in the environment.
    [["--crash-guard=offset"], {}, true],
    [[], { CRASH_GUARD: "1" }, true],
    [[], { CRASH_GUARD: "true" }, true],
    [[], { CRASH_GUARD: "xfalse" }, true],
    [[], { CRASH_GUARD: "falsey" }, true],
    // A flag is only an argument that starts with it, not a value that contains it.
    [["--location=x--crash-guard"], { CRASH_GUARD: "0" }, false],
  ])("%j %j → %s", (argv, env, wanted) => {
    expect(crashGuardWanted(argv, env)).toBe(wanted);
  });
});

describe("option values at their bounds", () => {
  it.each([
    ["1", true],
    ["true", true],
    ["TRUE", true],
    ["yes", true],
    ["On", true],
    ["0", false],
    ["false", false],
    ["no", false],
    ["off", false],
    ["", false],
  ])("reads TRUST_PROXY and CRASH_GUARD=%j as %s", (value, on) => {
    expect(run([], { TRUST_PROXY: value, CRASH_GUARD: value })).toMatchObject({ trustProxy: on, crashGuard: on });
  });

  // Each bound is allowed and one step past it refused (as a whole-number count or as seconds, fractions allowed).
  it.each([
    ["--drain-timeout", "0", { drainTimeoutMs: 0 }],
    ["--drain-timeout", "3600", { drainTimeoutMs: 3_600_000 }],
    ["--drain-timeout", "0.25", { drainTimeoutMs: 250 }],
    ["--headers-timeout", "1", { headersTimeoutMs: 1000 }],
    ["--headers-timeout", "600", { headersTimeoutMs: 600_000 }],
    ["--pipeline-depth", "1", { pipelineDepth: 1 }],
    ["--pipeline-depth", "1024", { pipelineDepth: 1024 }],
    ["--max-connections", "1", { maxConnections: 1 }],
    ["--max-connections", "1000000", { maxConnections: 1_000_000 }],
  ])("takes %s %s", (flag, value, expected) => {
    expect(run([flag, value])).toMatchObject(expected);
  });

  it.each([
    ["--drain-timeout", "3601", "seconds from 0 to 3600"],
    ["--drain-timeout", "-0.001", "seconds from 0 to 3600"],
    ["--drain-timeout", "", "seconds from 0 to 3600"],
    ["--drain-timeout", " ", "seconds from 0 to 3600"],
    ["--drain-timeout", "soon", "seconds from 0 to 3600"],
    ["--headers-timeout", "0.999", "seconds from 1 to 600"],
    ["--headers-timeout", "601", "seconds from 1 to 600"],
    ["--pipeline-depth", "1025", "whole numbers from 1 to 1024"],
    ["--max-connections", "0", "whole numbers from 1 to 1000000 or auto"],
    ["--max-connections", "1000001", "whole numbers from 1 to 1000000 or auto"],
  ])("refuses %s=%j: allowed are %s", (flag, value, allowed) => {
    expect(() => run([`${flag}=${value}`])).toThrow(
      new ConfigError(`invalid ${flag} ${JSON.stringify(value)}: allowed are ${allowed}`),
    );
  });
});
