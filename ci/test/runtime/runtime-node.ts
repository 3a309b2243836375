// The Node.js binary the Dagger runtime runs a module with (24.13.1). Where the tests already run on it (the pipeline's
// own builder, `node:24.13.1-alpine`), that is the one; elsewhere npm's `node-<os>-<arch>` package provides the same
// release. It is installed on first use into its own prefix under node_modules/.cache, not as a dependency: a
// dependency would link `node` into node_modules/.bin, where every npm script would pick it up (and, in the Alpine
// builder, fail to run the glibc binary).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RUNTIME_NODE_VERSION } from "./runtime-sdk.js";

const REPO = join(__dirname, "../../..");

/** Version printed by `binary -v`, or the reason it could not run. */
function versionOf(binary: string): string {
  const run = spawnSync(binary, ["-v"], { encoding: "utf8" });
  return run.status === 0 ? run.stdout.trim() : `cannot run: ${run.error?.message ?? run.stderr.trim()}`;
}

/**
 * The path of a Node.js 24.13.1 binary, installing npm's package for this platform if needed. Throws (never skips)
 * when none can be had, saying why.
 */
export function runtimeNode(): string {
  const want = `v${RUNTIME_NODE_VERSION}`;
  if (process.version === want) return process.execPath;
  const pkg = `node-${process.platform === "win32" ? "win" : process.platform}-${process.arch}`;
  const prefix = join(REPO, "node_modules", ".cache", `node-${want}`);
  const binary = join(prefix, "node_modules", pkg, "bin", "node");
  if (!existsSync(binary)) {
    execFileSync(
      "npm",
      [
        "install",
        "--no-save",
        "--no-package-lock",
        "--no-audit",
        "--no-fund",
        "--prefix",
        prefix,
        `${pkg}@${RUNTIME_NODE_VERSION}`,
      ],
      {
        stdio: ["ignore", "ignore", "inherit"],
      },
    );
  }
  const got = versionOf(binary);
  if (got !== want) throw new Error(`${pkg}@${RUNTIME_NODE_VERSION} at ${binary}: expected ${want}, got ${got}`);
  return binary;
}
