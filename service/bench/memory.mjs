// `npm run bench:memory`: where each server's memory is under the bench's load — the service and the reference servers
// one after the other, each sampled every 100 ms from inside (memory-sampler.mjs) while autocannon loads the poem and
// then /healthz (`-c 100 -p 10` as in bench.mjs). Prints, per server and round, the resident set idle and at its peak,
// and at that peak how much of it V8's heap (by space) and external memory hold, and the rest (code, native). Options:
// `-- --duration S --rounds N --servers A,B,… --before BUNDLE` (another build of the service, as in bench.mjs).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { autocannon, ensureBundle, kinds, poemName, startServer } from "./harness.mjs";

const { values: opts } = parseArgsOrExit({
  options: {
    duration: { type: "string", default: "20" },
    servers: { type: "string", default: "service,koa-router,baseline" },
    before: { type: "string" },
    rounds: { type: "string", default: "1" },
  },
});
/** parseArgs, or one line naming the bad option and exit 2. */
function parseArgsOrExit(config) {
  try {
    return parseArgs(config);
  } catch (err) {
    console.error(
      `bench:memory: ${err.message} (options: ${Object.keys(config.options)
        .map((o) => `--${o}`)
        .join(", ")})`,
    );
    process.exit(2);
  }
}

const chosen = opts.servers.split(",");
for (const kind of chosen) if (!kinds.includes(kind)) throw new Error(`--servers: ${kind}: expected some of ${kinds}`);
// --before BUNDLE: another build of the service (the commit before a change) measured in the same rounds.
if (opts.before) chosen.push("before");

const MiB = (bytes) => (bytes / 2 ** 20).toFixed(1);
const sampler = new URL("./memory-sampler.mjs", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "bench-memory-"));
process.env.BENCH_MEMORY_DIR = dir;
ensureBundle();

const rows = [];
try {
  for (let round = 0; round < Number(opts.rounds); round++)
    for (const kind of chosen) {
      const server =
        kind === "before"
          ? await startServer("service", ["--import", sampler], { serviceBundle: opts.before })
          : await startServer(kind, ["--import", sampler]);
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const path of [`/poetry/${poemName}`, "/healthz"]) autocannon(server.port, path, Number(opts.duration));
      await server.stop();
      const samples = readFileSync(join(dir, `${server.child.pid}.jsonl`), "utf8")
        .trim()
        .split("\n")
        .map(JSON.parse);
      const peak = samples.reduce((a, b) => (b.rss > a.rss ? b : a));
      rows.push({ kind, idle: samples[0], peak });
    }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// Only the heap spaces that hold something at a peak (of the eleven V8 reports, four or five do).
const spaces = Object.keys(rows[0].peak.spaces).filter((s) => rows.some((r) => r.peak.spaces[s] >= 2 ** 19));
const baseline = rows.find((r) => r.kind === "baseline");
console.log(`memory under -c 100 -p 10, ${opts.duration} s on the poem then ${opts.duration} s on /healthz (MiB)`);
const head = ["idle RSS", "peak RSS", "÷ node:http", "heap", ...spaces.map((s) => s.replace(/_space$/, ""))];
console.log(["server".padEnd(10), ...[...head, "external", "rest"].map((h) => h.padStart(11))].join(" "));
for (const { kind, idle, peak } of rows) {
  const ratio = baseline ? (peak.rss / baseline.peak.rss).toFixed(2) : "";
  const mib = [idle.rss, peak.rss].map(MiB);
  const heap = [peak.heapTotal, ...spaces.map((s) => peak.spaces[s]), peak.external].map(MiB);
  // The rest: what neither V8's heap nor external memory accounts for (Node's and V8's code, native allocations).
  const rest = MiB(peak.rss - peak.heapTotal - peak.external);
  console.log([kind.padEnd(10), ...[...mib, ratio, ...heap, rest].map((c) => c.padStart(11))].join(" "));
}
