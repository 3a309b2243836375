// What a build is stamped with (ci/src/stamp.ts), against the engine double: the runtime base's Node.js version, the
// service manifest, and the build time's format.
import { type DirectoryID, dag } from "@dagger.io/dagger";
import { afterEach, describe, expect, it } from "vitest";
import { pullWith } from "../src/pull.js";
import { buildTimeOf, readServiceManifest, resolveImages } from "../src/stamp.js";
import type { Answers, EngineDouble } from "./engine-double.js";
import { callsOf, ENGINE_PLATFORM, resolvedRef, SOURCE_ID, startEngine } from "./transcript.js";

const IMAGES = { builder: "node:24.13.1-alpine", runtime: "gcr.io/distroless/nodejs24", poetry: "philpennock/poetry" };

let engine: EngineDouble | undefined;
afterEach(() => engine?.close());

/** A fresh double (closing the last one) answering `answers` first. */
async function restart(answers: Answers): Promise<EngineDouble> {
  await engine?.close();
  engine = await startEngine(answers);
  return engine;
}

/** resolveImages against a double whose runtime `node` prints `output`. */
async function resolveWithNode(output: string) {
  const double = await restart((leaf) => (leaf.field === "stdout" ? output : undefined));
  return double.run(() => resolveImages(pullWith(undefined), IMAGES));
}

/** readServiceManifest of a source whose service/package.json is `manifest`. */
async function manifestOf(manifest: object) {
  const double = await restart((leaf, chain) =>
    leaf.field === "contents" && chain.at(-1)?.args.path === "service/package.json"
      ? JSON.stringify(manifest)
      : undefined,
  );
  return double.run(() => readServiceManifest(dag.loadDirectoryFromID(SOURCE_ID as DirectoryID)));
}

describe("resolveImages", () => {
  it("resolves each image to a digest and asks the runtime image's own node for its version", async () => {
    expect(await resolveWithNode("24.13.10\n")).toEqual({
      builder: resolvedRef(IMAGES.builder),
      runtime: resolvedRef(IMAGES.runtime),
      poetry: resolvedRef(IMAGES.poetry),
      nodeVersion: "24.13.10",
      platform: ENGINE_PLATFORM,
    });
    const exec = engine!.queries.find((q) => q.chain.at(-1)!.field === "stdout")!.chain;
    expect(exec[1]).toEqual({ field: "from", args: { address: IMAGES.runtime } });
    expect(callsOf(exec, "withExec").map((c) => c.args.args)).toEqual([["node", "-p", "process.versions.node"]]);
  });

  // Anything else would go into the SBOM, the provenance and a label as the Node.js version.
  it.each(["", "v24.13.1", "24.13", "24.13.1-pre", "Warning: something\n24.13.1", "24.13.1\nWarning: something"])(
    "refuses a node that reports %j, quoting what it said",
    async (output) => {
      await expect(resolveWithNode(output)).rejects.toThrow(
        new Error(`the runtime image's node reported version ${JSON.stringify(output)}, not x.y.z`),
      );
    },
  );

  it("quotes at most 80 characters of a long answer", async () => {
    const output = `${"x".repeat(80)}${"y".repeat(200)}`;
    await expect(resolveWithNode(output)).rejects.toThrow(
      new Error(`the runtime image's node reported version "${"x".repeat(80)}", not x.y.z`),
    );
  });
});

describe("readServiceManifest", () => {
  it("reads name, version, description and license, the last two empty when absent", async () => {
    expect(await manifestOf({ name: "dummyapp", version: "2.0.0", private: true })).toEqual({
      name: "dummyapp",
      version: "2.0.0",
      description: "",
      license: "",
    });
  });

  it("refuses a manifest without a name or a version", async () => {
    for (const manifest of [{ name: "dummyapp" }, { version: "2.0.0" }, { name: "", version: "2.0.0" }]) {
      await expect(manifestOf(manifest)).rejects.toThrow(
        new Error("service/package.json must have a name and a version"),
      );
    }
  });
});

describe("buildTimeOf", () => {
  it("is ISO 8601 UTC to the second", () => {
    expect(buildTimeOf(1764547200)).toBe("2025-12-01T00:00:00Z");
    expect(buildTimeOf(1764547200.75)).toBe("2025-12-01T00:00:00Z");
    expect(buildTimeOf(0)).toBe("1970-01-01T00:00:00Z");
  });
});
