/**
 * The image's SBOM: an SPDX 2.3 document of what really ships. esbuild bundles the service into one main.js, so no
 * package.json of its dependencies reaches the image and a scanner finds none: the packages come from esbuild's
 * metafile (the inputs whose bytes are in main.js) and their versions, licenses and hashes from the lockfile. Beside
 * them: Node.js, the Debian packages of the runtime base (distroless keeps dpkg records in /var/lib/dpkg/status.d)
 * and the poetry data, file by file. sbom-inputs.ts reads those; this file assembles the document and runs the step.
 *
 * `build` runs both files in the builder as is (`node` strips their types), next to the mounted inputs, so they stay
 * self-contained: Node's own modules only, only erasable TypeScript syntax, and from each other only `import type`
 * (erased): a value import would need `.js` here and `.mts` there, so {@link SBOM_MAIN} wires the two together.
 */
import { createHash } from "node:crypto";
import type { DataFile, SbomContents, SbomInputs, SbomParams } from "./sbom-inputs.js";

/** Where the SBOM step mounts its inputs and where its two files sit in the builder. */
export const SBOM_DIR = "/sbom";
export const SBOM_SCRIPT = `${SBOM_DIR}/sbom.mts`;
export const SBOM_INPUTS_SCRIPT = `${SBOM_DIR}/sbom-inputs.mts`;
/** The inputs' places under {@link SBOM_DIR}: the bundle's metafile, the lockfile, the runtime base's and poems' files. */
export const SBOM_INPUTS: SbomInputs = {
  metafile: `${SBOM_DIR}/main.meta.json`,
  lockfile: `${SBOM_DIR}/package-lock.json`,
  runtimeRoot: `${SBOM_DIR}/runtime`,
  poetry: `${SBOM_DIR}/poetry`,
};
/**
 * The shell-free entry point: `node --input-type=module --eval <SBOM_MAIN> <SbomParams as JSON>`; SPDX on stdout.
 * It imports both files and hands {@link main} the reader of {@link SBOM_INPUTS}.
 */
export const SBOM_MAIN = [
  `import { main } from "${SBOM_SCRIPT}";`,
  `import { readInputs } from "${SBOM_INPUTS_SCRIPT}";`,
  `await main(process.argv.slice(1), (params) => readInputs(params, ${JSON.stringify(SBOM_INPUTS)}));`,
].join(" ");

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

/**
 * Prints the SPDX document for `[params as JSON]` from what `read` gives for those params (in the builder,
 * sbom-inputs.ts's `readInputs` of the mounted inputs: see {@link SBOM_MAIN}).
 */
export async function main(args: string[], read: (params: SbomParams) => SbomContents): Promise<void> {
  try {
    const params = JSON.parse(args[0] ?? "") as SbomParams;
    const document = spdxDocument(read(params));
    process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
  } catch (err) {
    console.error(`sbom: ${(err as Error).message}`);
    process.exitCode = 1;
  }
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
