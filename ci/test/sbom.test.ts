// The SBOM is derived, not listed: its npm packages are checked against the bundle's own metafile read another way
// (each bundled file's nearest package.json, as Node finds a package), its versions against what is installed.
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import {
  packagesByType,
  SBOM_DIR,
  SBOM_INPUTS,
  SBOM_INPUTS_SCRIPT,
  SBOM_MAIN,
  SBOM_SCRIPT,
  spdxDocument,
} from "../src/sbom.js";
import {
  bundledPackages,
  type Lockfile,
  type Metafile,
  parseDpkgStatus,
  readInputs,
  type SbomInputs,
  type SbomParams,
} from "../src/sbom-inputs.js";

const ROOT = join(__dirname, "../..");
const SERVICE = join(ROOT, "service");
const metafile = JSON.parse(readFileSync(join(SERVICE, "dist/main.meta.json"), "utf8")) as Metafile;
const lockfile = JSON.parse(readFileSync(join(ROOT, "package-lock.json"), "utf8")) as Lockfile;
const PARAMS: SbomParams = {
  name: "dummyapp",
  version: "2.0.0",
  commit: "4b825dc642cb6eb9a060e54bf8d69288fbee4904",
  created: "2026-12-01T00:00:00Z",
  platform: "linux/arm64",
  nodeVersion: "24.13.1",
  runtimeImage: `gcr.io/distroless/nodejs24-debian12:nonroot@sha256:${"1".repeat(64)}`,
  poetryImage: `philpennock/poetry@sha256:${"2".repeat(64)}`,
  sourceUrl: "https://github.com/PennockTech/dummyapp",
  workspace: "service",
};

/** `name@version` of every package with code in main.js, found as Node finds a file's package: its nearest package.json with a name. */
function packagesInBundle(): Set<string> {
  const found = new Set<string>();
  const [, main] = Object.entries(metafile.outputs).find(([out]) => out.endsWith("main.js"))!;
  for (const [input, { bytesInOutput }] of Object.entries(main.inputs)) {
    if (bytesInOutput === 0 || !input.includes("node_modules/")) continue;
    for (let dir = dirname(join(SERVICE, input)); dir.includes("node_modules"); dir = dirname(dir)) {
      const manifest = join(dir, "package.json");
      if (!existsSync(manifest)) continue;
      const { name, version } = JSON.parse(readFileSync(manifest, "utf8"));
      if (name && version && dir.endsWith(`node_modules/${name}`)) {
        found.add(`${name}@${version}`);
        break;
      }
    }
  }
  return found;
}

describe("bundledPackages", () => {
  it("lists exactly the packages whose code is in main.js, at their installed versions", () => {
    const listed = bundledPackages(metafile, lockfile, "service").map((p) => `${p.name}@${p.version}`);
    expect(new Set(listed)).toEqual(packagesInBundle());
    expect(listed.length).toBe(new Set(listed).size);
    // The service's direct dependencies are there; a dev dependency (esbuild) and one it never imports (vitest) are not.
    for (const name of ["koa", "@koa/router", "pino", "prom-client", "helmet", "lru-cache"]) {
      expect(listed.some((id) => id.startsWith(`${name}@`))).toBe(true);
    }
    expect(listed.some((id) => /^(esbuild|vitest)@/.test(id))).toBe(false);
  });

  it("takes license and integrity from the lockfile, and refuses a bundled package the lockfile lacks", () => {
    const koa = bundledPackages(metafile, lockfile, "service").find((p) => p.name === "koa")!;
    expect(koa).toMatchObject({ license: "MIT", integrity: lockfile.packages["node_modules/koa"]!.integrity });
    const without = { packages: { ...lockfile.packages, "node_modules/koa": {} } };
    expect(() => bundledPackages(metafile, without, "service")).toThrow(
      "sbom: node_modules/koa is bundled but has no version in the lockfile",
    );
  });

  it("ignores inputs with no bytes in the output (tree-shaken) and outputs that are not JavaScript", () => {
    const shaken: Metafile = {
      outputs: {
        "dist/main.js": { inputs: { "../node_modules/koa/lib/application.js": { bytesInOutput: 0 } } },
        "dist/main.js.map": { inputs: { "../node_modules/pino/pino.js": { bytesInOutput: 10 } } },
      },
    };
    expect(bundledPackages(shaken, lockfile, "service")).toEqual([]);
  });
});

describe("parseDpkgStatus", () => {
  it("reads installed packages (not removed ones) with version, architecture and source package", () => {
    const text = [
      "Package: libc6\nStatus: install ok installed\nArchitecture: arm64\nSource: glibc\nVersion: 2.36-9+deb12u10\nDescription: GNU C Library\n multi-line text",
      "Package: gone\nStatus: deinstall ok config-files\nArchitecture: arm64\nVersion: 1.0",
      "Package: tzdata\nArchitecture: all\nVersion: 2025b-0+deb12u1",
    ].join("\n\n");
    expect(parseDpkgStatus(text)).toEqual([
      { name: "libc6", version: "2.36-9+deb12u10", architecture: "arm64", source: "glibc" },
      { name: "tzdata", version: "2025b-0+deb12u1", architecture: "all" },
    ]);
  });
});

describe("spdxDocument", () => {
  const contents = readInputs(PARAMS, {
    metafile: join(SERVICE, "dist/main.meta.json"),
    lockfile: join(ROOT, "package-lock.json"),
    runtimeRoot: "/",
    poetry: join(SERVICE, "sample-poetry"),
  });
  const document = spdxDocument(contents);

  it("describes the service, containing every bundled package, Node.js, the base's Debian packages and the poems", () => {
    const byType = packagesByType(document);
    expect(new Set(byType.npm)).toEqual(packagesInBundle());
    expect(byType.generic).toEqual(["node@24.13.1"]);
    expect(byType.deb!.length).toBe(contents.debian.length);
    expect(byType.deb!.length).toBeGreaterThan(10);
    expect(byType.oci).toEqual([`philpennock/poetry@sha256:${"2".repeat(64)}`]);
    const files = (document.files as { fileName: string }[]).map((f) => f.fileName);
    expect(files).toEqual(["./poetry/build-day.txt", "./poetry/seasons/autumn.txt", "./poetry/small-hours.txt"]);
    const relationships = document.relationships as { spdxElementId: string; relationshipType: string }[];
    expect(relationships[0]).toEqual({
      spdxElementId: "SPDXRef-DOCUMENT",
      relationshipType: "DESCRIBES",
      relatedSpdxElement: "SPDXRef-Package-service",
    });
    const packages = document.packages as { SPDXID: string }[];
    expect(relationships.filter((r) => r.spdxElementId === "SPDXRef-Package-service")).toHaveLength(
      packages.length - 1,
    );
  });

  it("gives each package a purl and a unique SPDX id, and npm packages the lockfile's SHA-512", () => {
    const packages = document.packages as {
      SPDXID: string;
      name: string;
      checksums?: unknown;
      externalRefs?: { referenceLocator: string }[];
    }[];
    expect(new Set(packages.map((p) => p.SPDXID)).size).toBe(packages.length);
    for (const p of packages) expect(p.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    const router = packages.find((p) => p.name === "@koa/router")!;
    expect(router.externalRefs![0]!.referenceLocator).toMatch(/^pkg:npm\/%40koa\/router@\d+\.\d+\.\d+$/);
    const integrity = lockfile.packages["node_modules/@koa/router"]!.integrity!;
    expect(router.checksums).toEqual([
      { algorithm: "SHA512", checksumValue: Buffer.from(integrity.slice(7), "base64").toString("hex") },
    ]);
    const libc = packages.find((p) => p.name === "libc6");
    if (libc)
      expect(libc.externalRefs![0]!.referenceLocator).toMatch(
        /^pkg:deb\/debian\/libc6@.+\?arch=\w+&upstream=glibc&distro=debian-\d+$/,
      );
  });

  it("is the same bytes for the same inputs, and names the platform in its name and namespace", () => {
    expect(JSON.stringify(spdxDocument(contents))).toBe(JSON.stringify(document));
    expect(document.name).toBe("dummyapp-2.0.0-linux-arm64");
    expect(document.documentNamespace).toMatch(
      /^https:\/\/github\.com\/PennockTech\/dummyapp\/spdx\/dummyapp-2\.0\.0-linux-arm64-[0-9a-f]{32}$/,
    );
    const other = spdxDocument({ ...contents, npm: contents.npm.slice(1) });
    expect(other.documentNamespace).not.toBe(document.documentNamespace);
  });
});

describe("in the builder", () => {
  /** The builder's Node (24.13.1), which strips the files' types itself (runtime/runtime-node.ts provides it). */
  const node = inject("runtimeNode");
  /** A copy of what sbomOf (ci/src/containers.ts) mounts under /sbom, under a temporary directory instead. */
  const dir = mkdtempSync(join(tmpdir(), "sbom-builder-"));
  const at = (path: string) => path.replace(`${SBOM_DIR}/`, `${dir}/`);
  const inputs: SbomInputs = {
    metafile: at(SBOM_INPUTS.metafile),
    lockfile: at(SBOM_INPUTS.lockfile),
    runtimeRoot: at(SBOM_INPUTS.runtimeRoot),
    poetry: at(SBOM_INPUTS.poetry),
  };
  copyFileSync(join(__dirname, "../src/sbom.ts"), at(SBOM_SCRIPT));
  copyFileSync(join(__dirname, "../src/sbom-inputs.ts"), at(SBOM_INPUTS_SCRIPT));
  copyFileSync(join(SERVICE, "dist/main.meta.json"), inputs.metafile);
  copyFileSync(join(ROOT, "package-lock.json"), inputs.lockfile);
  const status = join(inputs.runtimeRoot, "var/lib/dpkg/status.d");
  mkdirSync(status, { recursive: true });
  mkdirSync(join(inputs.runtimeRoot, "etc"));
  writeFileSync(
    join(status, "libc6"),
    "Package: libc6\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9+deb12u10\n",
  );
  writeFileSync(join(status, "libc6.md5sums"), "not a record\n");
  writeFileSync(join(status, "tzdata"), "Package: tzdata\nArchitecture: all\nVersion: 2025b-0+deb12u1\n");
  writeFileSync(join(inputs.runtimeRoot, "etc/os-release"), 'ID=debian\nVERSION_ID="12"\n');
  cpSync(join(SERVICE, "sample-poetry"), inputs.poetry, { recursive: true });

  it("runs SBOM_MAIN on the two files as .mts, printing the document the module makes from the same inputs", () => {
    const main = SBOM_MAIN.replaceAll(`${SBOM_DIR}/`, `${dir}/`);
    expect(main).not.toContain(`${SBOM_DIR}/`);
    const run = spawnSync(node, ["--input-type=module", "--eval", main, JSON.stringify(PARAMS)], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
    expect(run.stdout).toBe(`${JSON.stringify(spdxDocument(readInputs(PARAMS, inputs)), null, 2)}\n`);
    const byType = packagesByType(JSON.parse(run.stdout));
    expect(new Set(byType.npm)).toEqual(packagesInBundle());
    expect(byType.deb).toEqual(["libc6@2.36-9+deb12u10", "tzdata@2025b-0+deb12u1"]);
    expect(run.stdout).toContain("pkg:deb/debian/libc6@2.36-9+deb12u10?arch=amd64&upstream=glibc&distro=debian-12");
    expect((JSON.parse(run.stdout).files as unknown[]).length).toBe(3);
  });
});
