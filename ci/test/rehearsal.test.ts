// The rehearsal's read-back script against a real registry (Debian's docker-registry): images pushed through the
// registry API as the engine pushes them (an OCI index of labelled platform images, and one Docker v2 manifest), read
// by READBACK_MAIN on Node, then checked by verifyRehearsal, which must refuse what differs.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST } from "../src/clients/oci-content.js";
import { READBACK_MAIN, type Readback, type RehearsalExpectation, verifyRehearsal } from "../src/rehearsal.js";
import {
  type RegistryProcess,
  registryInstalled,
  registryRequired,
  startRegistry,
  stopProcess,
} from "./clients/registry-server.js";

const LABELS = { "org.opencontainers.image.version": "2.0.0", "com.pennock-tech.dummyapp.build-tags": "heroku" };
let dir: string;
let registry: RegistryProcess;

const digest = (bytes: Buffer) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

/** PUTs a blob or manifest through the registry API; its descriptor. */
async function put(repository: string, kind: "blob" | "manifest", bytes: Buffer, mediaType: string, tag?: string) {
  if (kind === "blob") {
    const start = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    const upload = new URL(start.headers.get("location")!, registry.url);
    upload.searchParams.set("digest", digest(bytes));
    expect((await fetch(upload, { method: "PUT", body: new Uint8Array(bytes) })).status).toBe(201);
  } else {
    const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag ?? digest(bytes)}`, {
      method: "PUT",
      headers: { "Content-Type": mediaType },
      body: new Uint8Array(bytes),
    });
    expect(response.status).toBe(201);
  }
  return { mediaType, digest: digest(bytes), size: bytes.length };
}

/** One labelled image for `platform`, as a manifest of `mediaType`; returns its bytes' descriptor, pushed by digest. */
async function image(repository: string, platform: string, mediaType: string, tag?: string) {
  const [os, architecture] = platform.split("/");
  const config = await put(
    repository,
    "blob",
    Buffer.from(
      JSON.stringify({ os, architecture, config: { Labels: LABELS }, rootfs: { type: "layers", diff_ids: [] } }),
    ),
    mediaType === DOCKER_MANIFEST_V2
      ? "application/vnd.docker.container.image.v1+json"
      : "application/vnd.oci.image.config.v1+json",
  );
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType, config, layers: [] }));
  return { ...(await put(repository, "manifest", manifest, mediaType, tag)), platform: { os, architecture } };
}

function readback(requests: { repository: string; reference: string }[]): Readback[] {
  return JSON.parse(
    execFileSync(
      process.execPath,
      ["--input-type=module", "--eval", READBACK_MAIN, registry.url, JSON.stringify(requests)],
      {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      },
    ),
  ) as Readback[];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "rehearsal-"));
  registry = await startRegistry(dir, "rehearsal", join(dir, "storage"));
  const manifests = [
    await image("me/app", "linux/amd64", OCI_MANIFEST),
    await image("me/app", "linux/arm64", OCI_MANIFEST),
  ];
  await put(
    "me/app",
    "manifest",
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })),
    OCI_INDEX,
    "2.0.0-heroku",
  );
  await image("app/web", "linux/amd64", DOCKER_MANIFEST_V2, "latest");
}, 30_000);

afterAll(async () => {
  await stopProcess(registry?.process);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!registryInstalled && !registryRequired)("the publish rehearsal's read-back", () => {
  const expected: RehearsalExpectation[] = [
    {
      reference: "me/app:2.0.0-heroku",
      mediaTypes: [OCI_INDEX],
      platforms: ["linux/amd64", "linux/arm64"],
      labels: LABELS,
    },
    { reference: "app/web:latest", mediaTypes: [DOCKER_MANIFEST_V2], platforms: ["linux/amd64"], labels: LABELS },
  ];
  const requests = [
    { repository: "me/app", reference: "2.0.0-heroku" },
    { repository: "app/web", reference: "latest" },
  ];

  it("reads each index's platform images and the single manifest, with their labels, and they check", () => {
    const read = readback(requests);
    expect(read.map((r) => [r.reference, r.mediaType, r.images.map((i) => i.platform)])).toEqual([
      ["me/app:2.0.0-heroku", OCI_INDEX, ["linux/amd64", "linux/arm64"]],
      ["app/web:latest", DOCKER_MANIFEST_V2, ["linux/amd64"]],
    ]);
    expect(verifyRehearsal(read, expected)).toBe(
      "me/app:2.0.0-heroku: index, linux/amd64 + linux/arm64, labels checked; app/web:latest: one Docker manifest, linux/amd64, labels checked",
    );
  });

  it("refuses a Heroku image that is not one Docker manifest, a missing platform and a wrong label, naming each", () => {
    const read = readback(requests);
    expect(() =>
      verifyRehearsal(read, [{ ...expected[1]!, reference: "me/app:2.0.0-heroku", mediaTypes: [DOCKER_MANIFEST_V2] }]),
    ).toThrow(`rehearsal: me/app:2.0.0-heroku is ${OCI_INDEX}, not ${DOCKER_MANIFEST_V2}`);
    expect(() =>
      verifyRehearsal(read, [{ ...expected[0]!, platforms: ["linux/amd64", "linux/arm64", "linux/s390x"] }]),
    ).toThrow("has linux/amd64, linux/arm64, not linux/amd64, linux/arm64, linux/s390x");
    expect(() =>
      verifyRehearsal(read, [{ ...expected[0]!, labels: { "org.opencontainers.image.version": "2.0.1" } }]),
    ).toThrow('(linux/amd64) label org.opencontainers.image.version is "2.0.0", not "2.0.1"');
  });

  it("fails on a tag the registry does not have", () => {
    expect(() => readback([{ repository: "me/app", reference: "nope" }])).toThrow(/manifests\/nope: 404/);
  });
});
