// Bundle the service into one self-contained file, stamped like a Go binary: version, commit, build time, build tags.
// Usage: node build.mjs [--outfile dist/main.js] (also writes esbuild's metafile as dist/main.meta.json); env VERSION, GIT_COMMIT, BUILD_TIME or SOURCE_DATE_EPOCH, BUILD_TAGS,
// DEFAULT_POETRY_DIR.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";

/** Build tags this service knows; each is a compile-time switch, like a Go build tag. */
const KNOWN_TAGS = ["heroku"];

const here = new URL(".", import.meta.url);
const { values } = parseArgs({ options: { outfile: { type: "string", default: "dist/main.js" } } });
// The metafile goes beside the bundle as <name>.meta.json: any other name would be overwritten by it.
if (!values.outfile.endsWith(".js")) {
  console.error(`build: invalid --outfile ${JSON.stringify(values.outfile)}: the name must end in .js`);
  process.exit(2);
}
const pkg = JSON.parse(readFileSync(new URL("package.json", here), "utf8"));

const tags = [...new Set((process.env.BUILD_TAGS ?? "").split(/[\s,]+/).filter(Boolean))].sort();
const unknown = tags.filter((t) => !KNOWN_TAGS.includes(t));
if (unknown.length > 0) {
  console.error(`build: unknown build tag ${JSON.stringify(unknown[0])}: known tags are ${KNOWN_TAGS.join(", ")}`);
  process.exit(2);
}

function gitCommit() {
  try {
    return execFileSync("git", ["rev-parse", "HEAD"], {
      cwd: here,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return "unknown";
  }
}

/** ISO 8601 UTC in whole seconds: SOURCE_DATE_EPOCH's (reproducible-builds.org), else now. */
function buildTimeOf(epoch) {
  if (epoch !== undefined && !/^\d+$/.test(epoch)) {
    console.error(`build: invalid SOURCE_DATE_EPOCH ${JSON.stringify(epoch)}: expected whole seconds since 1970`);
    process.exit(2);
  }
  return new Date(epoch === undefined ? Date.now() : Number(epoch) * 1000).toISOString().replace(/\.\d+Z$/, "Z");
}

const buildInfo = {
  name: pkg.name,
  version: process.env.VERSION || pkg.version,
  commit: process.env.GIT_COMMIT || gitCommit(),
  buildTime: process.env.BUILD_TIME || buildTimeOf(process.env.SOURCE_DATE_EPOCH),
  buildTags: tags,
  // Relative paths are taken from the bundle's directory: from service/dist that is the sample poems.
  defaultPoetryDir: process.env.DEFAULT_POETRY_DIR || "../sample-poetry",
};

const outfile = new URL(values.outfile, here).pathname;
const { metafile } = await esbuild.build({
  entryPoints: [new URL("src/main.ts", here).pathname],
  // The metafile's paths are relative to this directory, not the caller's: the SBOM resolves them from service/.
  absWorkingDir: fileURLToPath(here),
  outfile,
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: true,
  sourcemap: true,
  logLevel: "warning",
  // Which package files went into the bundle: the image's SBOM lists exactly these (ci/src/sbom-inputs.ts).
  metafile: true,
  define: {
    __BUILD_INFO__: JSON.stringify(buildInfo),
    __HEROKU_METRICS__: String(tags.includes("heroku")),
  },
});
writeFileSync(outfile.replace(/\.js$/, ".meta.json"), JSON.stringify(metafile));
console.log(`build: ${values.outfile} ${buildInfo.version} ${buildInfo.commit.slice(0, 12)} tags=[${tags.join(",")}]`);
