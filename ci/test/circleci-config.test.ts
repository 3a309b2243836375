// .circleci/config.yml must stay thin: check out, install the pinned dagger CLI, `dagger call ci` with env:// secrets.
// The file is read by CircleCI's own parser (@circleci/circleci-config-parser, which validates it against CircleCI's
// schema into the config SDK's model); the model must generate exactly the job built here with CircleCI's config SDK,
// so any added step, changed image or missing context fails here.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseConfig } from "@circleci/circleci-config-parser";
import * as CircleCI from "@circleci/circleci-config-sdk";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEPLOY_BOUND_MS } from "../src/clients/heroku-api.js";

// vitest runs from the repository root, where vitest.config.ts is.
const file = readFileSync(join(process.cwd(), ".circleci/config.yml"), "utf8");
const parsed = parse(file) as Record<string, unknown>;
const engineVersion = (
  JSON.parse(readFileSync(join(process.cwd(), "dagger.json"), "utf8")) as { engineVersion: string }
).engineVersion;

const install = `curl -fsSL https://dl.dagger.io/dagger/install.sh | DAGGER_VERSION=${engineVersion.replace(/^v/, "")} BIN_DIR=/usr/local/bin sudo -E sh`;
const daggerCall =
  'dagger call ci --branch "$CIRCLE_BRANCH" --commit "$CIRCLE_SHA1" ' +
  "--dockerhub-username env://DOCKERHUB_USER --dockerhub-password env://DOCKERHUB_PASS --heroku-token env://HEROKU_TOKEN " +
  '--signing-key env://COSIGN_KEY --ci-run-url "$CIRCLE_BUILD_URL"';

/** The whole intended config, as CircleCI's SDK generates it. */
function expectedConfig() {
  const job = new CircleCI.Job("dagger-ci", new CircleCI.executors.DockerExecutor("cimg/base:2024.01", "medium"), [
    new CircleCI.commands.Checkout(),
    new CircleCI.commands.SetupRemoteDocker({ version: "default" }),
    new CircleCI.commands.Run({ name: "Install the dagger CLI", command: install }),
    new CircleCI.commands.Run({ name: "dagger call ci", command: daggerCall, no_output_timeout: "140m" }),
  ]);
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
    const call = commands[1]!;
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
    // The bound includes two release waits that each outlast Heroku's 1 h release phase.
    expect(DEPLOY_BOUND_MS).toBeGreaterThan(2 * 3_600_000);
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
});
