// npm run bench:profile [-- --server service|koa|koa-router|baseline --path /poetry/small-hours.txt --duration S --top N --out FILE
//                           --bundle F]
//
// Where a server's time goes under the bench's load: it runs with V8's sampling profiler while autocannon
// (-c 100 -p 10, in its own process) loads one path; then each sample's self time is mapped back through the bundle's
// source map to the package or source file it came from, and the busiest functions are listed. The raw .cpuprofile is
// kept for Chrome DevTools. `--bundle` profiles another build of the service (another commit's, to compare).
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { SourceMap } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { autocannon, bundle, ensureBundle, poemName, repo, startServer } from "./harness.mjs";

const { values: opts } = parseArgs({
  options: {
    server: { type: "string", default: "service" },
    path: { type: "string", default: `/poetry/${poemName}` },
    duration: { type: "string", default: "10" },
    top: { type: "string", default: "25" },
    out: { type: "string" },
    bundle: { type: "string" },
  },
});
const out = opts.out ?? join(repo, "bench", `${opts.server}.cpuprofile`);

if (!opts.bundle) ensureBundle();
const serviceBundle = opts.bundle ?? bundle;
const profileDir = mkdtempSync(join(tmpdir(), "dummyapp-profile-"));
const server = await startServer(opts.server, ["--cpu-prof", "--cpu-prof-dir", profileDir], { serviceBundle });
const result = autocannon(server.port, opts.path, opts.duration);
// V8 writes the profile as the process exits.
await server.stop();

const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
if (!file) throw new Error(`no profile written in ${profileDir}`);
// Copied, not renamed: the temporary directory may be on another file system.
mkdirSync(dirname(out), { recursive: true });
copyFileSync(join(profileDir, file), out);
rmSync(profileDir, { recursive: true });
const profile = JSON.parse(readFileSync(out, "utf8"));
const map = new SourceMap(JSON.parse(readFileSync(`${serviceBundle}.map`, "utf8")));

// Self time per node: each sample's time delta (µs) goes to the node it caught running.
const selfUs = new Map();
for (const [i, id] of profile.samples.entries()) selfUs.set(id, (selfUs.get(id) ?? 0) + profile.timeDeltas[i]);

/** Where a profile node's code lives: a package, a service source file, Node itself, or V8 (GC, idle, program). */
function origin(frame) {
  if (frame.url === `file://${serviceBundle}` || frame.url === serviceBundle) {
    const entry = map.findEntry(frame.lineNumber, frame.columnNumber);
    const source = entry?.originalSource ?? "bundle";
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source);
    // A service file: src/… whether the map names it from the bundle's directory (../src/…) or by a longer path.
    const file = source.replace(/^.*\/service\//, "").replace(/^(\.\.\/)+/, "");
    return { where: pkg ? pkg[1] : file, line: (entry?.originalLine ?? 0) + 1 };
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  if (pkg) return { where: pkg[1], line: frame.lineNumber + 1 };
  if (frame.url.startsWith("node:"))
    return { where: `node:${frame.url.slice(5).split("/")[0]}`, line: frame.lineNumber + 1 };
  return { where: frame.url || `(${frame.functionName || "v8"})`, line: frame.lineNumber + 1 };
}

const byWhere = new Map();
const byFunction = new Map();
let total = 0;
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (!us) continue;
  total += us;
  const { where, line } = origin(node.callFrame);
  byWhere.set(where, (byWhere.get(where) ?? 0) + us);
  const key = `${node.callFrame.functionName || "(anonymous)"}  ${where}:${line}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}

const busy = total - (byWhere.get("(idle)") ?? 0);
const requests = result.requests.total;
const row = ([name, us]) =>
  `${((us / busy) * 100).toFixed(1).padStart(5)} %  ${(us / requests).toFixed(2).padStart(6)} µs/req  ${name}`;
const top = (m) =>
  [...m]
    .filter(([name]) => name !== "(idle)")
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(opts.top));
console.log(
  `${opts.server} ${opts.path}: ${Math.round(result.requests.average)} req/s, ${requests} requests, busy ${(busy / 1e6).toFixed(1)} s = ${(busy / requests).toFixed(1)} µs/req`,
);
console.log("\nself time by origin:");
for (const r of top(byWhere)) console.log(row(r));
console.log("\nself time by function:");
for (const r of top(byFunction)) console.log(row(r));
console.log(`\nprofile: ${out} (open in Chrome DevTools)`);
