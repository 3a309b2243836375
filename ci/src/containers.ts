/**
 * The container steps behind `build`, `test` and `serve`: a builder with the workspace installed, the service bundle
 * built in it, and the minimal runtime image around that bundle.
 */
import { type Container, type Directory, dag, type File, type Platform } from "@dagger.io/dagger";
import { PROMTOOL_IMAGE, REGISTRY_IMAGE } from "./image-refs.js";
import type { Pull } from "./pull.js";
import { SBOM_INPUTS, SBOM_INPUTS_SCRIPT, SBOM_MAIN, SBOM_SCRIPT } from "./sbom.js";
import type { SbomParams } from "./sbom-inputs.js";
import type { BuildStamp } from "./stamp.js";

/**
 * What the module never reads from the repository: dependencies, build output, git metadata, the generated Dagger
 * SDK, local secrets, and what benches and exports leave behind. Kept out before upload, so they cost no transfer and
 * never invalidate a cache.
 */
export const SOURCE_IGNORE = [
  ".git",
  "**/node_modules",
  "**/dist",
  "ci/sdk",
  "coverage",
  "**/*.log",
  "**/*.tar",
  "**/.env",
  "**/bench/results*.json",
  "**/*.cpuprofile",
];
/** Where the repository sits in the builder. */
const SOURCE_DIR = "/src";
/** Where the bundle sits in the runtime image. */
const APP_DIR = "/app";
/** Where the poems sit in the runtime image (and the bundle's default poetry directory). */
export const POETRY_DIR = "/poetry";
/** The port the service listens on in the image. */
export const PORT = 8080;
/** Distroless's `nonroot` user, numerically, so runtimes that check "not root" can tell without reading /etc/passwd. */
const RUNTIME_USER = "65532:65532";
/** The root package.json's workspaces. */
export const WORKSPACES = ["service", "ci"];
/** Everything `npm ci` reads: the root and workspace manifests and the lockfile. */
export const MANIFESTS = ["package.json", "package-lock.json", ...WORKSPACES.map((w) => `${w}/package.json`)];
/** Everything `npm run build -w service` reads (its tests excluded): a change elsewhere leaves the bundle cached. */
export const BUNDLE_INPUTS = {
  include: [
    "package.json",
    "tsconfig.json",
    "service/package.json",
    "service/tsconfig.json",
    "service/build.mjs",
    "service/src/**",
  ],
  exclude: ["service/src/**/*.test.ts"],
};
/**
 * The image's command. `--disable-sigusr1` (Node 24): otherwise a SIGUSR1 from anyone allowed to signal the process
 * opens Node's inspector on 127.0.0.1:9229, a debugger with full control of the service.
 */
export const ENTRYPOINT = ["node", "--disable-sigusr1", "--enable-source-maps", `${APP_DIR}/main.js`];
/** The bundle's files: nothing else of the build reaches the runtime image. */
const BUNDLE_FILES = ["main.js", "main.js.map"];
/** esbuild's record of what went into main.js, beside it in the build output: the SBOM's source. */
const METAFILE = "main.meta.json";
/** The image's own SBOM, next to the bundle it describes (`*.spdx.json`: where SBOM scanners look for one). */
export const SBOM_PATH = `${APP_DIR}/sbom.spdx.json`;

// Dagger 0.21 keys a step by its inputs' identity: a host directory's is its whole content, and
// `withDirectory(path, source, { include })` keeps that identity (core/schema/container.go withDirectory), so editing
// the README would re-run `npm ci`. `Directory.filter` and `Directory.file` are re-keyed by the content they keep
// (core/schema/directory.go: filter and directory wrapped in maintainContentHashing; file sets WithContentDigest), so
// each step below sees only a filtered view of the source.

/**
 * The builder on the engine's native platform with the workspace's dependencies installed. `npm ci` sees only
 * {@link MANIFESTS}, so its layer is reused until a dependency changes; npm's download cache lives in a cache volume,
 * so even a changed lockfile downloads only what is new.
 */
export function installed(source: Directory, image: string, pull: Pull): Container {
  return pull(image)
    .withMountedCache("/root/.npm", dag.cacheVolume("dummyapp-npm"))
    .withWorkdir(SOURCE_DIR)
    .withDirectory(SOURCE_DIR, source.filter({ include: MANIFESTS }))
    .withExec(["npm", "ci", "--no-audit", "--no-fund"]);
}

/**
 * The installed builder with the whole repository and the tools the test suite drives for real — promtool, the
 * registry (as `docker-registry`, its Debian name), skopeo (pushes and reads images in it), openssl, perl and setpriv
 * (to run the bundle as the image's non-root user) — and `CI=true`, so a missing tool fails the suite instead of
 * skipping its tests.
 */
export function testBench(source: Directory, image: string, pull: Pull): Container {
  return installed(source, image, pull)
    .withDirectory(SOURCE_DIR, source)
    .withExec(["apk", "add", "--no-cache", "openssl", "perl", "setpriv", "skopeo"])
    .withFile("/usr/local/bin/promtool", pull(PROMTOOL_IMAGE).file("/bin/promtool"))
    .withFile("/usr/local/bin/docker-registry", pull(REGISTRY_IMAGE).file("/bin/registry"))
    .withEnvVariable("CI", "true");
}

/**
 * The service bundle (`main.js` and its source map) built from {@link BUNDLE_INPUTS} with the stamp in its build
 * environment, every timestamp set to the commit's time.
 */
export function bundle(source: Directory, image: string, stamp: BuildStamp, pull: Pull): Directory {
  return installed(source, image, pull)
    .withDirectory(SOURCE_DIR, source.filter(BUNDLE_INPUTS))
    .withEnvVariable("BUILD_TAGS", stamp.buildTags.join(","))
    .withEnvVariable("VERSION", stamp.version)
    .withEnvVariable("GIT_COMMIT", stamp.commit)
    .withEnvVariable("SOURCE_DATE_EPOCH", String(stamp.sourceDateEpoch))
    .withEnvVariable("DEFAULT_POETRY_DIR", POETRY_DIR)
    .withExec(["npm", "run", "build", "-w", "service"])
    .directory(`${SOURCE_DIR}/service/dist`)
    .withTimestamps(stamp.sourceDateEpoch);
}

/** What {@link runtime} assembles. */
export interface RuntimeParts {
  /** The runtime base image: Node without a shell, npm or compilers. */
  image: string;
  /** The target platform; the engine's own when undefined. */
  platform?: Platform;
  poetry: Directory;
  bundle: Directory;
  labels: Record<string, string>;
  /** The image's SBOM (see {@link sbomOf}), placed at {@link SBOM_PATH}. */
  sbom: File;
  /** Every file's timestamp in the image's own layers. */
  sourceDateEpoch: number;
  pull: Pull;
}

/**
 * The runtime image. Only this assembly uses `platform`: it copies files and runs nothing, so a foreign platform needs
 * no emulation. Layers go rarest-changing first: the poems, then the bundle.
 */
export function runtime(parts: RuntimeParts): Container {
  let ctr = parts
    .pull(parts.image, parts.platform)
    .withDirectory(POETRY_DIR, parts.poetry.withTimestamps(parts.sourceDateEpoch))
    .withFiles(APP_DIR, [
      ...BUNDLE_FILES.map((name) => parts.bundle.file(name)),
      parts.sbom.withName(SBOM_PATH.slice(APP_DIR.length + 1)).withTimestamps(parts.sourceDateEpoch),
    ])
    .withUser(RUNTIME_USER)
    .withWorkdir(APP_DIR)
    .with(withNodeOnPath)
    .withEnvVariable("PORT", String(PORT))
    .withEnvVariable("POETRY_DIR", POETRY_DIR)
    .withExposedPort(PORT)
    // Exec form: the image has no shell, and Heroku runs a CMD through one but an ENTRYPOINT as is.
    .withEntrypoint(ENTRYPOINT);
  for (const [name, value] of Object.entries(parts.labels)) ctr = ctr.withLabel(name, value);
  return ctr;
}

/**
 * Distroless keeps node in /nodejs/bin, off the default PATH; adding it lets the entrypoint say plain `node`, which
 * also works if the runtime image is swapped for one with node elsewhere on PATH.
 */
export function withNodeOnPath(ctr: Container): Container {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the engine expands ${PATH} (expand: true), not JavaScript.
  return ctr.withEnvVariable("PATH", "/nodejs/bin:${PATH}", { expand: true });
}

/**
 * The merged filesystem of a data-only image. It is `FROM scratch` with an entrypoint that does not exist, so it is
 * never run: only its root filesystem is taken.
 */
export function poetryOf(image: string, pull: Pull): Directory {
  return pull(image).rootfs();
}

/** What {@link sbomOf} reads. */
export interface SbomParts {
  /** The builder, pulled: it runs ci/src/sbom.ts and sbom-inputs.ts with its own Node. */
  builder: Container;
  source: Directory;
  bundle: Directory;
  /** The runtime base for the image's platform: its dpkg records and os-release are read, nothing is run. */
  runtimeBase: Container;
  poetry: Directory;
  params: SbomParams;
}

/**
 * The SPDX document of one platform's image, made by ci/src/sbom.ts and sbom-inputs.ts in the builder from the bundle's
 * metafile, the lockfile, the runtime base's files and the poems, all mounted read-only. Cached by those inputs like
 * any step.
 */
export function sbomOf(parts: SbomParts): File {
  const out = "/sbom.spdx.json";
  return parts.builder
    .withMountedFile(SBOM_INPUTS.metafile, parts.bundle.file(METAFILE))
    .withMountedFile(SBOM_INPUTS.lockfile, parts.source.file("package-lock.json"))
    .withMountedDirectory(SBOM_INPUTS.runtimeRoot, parts.runtimeBase.rootfs())
    .withMountedDirectory(SBOM_INPUTS.poetry, parts.poetry)
    .withFile(SBOM_SCRIPT, parts.source.file("ci/src/sbom.ts"))
    .withFile(SBOM_INPUTS_SCRIPT, parts.source.file("ci/src/sbom-inputs.ts"))
    .withExec(["node", "--input-type=module", "--eval", SBOM_MAIN, JSON.stringify(parts.params)], {
      redirectStdout: out,
    })
    .file(out);
}
