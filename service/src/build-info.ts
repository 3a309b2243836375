/** What the build stamped into the bundle: see service/build.mjs. */
export interface BuildInfo {
  name: string;
  version: string;
  commit: string;
  buildTime: string;
  buildTags: string[];
  /** Where the poems are when neither --poetry-dir nor POETRY_DIR says (relative paths: to the bundle). */
  defaultPoetryDir: string;
}

// Replaced by esbuild's `define` at build time; absent when the sources run under vitest.
declare const __BUILD_INFO__: BuildInfo | undefined;

/** The build's stamp, or a development stamp when running from source. */
export const buildInfo: BuildInfo =
  typeof __BUILD_INFO__ === "undefined"
    ? {
        name: "dummyapp",
        version: "0.0.0-dev",
        commit: "unknown",
        buildTime: "unknown",
        buildTags: [],
        defaultPoetryDir: "sample-poetry",
      }
    : __BUILD_INFO__;
