// .circleci/config.yml must stay thin: check out, install the pinned dagger CLI, log in to Docker Hub, `dagger call ci`
// with env:// secrets (both in small scripts, run here with stub docker and dagger commands).
// The file is read by CircleCI's own parser (@circleci/circleci-config-parser, which validates it against CircleCI's
// schema into the config SDK's model); the model must generate exactly the job built here with CircleCI's config SDK,
// so any added step, changed image or missing context fails here.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "@circleci/circleci-config-parser";
import * as CircleCI from "@circleci/circleci-config-sdk";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEPLOY_BOUND_MS } from "../src/heroku-release.js";

// vitest runs from the repository root, where vitest.config.ts is.
const file = readFileSync(join(process.cwd(), ".circleci/config.yml"), "utf8");
const parsed = parse(file) as Record<string, unknown>;
const engineVersion = (
  JSON.parse(readFileSync(join(process.cwd(), "dagger.json"), "utf8")) as { engineVersion: string }
).engineVersion;

const install = `curl -fsSL https://dl.dagger.io/dagger/install.sh | DAGGER_VERSION=${engineVersion.replace(/^v/, "")} BIN_DIR=/usr/local/bin sudo -E sh`;

/** The whole intended config, as CircleCI's SDK generates it. */
function expectedConfig() {
  const job = new CircleCI.Job(
    "dagger-ci",
    new CircleCI.executors.DockerExecutor("cimg/base:2024.01", "medium"),
    [
      new CircleCI.commands.Checkout(),
      new CircleCI.commands.SetupRemoteDocker({ version: "default" }),
      new CircleCI.commands.Run({ name: "Install the dagger CLI", command: install }),
      new CircleCI.commands.Run({ name: "Log in to Docker Hub", command: ".circleci/docker-login.sh" }),
      new CircleCI.commands.Run({
        name: "dagger call ci",
        command: ".circleci/dagger-ci.sh",
        no_output_timeout: "140m",
      }),
    ],
    { environment: { DAGGER_PROGRESS: "plain" } },
  );
  const config = new CircleCI.Config().addJob(job);
  config.addWorkflow(new CircleCI.Workflow("ci").addJob(job, { context: ["heroku-and-dockerhub"] }));
  // The SDK always writes `setup: false`, which is CircleCI's default; the file leaves it out.
  const { setup, ...generated } = config.generate();
  expect(setup).toBe(false);
  return generated;
}

/** Every `run` command in the file. */
const commands = Object.values(parsed.jobs as Record<string, { steps: unknown[] }>)
  .flatMap((job) => job.steps)
  .flatMap((step) =>
    typeof step === "object" && step && "run" in step ? [(step as { run: { command: string } }).run.command] : [],
  );

describe(".circleci/config.yml", () => {
  it("is exactly the thin job CircleCI's SDK generates: checkout, remote Docker, dagger install, dagger call ci", () => {
    expect(parsed).toEqual(expectedConfig());
  });

  it("parses with CircleCI's config parser into that same job and workflow", () => {
    const { setup, ...generated } = parseConfig(parsed).generate();
    expect(setup).toBe(false);
    expect(generated).toEqual(expectedConfig());
  });

  it("installs the dagger CLI at the engine version dagger.json pins", () => {
    expect(engineVersion).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(commands[0]).toContain(`DAGGER_VERSION=${engineVersion.slice(1)} `);
  });

  it("passes every secret as an env:// reference and no secret value on the command line", () => {
    const call = readFileSync(join(process.cwd(), ".circleci/dagger-ci.sh"), "utf8")
      .split("\n")
      .filter((line) => !line.startsWith("#"))
      .join("\n");
    for (const [flag, variable] of [
      ["dockerhub-username", "DOCKERHUB_USER"],
      ["dockerhub-password", "DOCKERHUB_PASS"],
      ["heroku-token", "HEROKU_TOKEN"],
      ["signing-key", "COSIGN_KEY"],
    ]) {
      expect(call).toContain(`--${flag} env://${variable}`);
    }
    expect(call).not.toMatch(/\$(DOCKERHUB|HEROKU|COSIGN)/);
  });

  it("lets `dagger call ci` stay silent longer than the module's longest bound, which CircleCI's 10 min default is not", () => {
    const steps = (parsed.jobs as Record<string, { steps: { run?: { name: string; no_output_timeout?: string } }[] }>)[
      "dagger-ci"
    ]!.steps;
    const timeout = steps.find((step) => step.run?.name === "dagger call ci")!.run!.no_output_timeout!;
    const [, amount, unit] = /^(\d+(?:\.\d+)?)([hms])$/.exec(timeout)!;
    const ms = Number(amount) * { h: 3_600_000, m: 60_000, s: 1000 }[unit as "h" | "m" | "s"];
    expect(DEPLOY_BOUND_MS).toBeGreaterThan(10 * 60_000);
    expect(ms).toBeGreaterThan(DEPLOY_BOUND_MS);
  });

  it("takes the secrets from the heroku-and-dockerhub context", () => {
    expect((parsed.workflows as { ci: { jobs: unknown[] } }).ci.jobs).toEqual([
      { "dagger-ci": { context: ["heroku-and-dockerhub"] } },
    ]);
  });

  it("does no Docker work of its own: no docker build, push or login, no branch logic", () => {
    for (const command of commands) {
      expect(command).not.toMatch(/\bdocker\s+(build|push|login|tag)\b|\bheroku\s|\bif\b|\[\[|&&/);
    }
    expect(file).not.toMatch(/filters:|branches:|when:/);
  });

  it("shows the log as plain lines, and documents the optional DAGGER_CLOUD_TOKEN", () => {
    expect((parsed.jobs as Record<string, { environment: object }>)["dagger-ci"]!.environment).toEqual({
      DAGGER_PROGRESS: "plain",
    });
    expect(file).toMatch(/DAGGER_CLOUD_TOKEN/);
  });
});

/** Runs the job's two scripts in order with stub docker and dagger commands; what each stub saw and how it ended. */
function runJob(env: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), "circleci-job-"));
  try {
    // Each stub records its argv (one argument a line) and stdin.
    for (const tool of ["docker", "dagger"]) {
      writeFileSync(
        join(dir, tool),
        `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/${tool}.argv"\ncat > "${dir}/${tool}.stdin"\n`,
      );
      chmodSync(join(dir, tool), 0o755);
    }
    const base = {
      PATH: `${dir}:/usr/bin:/bin`,
      CIRCLE_BRANCH: "main",
      CIRCLE_SHA1: "0123456789abcdef0123456789abcdef01234567",
      CIRCLE_BUILD_URL: "https://circleci.com/gh/PennockTech/dummyapp/7",
    };
    const script = (name: string) =>
      spawnSync("sh", [join(process.cwd(), ".circleci", name)], {
        env: { ...base, ...env },
        encoding: "utf8",
        input: "",
      });
    const login = script("docker-login.sh");
    const call = login.status === 0 ? script("dagger-ci.sh") : undefined;
    const read = (file: string) => {
      try {
        return readFileSync(join(dir, file), "utf8");
      } catch {
        return undefined;
      }
    };
    return {
      login,
      call,
      docker: read("docker.argv")?.trimEnd().split("\n"),
      dockerStdin: read("docker.stdin"),
      dagger: read("dagger.argv")?.trimEnd().split("\n"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the job's scripts", () => {
  const secrets = {
    DOCKERHUB_USER: "pennocktech-bot",
    DOCKERHUB_PASS: "dockerhub-pat-d0-n0t-l3ak",
    HEROKU_TOKEN: "t",
    COSIGN_KEY: "k",
  };
  /** What every `dagger call ci` of the job starts with, and the run's page it records. */
  const call = ["call", "ci", "--branch", "main", "--commit", "0123456789abcdef0123456789abcdef01234567"];
  const runUrl = ["--ci-run-url", "https://circleci.com/gh/PennockTech/dummyapp/7"];

  it("logs in to Docker Hub with the password on stdin, then calls ci with every secret as env://", () => {
    const ran = runJob(secrets);
    expect(ran.login.status, ran.login.stderr).toBe(0);
    expect(ran.docker).toEqual(["login", "--username", "pennocktech-bot", "--password-stdin"]);
    expect(ran.dockerStdin).toBe(secrets.DOCKERHUB_PASS);
    expect(ran.call?.status).toBe(0);
    expect(ran.dagger).toEqual([
      ...call,
      "--dockerhub-username",
      "env://DOCKERHUB_USER",
      "--dockerhub-password",
      "env://DOCKERHUB_PASS",
      "--heroku-token",
      "env://HEROKU_TOKEN",
      "--signing-key",
      "env://COSIGN_KEY",
      ...runUrl,
    ]);
    expect(`${ran.login.stdout}${ran.login.stderr}${ran.call?.stdout}${ran.call?.stderr}`).not.toContain(
      secrets.DOCKERHUB_PASS,
    );
  });

  it("on a pull request from a fork (no secrets): no login, and ci told so, with no secret flags", () => {
    const ran = runJob({ CIRCLE_PR_USERNAME: "someone", CIRCLE_PR_REPONAME: "dummyapp" });
    expect(ran.login.status, ran.login.stderr).toBe(0);
    expect(ran.login.stdout).toContain("pull request from the fork someone/dummyapp: CircleCI gives it no secrets");
    expect(ran.docker).toBeUndefined();
    expect(ran.dagger).toEqual([...call, ...runUrl, "--fork-pull-request"]);
  });

  it("anywhere else, fails on a missing secret before dagger runs, naming it", () => {
    const { DOCKERHUB_PASS: _, ...rest } = secrets;
    const ran = runJob(rest);
    expect(ran.login.status).not.toBe(0);
    expect(ran.login.stderr).toMatch(/DOCKERHUB_PASS.*is not set/);
    expect(ran.docker).toBeUndefined();
    expect(ran.dagger).toBeUndefined();
  });
});
