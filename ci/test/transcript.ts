// Reading what the module asked the engine double for: the module under test, wired to the double, and small helpers
// to find steps in a call chain.
import { createHash } from "node:crypto";
import { type DirectoryID, dag, type GitRepository, type GitRepositoryID, type Secret } from "@dagger.io/dagger";
import { DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST } from "../src/clients/oci-content.js";
import { Dummyapp } from "../src/index.js";
import { READBACK_MAIN, REHEARSAL_HOST, type Readback } from "../src/rehearsal.js";
import { pushIndex } from "./clients/registry-server.js";
import { type Call, decodeId, EngineDouble } from "./engine-double.js";
import type { RegistryStub } from "./registry-stub.js";

/** The ID the CLI would pass as the module's source directory; opaque to the double, as a real host directory is. */
export const SOURCE_ID = "repository-source-directory";

/** The ID the CLI would pass as the module's git checkout. */
export const GIT_ID = "repository-git-checkout";

/** The checkout's HEAD, and its committer time as `git log -1 --format=%ct` prints it. */
export const HEAD = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
export const COMMIT_TIME = 1764547200;

/** The service manifest the double serves for `service/package.json`. */
export const MANIFEST = {
  name: "dummyapp",
  version: "2.0.0",
  description: "A small Koa web service",
  license: "BSD-2-Clause",
};

/** What the runtime image's node says its version is. */
export const NODE_VERSION = "24.13.1";

/** The engine's version and platform, as the double reports them. */
export const ENGINE_VERSION = "v0.21.9";
export const ENGINE_PLATFORM = "linux/amd64";

/** The SBOM the double answers for any SBOM file's contents: the smallest document of the shape sbom.ts writes. */
export const SBOM = {
  spdxVersion: "SPDX-2.3",
  packages: [
    {
      name: "koa",
      versionInfo: "3.3.0",
      externalRefs: [{ referenceType: "purl", referenceLocator: "pkg:npm/koa@3.3.0" }],
    },
  ],
};

/** The digest the double resolves an image reference to: a hash of the reference, so each image has its own. */
export function resolvedRef(address: string): string {
  if (address.includes("@sha256:")) return address;
  return `${address}@sha256:${createHash("sha256").update(address).digest("hex")}`;
}

/** What the double lists at the poetry image's root. */
export const POEMS = ["build-day.txt", "seasons/", "small-hours.txt"];

/**
 * Starts a double answering the manifest, the poetry listing and the checkout (HEAD, a clean tree, the commit time),
 * plus anything `more` answers first.
 */
export function startEngine(more: (leaf: Call, chain: Call[]) => unknown = () => undefined): Promise<EngineDouble> {
  return EngineDouble.start((leaf, chain) => {
    const specific = more(leaf, chain);
    if (specific !== undefined) return specific;
    const last = chain.at(-1);
    if (leaf.field === "contents" && last?.field === "file" && last.args.path === "service/package.json") {
      return JSON.stringify(MANIFEST);
    }
    if (leaf.field === "entries" && last?.field === "rootfs") return POEMS;
    if (leaf.field === "commit" && last?.field === "head") return HEAD;
    if (leaf.field === "isEmpty" && last?.field === "uncommitted") return true;
    if (leaf.field === "stdout" && (last?.args.args as string[] | undefined)?.includes("--format=%ct"))
      return `${COMMIT_TIME}\n`;
    if (leaf.field === "stdout" && (last?.args.args as string[] | undefined)?.includes("process.versions.node"))
      return `${NODE_VERSION}\n`;
    if (leaf.field === "imageRef" && last?.field === "from") return resolvedRef(String(last.args.address));
    if (leaf.field === "defaultPlatform") return ENGINE_PLATFORM;
    if (leaf.field === "version" && chain.length === 0) return ENGINE_VERSION;
    if (leaf.field === "contents" && last?.field === "file" && last.args.path === "/sbom.spdx.json") {
      return JSON.stringify(SBOM);
    }
    return undefined;
  });
}

/**
 * An answer to `publish` as the engine's: to Heroku's registry (the stub `heroku()` returns), the one manifest it
 * serves; anywhere else a real push of a small index of the variants' platforms, under the address's tag, into the
 * registry at `registryUrl` whatever host the address names. Returns `address@digest`.
 */
export function publishInto(registryUrl: string, heroku: () => RegistryStub): (leaf: Call) => Promise<string> {
  // One push at a time: docker-registry's filesystem storage fails concurrent uploads of one blob (DIGEST_INVALID).
  let pushes: Promise<unknown> = Promise.resolve();
  return (leaf) => {
    const address = String(leaf.args.address);
    const stub = heroku();
    if (address.startsWith(`${stub.host}/`) || address.startsWith("registry.heroku.com/"))
      return Promise.resolve(`${address}@${stub.manifestDigest}`);
    const [, repository, tag] = /^[^/]+\/(.+):([^:/]+)$/.exec(address)!;
    const platforms = (leaf.args.platformVariants as string[]).map((id) => String(chainFromId(id)[0]!.args.platform));
    const pushed = pushes.then(async () => `${address}@${await pushIndex(registryUrl, repository!, platforms, tag)}`);
    pushes = pushed.catch(() => undefined);
    return pushed;
  };
}

/**
 * The rehearsal's registry as the engine would hold it: answers each `publish` to localhost:5000 (recording what it
 * pushed: the platform variants with their labels, or one image with its media types) and the read-back exec's
 * stdout with what was recorded, as READBACK_MAIN prints it. Undefined for any other leaf.
 */
export function rehearsalRegistry(): (leaf: Call, chain: Call[]) => unknown {
  const pushed = new Map<string, Readback>();
  const imageOf = (chain: Call[]) => ({
    platform: String(chain[0]?.args.platform ?? ENGINE_PLATFORM),
    labels: Object.fromEntries(callsOf(chain, "withLabel").map((c) => [String(c.args.name), String(c.args.value)])),
  });
  return (leaf, chain) => {
    if (leaf.field === "publish" && String(leaf.args.address).startsWith(`${REHEARSAL_HOST}/`)) {
      const reference = String(leaf.args.address).slice(REHEARSAL_HOST.length + 1);
      const variants = (leaf.args.platformVariants as string[] | undefined)?.map(chainFromId);
      pushed.set(reference, {
        reference,
        mediaType: variants ? OCI_INDEX : leaf.args.mediaTypes === "DOCKER" ? DOCKER_MANIFEST_V2 : OCI_MANIFEST,
        images: variants ? variants.map(imageOf) : [imageOf(chain)],
      });
      return `${leaf.args.address}@${resolvedRef(reference).split("@")[1]}`;
    }
    const argv = callsOf(chain, "withExec").at(-1)?.args.args as string[] | undefined;
    if (leaf.field === "stdout" && argv?.includes(READBACK_MAIN)) {
      const requests = JSON.parse(argv.at(-1)!) as { repository: string; reference: string }[];
      return JSON.stringify(
        requests.flatMap(({ repository, reference }) => pushed.get(`${repository}:${reference}`) ?? []),
      );
    }
    return undefined;
  };
}

/** The module as the engine constructs it: the repository as source, every image at its default, Docker Hub pulls as given. */
export function defaultModule(dockerhub: { username?: Secret; password?: Secret } = {}): Dummyapp {
  return new Dummyapp(
    dag.loadDirectoryFromID(SOURCE_ID as DirectoryID),
    undefined,
    undefined,
    undefined,
    dockerhub.username,
    dockerhub.password,
  );
}

/** The git checkout as the engine passes it to a function that stamps a build (its contextual `git` argument). */
export function checkout(): GitRepository {
  return dag.loadGitRepositoryFromID(GIT_ID as GitRepositoryID);
}

/** The call chain behind an object, via its `id` (which is what the engine would be asked to build). */
export async function chainOf(object: { id(): Promise<string> }): Promise<Call[]> {
  return decodeId(await object.id())!;
}

/** The chain an ID argument stands for; fails the test if it is not an ID of the double. */
export function chainFromId(id: unknown): Call[] {
  const chain = decodeId(id);
  if (!chain) throw new Error(`not an engine-double ID: ${String(id)}`);
  return chain;
}

/** Whether an ID argument is the module's source directory. */
export function isSource(id: unknown): boolean {
  const chain = decodeId(id);
  return chain?.length === 1 && chain[0]!.field === "loadDirectoryFromID" && chain[0]!.args.id === SOURCE_ID;
}

/** Every call chain the engine was asked for: each query's, and those of the IDs in their arguments, recursively. */
export function allChains(queries: readonly { chain: Call[] }[]): Call[][] {
  const seen = new Set<string>();
  const found: Call[][] = [];
  const visit = (chain: Call[]) => {
    const key = JSON.stringify(chain);
    if (seen.has(key)) return;
    seen.add(key);
    found.push(chain);
    for (const call of chain) {
      for (const value of Object.values(call.args).flat()) {
        const nested = decodeId(value);
        if (nested) visit(nested);
      }
    }
  };
  for (const q of queries) visit(q.chain);
  return found;
}

/** Index of the `withExec` whose argv starts with `argv`; -1 when there is none. */
export function execIndex(chain: Call[], ...argv: string[]): number {
  return chain.findIndex(
    (call) => call.field === "withExec" && argv.every((arg, i) => (call.args.args as string[])[i] === arg),
  );
}

/** The calls of one kind, e.g. every `withEnvVariable`. */
export function callsOf(chain: Call[], field: string): Call[] {
  return chain.filter((call) => call.field === field);
}

/** The builder chain behind the runtime image: the chain of the bundle's `main.js` that `withFiles` copies in. */
export function builderChainOf(runtimeChain: Call[]): Call[] {
  const copy = runtimeChain.find((call) => call.field === "withFiles");
  if (!copy) throw new Error("the runtime image copies no files");
  return chainFromId((copy.args.sources as string[])[0]);
}
