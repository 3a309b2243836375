// Load: every file of the module imports in the layout the Dagger runtime gives it (runtime/module-layout.ts), with its
// loader (tsx 4.15.6) and Node (24.13.1). A name the runtime's SDK index lacks fails here as it fails every `dagger call`.
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it } from "vitest";
import { loadEachFile } from "./runtime/load-files.js";
import { layOutModule } from "./runtime/module-layout.js";
import {
  RUNTIME_NODE_VERSION,
  RUNTIME_NPM_VERSION,
  RUNTIME_TSX_VERSION,
  RUNTIME_TYPESCRIPT_VERSION,
} from "./runtime/runtime-sdk.js";

const node = inject("runtimeNode");
const SRC = join(__dirname, "../src");

/** ci/src with `files` added or replaced, in a temporary directory. */
function changedSource(files: Record<string, string>): string {
  const src = join(mkdtempSync(join(tmpdir(), "ci-src-")), "src");
  cpSync(SRC, src, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(src, name), text);
  return src;
}

describe("the module as the Dagger runtime loads it", () => {
  it(`runs on Node ${RUNTIME_NODE_VERSION} and tsx ${RUNTIME_TSX_VERSION}`, () => {
    expect(spawnSync(node, ["-v"], { encoding: "utf8" }).stdout.trim()).toBe(`v${RUNTIME_NODE_VERSION}`);
    const tsx = JSON.parse(
      spawnSync(node, ["-p", "JSON.stringify(require('tsx/package.json').version)"], {
        encoding: "utf8",
        cwd: __dirname,
      }).stdout,
    ) as string;
    expect(tsx).toBe(RUNTIME_TSX_VERSION);
  });

  it("installs nothing on a cold load: typescript at the runtime's version alone, and npm as the image has it", () => {
    const manifest = JSON.parse(readFileSync(join(__dirname, "../package.json"), "utf8")) as Record<string, unknown>;
    expect(manifest).toEqual({
      type: "module",
      packageManager: `npm@${RUNTIME_NPM_VERSION}`,
      dependencies: { typescript: RUNTIME_TYPESCRIPT_VERSION },
    });
  });

  it("imports every file of ci/src", { timeout: 300_000 }, () => {
    const files = readdirSync(SRC, { recursive: true }).filter((f) => /\.m?ts$/.test(String(f)));
    const loaded = loadEachFile(layOutModule({ entrypoint: false }), node);
    expect(Object.keys(loaded)).toHaveLength(files.length);
    expect(loaded).toEqual(Object.fromEntries(Object.keys(loaded).map((f) => [f, "ok"])));
  });

  it("fails, as the runtime does, on a file importing what only the npm package exports", { timeout: 300_000 }, () => {
    const src = changedSource({
      "helper.ts":
        'import { ExecError } from "@dagger.io/dagger";\nexport const isExec = (e: unknown) => e instanceof ExecError;\n',
    });
    const loaded = loadEachFile(layOutModule({ src, entrypoint: false }), node);
    expect(loaded["helper.ts"]).toBe(
      "SyntaxError: The requested module '@dagger.io/dagger' does not provide an export named 'ExecError'",
    );
  });
});
