// Imports module files the way the runtime's loader does (sdk/typescript/src/module/entrypoint/load.ts: a dynamic
// import of each file, under tsx with the module's tsconfig), one at a time so each failure names its file.
import { spawnSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type ModuleLayout, TSX_CLI } from "./module-layout.js";

/** Each .ts/.mts file under the layout's src/ (relative path) mapped to "ok" or the error it failed to load with. */
export function loadEachFile(layout: ModuleLayout, node: string): Record<string, string> {
  const files = (readdirSync(layout.src, { recursive: true }) as string[]).filter((f) => /\.m?ts$/.test(f)).sort();
  const loader = join(layout.dir, "load-each-file.ts");
  writeFileSync(
    loader,
    `const result: Record<string, string> = {};
for (const file of ${JSON.stringify(files)}) {
  try { await import(${JSON.stringify(`${layout.src}/`)} + file); result[file] = "ok"; }
  catch (err) { result[file] = String(err); }
}
console.log(JSON.stringify(result));
`,
  );
  const run = spawnSync(node, [TSX_CLI, "--no-deprecation", "--tsconfig", layout.tsconfig, loader], {
    cwd: layout.dir,
    encoding: "utf8",
  });
  if (run.status !== 0) throw new Error(`loader exited ${run.status}: ${run.stderr}`);
  return JSON.parse(run.stdout.trim().split("\n").at(-1)!) as Record<string, string>;
}
