/**
 * What the image's SBOM is made from, read from disk: the npm packages whose code esbuild put in main.js (its metafile's
 * inputs, looked up in the lockfile), the runtime base's Debian packages (dpkg records, and its os-release) and the
 * poetry data's files with their digests. sbom.ts assembles the SPDX document from what these return.
 *
 * `build` runs this file in the builder as is, beside sbom.ts (see SBOM_MAIN there), so it stays self-contained:
 * Node's own modules only, and only erasable TypeScript syntax.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix } from "node:path";

/** What the step is told besides its mounted inputs. */
export interface SbomParams {
  name: string;
  version: string;
  /** The commit built (`<sha>` or `<sha>-dirty`). */
  commit: string;
  /** ISO 8601 UTC: the commit's time, so the same build gives the same document. */
  created: string;
  /** `linux/amd64`. */
  platform: string;
  nodeVersion: string;
  /** Image references as the engine resolved them, `name[:tag]@sha256:…`. */
  runtimeImage: string;
  poetryImage: string;
  /** The repository's web address, for the service's own package. */
  sourceUrl: string;
  /** The directory (relative to the lockfile's) that the metafile's paths are relative to: the service workspace. */
  workspace: string;
}

/** An npm package with code in the bundle. */
export interface BundledPackage {
  name: string;
  version: string;
  license?: string;
  /** The lockfile's `integrity` (`sha512-<base64>`). */
  integrity?: string;
  resolved?: string;
  /** Where it was installed, as the lockfile keys it (`node_modules/type-is/node_modules/content-type`). */
  path: string;
}

/** A Debian package as dpkg records it. */
export interface DebianPackage {
  name: string;
  version: string;
  architecture: string;
  source?: string;
}

/** A file of the poetry data, relative to its root, with its digests. */
export interface DataFile {
  path: string;
  sha1: string;
  sha256: string;
}

/** The parts of esbuild's metafile read here. */
export interface Metafile {
  outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }>; entryPoint?: string }>;
}

/** The parts of a lockfile v2/v3 read here. */
export interface Lockfile {
  packages: Record<
    string,
    { version?: string; license?: string; integrity?: string; resolved?: string; link?: boolean }
  >;
}

/** Where {@link readInputs} finds each input: in the builder, the places under /sbom that sbom.ts's SBOM_INPUTS names. */
export interface SbomInputs {
  /** esbuild's metafile of the bundle. */
  metafile: string;
  /** The repository's package-lock.json. */
  lockfile: string;
  /** The runtime base's root filesystem (its dpkg records and os-release are read). */
  runtimeRoot: string;
  /** The poetry data's root. */
  poetry: string;
}

/** What sbom.ts's `spdxDocument` describes. */
export interface SbomContents {
  params: SbomParams;
  npm: BundledPackage[];
  debian: DebianPackage[];
  /** `debian-12` from the runtime base's os-release, for the Debian packages' purls. */
  distro?: string;
  poetry: DataFile[];
}

/** The last `node_modules/<name>` or `node_modules/@scope/name` of a path: the package a file belongs to. */
const PACKAGE_DIR = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//;

/**
 * The npm packages whose code is in the bundle: every metafile input with bytes in a `.js` output, grouped by the
 * package directory it lies in, looked up in the lockfile. Sorted by name and version; one entry per name@version.
 * Throws when a package is not in the lockfile: an SBOM that silently misses a package is worse than none.
 */
export function bundledPackages(metafile: Metafile, lockfile: Lockfile, workspace: string): BundledPackage[] {
  const dirs = new Set<string>();
  for (const [output, { inputs }] of Object.entries(metafile.outputs)) {
    if (!output.endsWith(".js")) continue;
    for (const [input, { bytesInOutput }] of Object.entries(inputs)) {
      const dir = bytesInOutput > 0 ? PACKAGE_DIR.exec(posix.normalize(posix.join(workspace, input)))?.[1] : undefined;
      if (dir) dirs.add(dir);
    }
  }
  const byId = new Map<string, BundledPackage>();
  for (const path of dirs) {
    const entry = lockfile.packages[path];
    if (!entry?.version) throw new Error(`sbom: ${path} is bundled but has no version in the lockfile`);
    const name = path.slice(path.lastIndexOf("node_modules/") + "node_modules/".length);
    const id = `${name}@${entry.version}`;
    if (!byId.has(id)) {
      byId.set(id, {
        name,
        version: entry.version,
        license: entry.license,
        integrity: entry.integrity,
        resolved: entry.resolved,
        path,
      });
    }
  }
  return [...byId.values()].sort((a, b) => compare(a.name, b.name) || compare(a.version, b.version));
}

/** The packages in dpkg status text (one or more stanzas, as in /var/lib/dpkg/status or a status.d file). */
export function parseDpkgStatus(text: string): DebianPackage[] {
  const packages: DebianPackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split("\n")) {
      const field = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
      if (field) fields.set(field[1]!.toLowerCase(), field[2]!.trim());
    }
    const name = fields.get("package");
    const version = fields.get("version");
    const status = fields.get("status");
    // /var/lib/dpkg/status also keeps removed packages' records; status.d files have no Status field.
    if (!name || !version || (status && !status.endsWith(" installed"))) continue;
    const source = fields.get("source")?.split(" ")[0];
    packages.push({ name, version, architecture: fields.get("architecture") ?? "all", ...(source ? { source } : {}) });
  }
  return packages;
}

/** Everything sbom.ts's `spdxDocument` needs, read from the inputs' places on disk. */
export function readInputs(params: SbomParams, at: SbomInputs): SbomContents {
  const metafile = JSON.parse(readFileSync(at.metafile, "utf8")) as Metafile;
  const lockfile = JSON.parse(readFileSync(at.lockfile, "utf8")) as Lockfile;
  const statusDir = join(at.runtimeRoot, "var/lib/dpkg/status.d");
  const statusFile = join(at.runtimeRoot, "var/lib/dpkg/status");
  const statusTexts = existsSync(statusDir)
    ? readdirSync(statusDir)
        .filter((f) => !f.endsWith(".md5sums"))
        .sort()
        .map((f) => readFileSync(join(statusDir, f), "utf8"))
    : existsSync(statusFile)
      ? [readFileSync(statusFile, "utf8")]
      : [];
  const debian = statusTexts.flatMap(parseDpkgStatus).sort((a, b) => compare(a.name, b.name));
  return {
    params,
    npm: bundledPackages(metafile, lockfile, params.workspace),
    debian,
    distro: distroOf(join(at.runtimeRoot, "etc/os-release")),
    poetry: existsSync(at.poetry) ? dataFiles(at.poetry) : [],
  };
}

/** `debian-12` from an os-release file (ID and VERSION_ID), or undefined. */
function distroOf(osRelease: string): string | undefined {
  if (!existsSync(osRelease)) return undefined;
  const fields = Object.fromEntries(
    readFileSync(osRelease, "utf8")
      .split("\n")
      .map((line) => /^([A-Z_]+)="?([^"]*)"?$/.exec(line))
      .filter((m) => m !== null)
      .map((m) => [m[1], m[2]]),
  );
  return fields.ID && fields.VERSION_ID ? `${fields.ID}-${fields.VERSION_ID}` : undefined;
}

/** Every regular file under `root`, sorted, with its SHA-1 and SHA-256. */
function dataFiles(root: string): DataFile[] {
  const files: DataFile[] = [];
  for (const path of (readdirSync(root, { recursive: true }) as string[]).sort()) {
    const full = join(root, path);
    if (!statSync(full, { throwIfNoEntry: false })?.isFile()) continue;
    const bytes = readFileSync(full);
    files.push({
      path,
      sha1: createHash("sha1").update(bytes).digest("hex"),
      sha256: createHash("sha256").update(bytes).digest("hex"),
    });
  }
  return files;
}

/** Code-unit order, not the locale's: the same inputs sort the same on any machine. */
function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
