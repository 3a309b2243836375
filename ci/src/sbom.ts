/**
 * The image's SBOM: an SPDX 2.3 document of what really ships. esbuild bundles the service into one main.js, so no
 * package.json of its dependencies reaches the image and a scanner finds none: the packages come from esbuild's
 * metafile (the inputs whose bytes are in main.js) and their versions, licenses and hashes from the lockfile. Beside
 * them: Node.js, the Debian packages of the runtime base (distroless keeps dpkg records in /var/lib/dpkg/status.d)
 * and the poetry data, file by file.
 *
 * `build` runs this file in the builder as is (`node` strips its types), next to the mounted inputs, so it stays
 * self-contained: Node's own modules only, and only erasable TypeScript syntax.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix } from "node:path";

/** Where the SBOM step mounts its inputs and where this file sits in the builder. */
export const SBOM_DIR = "/sbom";
export const SBOM_SCRIPT = `${SBOM_DIR}/sbom.mts`;
/** The shell-free entry point: `node --input-type=module --eval <SBOM_MAIN> <SbomParams as JSON>`; SPDX on stdout. */
export const SBOM_MAIN = `import { main } from "${SBOM_SCRIPT}"; await main(process.argv.slice(1));`;
/** The inputs' places under {@link SBOM_DIR}: the bundle's metafile, the lockfile, the runtime base's and poems' files. */
export const SBOM_INPUTS = {
  metafile: `${SBOM_DIR}/main.meta.json`,
  lockfile: `${SBOM_DIR}/package-lock.json`,
  runtimeRoot: `${SBOM_DIR}/runtime`,
  poetry: `${SBOM_DIR}/poetry`,
};

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
  /** Where it was installed, as the lockfile keys it (`node_modules/koa/node_modules/mime-types`). */
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

/** What {@link spdxDocument} describes. */
export interface SbomContents {
  params: SbomParams;
  npm: BundledPackage[];
  debian: DebianPackage[];
  /** `debian-12` from the runtime base's os-release, for the Debian packages' purls. */
  distro?: string;
  poetry: DataFile[];
}

type Json = Record<string, unknown>;

/**
 * The SPDX 2.3 document (JSON) for one platform's image: the service as the described package, which contains
 * the bundled npm packages, Node.js, the runtime base's Debian packages and the poetry data (and that, its files).
 * Deterministic: the same inputs give the same bytes, its namespace included (a hash of the content).
 */
export function spdxDocument(contents: SbomContents): Json {
  const { params } = contents;
  const [os, arch] = params.platform.split("/");
  const root = "SPDXRef-Package-service";
  const packages: Json[] = [
    {
      SPDXID: root,
      name: params.name,
      versionInfo: params.version,
      downloadLocation: `git+${params.sourceUrl}@${params.commit.replace(/-dirty$/, "")}`,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: "NOASSERTION",
      filesAnalyzed: false,
      primaryPackagePurpose: "APPLICATION",
      ...(params.commit.endsWith("-dirty") ? { comment: "built from a tree with uncommitted changes" } : {}),
    },
  ];
  const relationships: Json[] = [
    { spdxElementId: "SPDXRef-DOCUMENT", relationshipType: "DESCRIBES", relatedSpdxElement: root },
  ];
  const ids = new Set<string>([root]);
  const add = (kind: string, pkg: Json, relationshipType = "CONTAINS") => {
    const id = uniqueId(`SPDXRef-Package-${kind}-${String(pkg.name)}-${String(pkg.versionInfo)}`, ids);
    packages.push({ SPDXID: id, ...pkg });
    relationships.push({ spdxElementId: root, relationshipType, relatedSpdxElement: id });
    return id;
  };

  for (const p of contents.npm) {
    const checksum = sha512Hex(p.integrity);
    add("npm", {
      name: p.name,
      versionInfo: p.version,
      downloadLocation: p.resolved ?? npmTarball(p.name, p.version),
      licenseConcluded: "NOASSERTION",
      licenseDeclared: spdxLicense(p.license),
      filesAnalyzed: false,
      ...(checksum ? { checksums: [{ algorithm: "SHA512", checksumValue: checksum }] } : {}),
      externalRefs: [purlRef(`pkg:npm/${encodeNpmName(p.name)}@${encodeURIComponent(p.version)}`)],
      primaryPackagePurpose: "LIBRARY",
      sourceInfo: `bundled into main.js from ${p.path}`,
    });
  }
  add(
    "node",
    {
      name: "node",
      versionInfo: params.nodeVersion,
      downloadLocation: `https://nodejs.org/dist/v${params.nodeVersion}/`,
      licenseConcluded: "NOASSERTION",
      licenseDeclared: "MIT",
      filesAnalyzed: false,
      externalRefs: [
        purlRef(`pkg:generic/node@${params.nodeVersion}?download_url=https://nodejs.org/dist/v${params.nodeVersion}/`),
      ],
      primaryPackagePurpose: "APPLICATION",
      sourceInfo: `the runtime of ${params.runtimeImage}`,
    },
    "DEPENDS_ON",
  );
  for (const d of contents.debian) {
    const qualifiers = [
      `arch=${d.architecture}`,
      ...(d.source ? [`upstream=${d.source}`] : []),
      ...(contents.distro ? [`distro=${contents.distro}`] : []),
    ];
    add("deb", {
      name: d.name,
      versionInfo: d.version,
      downloadLocation: "NOASSERTION",
      licenseConcluded: "NOASSERTION",
      licenseDeclared: "NOASSERTION",
      filesAnalyzed: false,
      externalRefs: [purlRef(`pkg:deb/debian/${d.name}@${d.version}?${qualifiers.join("&")}`)],
      primaryPackagePurpose: "LIBRARY",
      sourceInfo: `in the runtime base ${params.runtimeImage}`,
    });
  }
  const [poetryName, poetryDigest] = params.poetryImage.split("@");
  const poetryId = add("data", {
    name: poetryName,
    versionInfo: poetryDigest ?? "unknown",
    downloadLocation: "NOASSERTION",
    licenseConcluded: "NOASSERTION",
    licenseDeclared: "NOASSERTION",
    filesAnalyzed: contents.poetry.length > 0,
    ...(contents.poetry.length > 0
      ? { packageVerificationCode: { packageVerificationCodeValue: verificationCode(contents.poetry) } }
      : {}),
    externalRefs: [purlRef(ociPurl(params.poetryImage))],
    primaryPackagePurpose: "FILE",
    sourceInfo: "the poems at /poetry, merged from a data-only image",
  });
  const files = contents.poetry.map((f, i) => {
    const id = `SPDXRef-File-poetry-${i}`;
    relationships.push({ spdxElementId: poetryId, relationshipType: "CONTAINS", relatedSpdxElement: id });
    return {
      SPDXID: id,
      fileName: `./poetry/${f.path}`,
      checksums: [
        { algorithm: "SHA1", checksumValue: f.sha1 },
        { algorithm: "SHA256", checksumValue: f.sha256 },
      ],
      licenseConcluded: "NOASSERTION",
      copyrightText: "NOASSERTION",
    };
  });

  const body = {
    spdxVersion: "SPDX-2.3",
    dataLicense: "CC0-1.0",
    SPDXID: "SPDXRef-DOCUMENT",
    name: `${params.name}-${params.version}-${os}-${arch}`,
    documentNamespace: "",
    creationInfo: { created: params.created, creators: ["Tool: dummyapp-ci"] },
    packages,
    files,
    relationships,
  };
  const hash = createHash("sha256").update(JSON.stringify(body)).digest("hex");
  body.documentNamespace = `${params.sourceUrl}/spdx/${body.name}-${hash.slice(0, 32)}`;
  return body;
}

/** The package names in a document made by {@link spdxDocument}, by purl type: `npm` → `["koa@3.3.0", …]`. */
export function packagesByType(document: Json): Record<string, string[]> {
  const byType: Record<string, string[]> = {};
  for (const pkg of (document.packages ?? []) as Json[]) {
    const purl = ((pkg.externalRefs ?? []) as Json[]).find((r) => r.referenceType === "purl")?.referenceLocator;
    const type = typeof purl === "string" ? /^pkg:([a-z]+)\//.exec(purl)?.[1] : undefined;
    if (type) byType[type] = [...(byType[type] ?? []), `${String(pkg.name)}@${String(pkg.versionInfo)}`];
  }
  return byType;
}

/** Reads the mounted inputs (see {@link SBOM_INPUTS}) and prints the SPDX document for `[params as JSON]`. */
export async function main(args: string[]): Promise<void> {
  try {
    const params = JSON.parse(args[0] ?? "") as SbomParams;
    const document = spdxDocument(readInputs(params, SBOM_INPUTS));
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } catch (err) {
    console.error(`sbom: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}

/** Everything {@link spdxDocument} needs, read from the inputs' places on disk. */
export function readInputs(params: SbomParams, at: typeof SBOM_INPUTS): SbomContents {
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

/** SPDX 2.3's package verification code: SHA-1 of the sorted files' SHA-1s, concatenated. */
function verificationCode(files: DataFile[]): string {
  return createHash("sha1")
    .update(
      files
        .map((f) => f.sha1)
        .sort()
        .join(""),
    )
    .digest("hex");
}

function purlRef(locator: string): Json {
  return { referenceCategory: "PACKAGE-MANAGER", referenceType: "purl", referenceLocator: locator };
}

/** `pkg:oci/poetry@sha256%3A…?repository_url=docker.io/philpennock/poetry` for `philpennock/poetry@sha256:…`. */
function ociPurl(ref: string): string {
  const [name, digest] = ref.split("@");
  const repository = name!.replace(/:[^/:]+$/, "");
  const last = repository.split("/").pop()!;
  const version = digest ? `@${encodeURIComponent(digest)}` : "";
  return `pkg:oci/${last}${version}?repository_url=${repository}`;
}

/** Where npm serves a package's tarball (lockfiles written offline record no `resolved`). */
function npmTarball(name: string, version: string): string {
  return `https://registry.npmjs.org/${name}/-/${name.split("/").pop()}-${version}.tgz`;
}

/** `@koa/router` → `%40koa/router` (the purl spec's namespace encoding). */
function encodeNpmName(name: string): string {
  return name.startsWith("@") ? `%40${name.slice(1)}` : name;
}

/** A lockfile license as an SPDX expression, or NOASSERTION when there is none. */
function spdxLicense(license: string | undefined): string {
  return license && /^[A-Za-z0-9.+\-() ]+$/.test(license) ? license : "NOASSERTION";
}

/** The hex of a `sha512-<base64>` integrity, or undefined. */
function sha512Hex(integrity: string | undefined): string | undefined {
  const sri = integrity?.split(/\s+/).find((s) => s.startsWith("sha512-"));
  return sri ? Buffer.from(sri.slice("sha512-".length), "base64").toString("hex") : undefined;
}

/** An SPDX id from `wanted` (letters, digits, `.` and `-` only), made unique among `taken`. */
function uniqueId(wanted: string, taken: Set<string>): string {
  const base = wanted.replace(/[^A-Za-z0-9.-]+/g, "-");
  let id = base;
  for (let n = 2; taken.has(id); n++) id = `${base}-${n}`;
  taken.add(id);
  return id;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
