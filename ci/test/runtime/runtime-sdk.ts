// What the Dagger 0.21 TypeScript runtime gives a module as `@dagger.io/dagger`, as data (no Dagger code is copied).
// Source: dagger/dagger, branch backport-0.21 (v0.21.9), sdk/typescript/runtime/tsutils/module/index.ts, written to
// `<module>/sdk/index.ts` by sdk/typescript/runtime/lib_generator.go (GenerateBundleLibrary) and mapped by the tsconfig
// `paths` that sdk/typescript/runtime/tsutils/tsconfig_updator.go sets. `./core.js` is the whole SDK bundled
// (toolchains/engine-dev/build/sdk.go: `bun build ./src/index.ts`), `./client.gen.js` the generated API client; only
// the names below and the generated client reach a module. ExecError and the other error classes do not.

/** The values `sdk/index.ts` re-exports from `./core.js`. */
export const RUNTIME_CORE_EXPORTS = [
  "connection",
  "connect",
  "Context",
  "func",
  "check",
  "generate",
  "argument",
  "object",
  "field",
  "enumType",
  "entrypoint",
] as const;

/** The types it re-exports from `./core.js` (erased at run time). */
export const RUNTIME_CORE_TYPE_EXPORTS = ["ConnectOpts", "CallbackFct"] as const;

/** The Node.js of the runtime image (`node:24.13.1-alpine`, sdk/typescript/runtime/tsdistconsts/consts.go). */
export const RUNTIME_NODE_VERSION = "24.13.1";

/** The loader: toolchains/engine-dev/build/sdk.go TypescriptSDKTSXVersion, run as runtime_node.go does. */
export const RUNTIME_TSX_VERSION = "4.15.6";

/**
 * What keeps a cold module load install-free (sdk/typescript/runtime/runtime_node.go withInstalledDependencies): the
 * only dependency is `typescript` at exactly the runtime's own version (tsdistconsts DefaultTypeScriptVersion).
 */
export const RUNTIME_TYPESCRIPT_VERSION = "5.9.3";

/**
 * The npm already in the runtime image (sdk/typescript/runtime/config.go NpmDefaultVersion). Named as the module's
 * `packageManager`, the runtime's `npm -v | grep -qx <version> || npm install -g npm@<version>` finds it and installs
 * nothing; any other version would be installed on every cold load. Without the field the runtime would pick Yarn.
 */
export const RUNTIME_NPM_VERSION = "11.8.0";
