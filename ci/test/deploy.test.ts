// What deploy refuses before building, and the image id it would release for a
// real image: skopeo (a client this project did not write) pushes a single-platform Docker v2 schema 2 image, built
// here as an OCI layout, to Debian's docker-registry with token auth on loopback, as `_` with the token (as Heroku's
// registry takes it); the module's registry client reads it back.
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Secret } from "@dagger.io/dagger";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCKER_MANIFEST_V2 } from "../src/clients/registry-client.js";
import { deployRequest, type HerokuTarget, herokuImageId, validateHerokuTarget } from "../src/deploy.js";
import {
  type RegistryProcess,
  registryInstalled,
  registryRequired,
  skopeo,
  skopeoInstalled,
  startTokenAuthRegistry,
  stopTokenAuthRegistry,
  writeOciLayout,
} from "./clients/registry-server.js";

describe("validateHerokuTarget: --release-timeout", () => {
  const target = (releaseTimeout?: number): HerokuTarget => ({
    app: "pt-dummy-app",
    processType: "web",
    apiUrl: "https://api.heroku.com",
    registry: "registry.heroku.com",
    token: {} as Secret,
    rollback: true,
    releaseTimeout,
  });

  it("takes whole seconds from 60 to 7200, or the default", () => {
    for (const seconds of [undefined, 60, 3900, 7200])
      expect(() => validateHerokuTarget(target(seconds))).not.toThrow();
  });

  it("refuses anything else with one line naming the value and what is allowed", () => {
    for (const seconds of [59, 7201, 0, -1, 90.5, Number.NaN]) {
      expect(() => validateHerokuTarget(target(seconds))).toThrow(
        new Error(
          `--release-timeout ${seconds} is not whole seconds from 60 to 7200 (Heroku's release phase may run 1 h; default 3900)`,
        ),
      );
    }
  });
});

describe("deployRequest", () => {
  const target: HerokuTarget = {
    app: "pt-dummy-app",
    processType: "web",
    apiUrl: "https://api.heroku.com",
    registry: "registry.heroku.com",
    token: {} as Secret,
    commit: "abc123",
    rollback: false,
  };
  const image = `sha256:${"c".repeat(64)}`;

  it("follows the release for --release-timeout seconds, 3900 by default, and verifies at --verify-url or the web URL", () => {
    expect(deployRequest(target, image, "https://app.herokuapp.com/")).toEqual({
      app: "pt-dummy-app",
      processType: "web",
      imageId: image,
      verifyUrl: "https://app.herokuapp.com/",
      commit: "abc123",
      rollback: false,
      timeoutMs: 3_900_000,
    });
    const custom = deployRequest({ ...target, releaseTimeout: 120, verifyUrl: "https://x.test" }, image, undefined);
    expect(custom).toMatchObject({ timeoutMs: 120_000, verifyUrl: "https://x.test" });
  });
});

describe.skipIf(!(registryInstalled && skopeoInstalled) && !registryRequired)(
  "herokuImageId against a real registry and skopeo",
  () => {
    const token = `HRKU-${randomBytes(12).toString("hex")}`;
    const credentials = `_:${token}`;
    const target = { app: "pt-dummy-app", processType: "web" };
    let dir: string;
    let registry: RegistryProcess;
    let tokenServer: Server;
    let repository: string;
    const inspect = (reference: string, ...flags: string[]) =>
      skopeo("inspect", ...flags, "--tls-verify=false", "--creds", credentials, `docker://${repository}:${reference}`);
    /** Pushes the layout's linux/amd64 image alone, in `format`; returns what `publish` would: `<ref>@<manifest digest>`. */
    const push = async (layout: string, tag: string, format: "v2s2" | "oci") => {
      const digestFile = join(dir, `${tag}.digest`);
      await skopeo(
        "copy",
        "--override-os=linux",
        "--override-arch=amd64",
        `--format=${format}`,
        "--dest-tls-verify=false",
        "--dest-creds",
        credentials,
        "--digestfile",
        digestFile,
        `oci:${layout}:1.0.0`,
        `docker://${repository}:${tag}`,
      );
      return `${repository}:${tag}@${readFileSync(digestFile, "utf8").trim()}`;
    };

    beforeAll(async () => {
      if (!(registryInstalled && skopeoInstalled))
        throw new Error("docker-registry or skopeo is not installed, and CI=true requires both");
      dir = mkdtempSync(join(tmpdir(), "deploy-test-"));
      ({ registry, tokenServer } = await startTokenAuthRegistry(dir, join(dir, "storage"), {
        user: "_",
        password: token,
      }));
      repository = `${registry.host}/${target.app}/${target.processType}`;
    }, 60_000);

    afterAll(() => stopTokenAuthRegistry({ registry, tokenServer }, dir));

    it("is the config digest skopeo reports for the single-platform Docker v2 schema 2 image it pushed", async () => {
      const { path } = writeOciLayout(join(dir, "layout"), "1.0.0", ["linux/amd64", "linux/arm64"]);
      const published = await push(path, "latest", "v2s2");
      const manifest = JSON.parse(await inspect("latest", "--raw"));
      expect(manifest.mediaType).toBe(DOCKER_MANIFEST_V2);
      const config = await inspect("latest", "--config", "--raw");
      const configDigest = `sha256:${createHash("sha256").update(config).digest("hex")}`;
      expect(JSON.parse(config)).toMatchObject({ os: "linux", architecture: "amd64" });
      expect(manifest.config.digest).toBe(configDigest);

      const imageId = await herokuImageId(published, { ...target, registry: registry.host }, token, "dummyapp-ci/test");
      expect(imageId).toBe(configDigest);
      expect(published).not.toContain(configDigest);
    });

    it("refuses the same image pushed as an OCI manifest, which Heroku cannot release (the registry itself answers a Docker-only Accept with 404)", async () => {
      const { path } = writeOciLayout(join(dir, "layout-oci"), "1.0.0", ["linux/amd64"]);
      const published = await push(path, "oci", "oci");
      await expect(
        herokuImageId(published, { ...target, registry: registry.host }, token, "dummyapp-ci/test"),
      ).rejects.toThrow(/: 404 Not Found \(MANIFEST_UNKNOWN: OCI manifest found/);
    });

    it("refuses a publish result without a manifest digest", async () => {
      await expect(
        herokuImageId(`${repository}:latest`, { ...target, registry: registry.host }, token, "dummyapp-ci/test"),
      ).rejects.toThrow(`publish returned ${repository}:latest, with no manifest digest`);
    });
  },
);
