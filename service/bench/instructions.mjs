// npm run bench:instructions [-- --servers service,koa-router,baseline --path P --requests N --warmup N --bundle F]
//
// CPU per request counted in instructions, not seconds: each server runs under valgrind's callgrind, with
// instrumentation off while it starts and warms up, then on for exactly `--requests` requests (autocannon -c 10 -p 1
// in its own process, so every read of the server holds one request whatever the machine's load). Node runs with V8's
// --single-threaded, so its compiler and GC work on the main thread, inside the count. The compiler's share still
// varies from run to run (28k and 77k instructions a request for the same bundle), so the headline figure leaves it
// out: without it three runs of one bundle gave 232.7k, 232.7k and 241.1k (±2 %) on a machine at load 10, where the
// bench's seconds swing ±20 % round to round. Run each build twice or more. Instructions are not time (a syscall's
// kernel work is not counted, a cache miss counts as one); they rank what a change saves. `--bundle` runs another
// build of the service (another commit's). Each server's callgrind file is kept in bench/ (`callgrind_annotate`).
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { autocannon, ensureBundle, kinds, poemName, repo, startServer } from "./harness.mjs";

const { values: opts } = parseArgs({
  options: {
    servers: { type: "string", default: "service,koa-router,baseline" },
    path: { type: "string", default: `/poetry/${poemName}` },
    requests: { type: "string", default: "5000" },
    // 10,000 left V8 still optimising in the counted window (the counts of two runs 30 % apart); 40,000 do not.
    warmup: { type: "string", default: "40000" },
    bundle: { type: "string" },
  },
});
const servers = opts.servers.split(",");
for (const kind of servers) if (!kinds.includes(kind)) throw new Error(`--servers: ${kind} is not one of ${kinds}`);
const requests = Number(opts.requests);
const warmup = Number(opts.warmup);
if (!(Number.isInteger(requests) && requests > 0 && Number.isInteger(warmup) && warmup >= 0)) {
  throw new Error("--requests and --warmup: whole numbers of requests (--requests at least 1)");
}

if (!opts.bundle) ensureBundle();
const outDir = join(repo, "bench");
mkdirSync(outDir, { recursive: true });
const load = (port, amount) =>
  autocannon(port, opts.path, 0, { connections: 10, pipelining: 1, amount, timeout: 120 }).requests.total;

// V8's compilers (optimising code still hot) and its garbage collector, told apart in the totals.
const COMPILER = /v8::internal::(compiler|maglev|baseline)::|v8::internal::Zone::|BytecodeGenerator|interpreter::/;
const GC =
  /v8::internal::(Heap|Scavenger|MarkCompact|MinorMarkCompact|Sweeper|MarkingVisitor|MainMarkingVisitor|PagedSpace|Evacuat)|heap::/;

/** Total, compiler and GC instructions of a callgrind file, from callgrind_annotate's per-function self counts. */
function countsOf(file) {
  const text = execFileSync("callgrind_annotate", ["--threshold=100", file], { maxBuffer: 1 << 28 }).toString();
  const counts = { total: 0, compiler: 0, gc: 0 };
  for (const line of text.split("\n")) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
    if (!m) continue;
    const n = Number(m[1].replaceAll(",", ""));
    if (m[2].includes("PROGRAM TOTALS")) counts.total = n;
    else if (COMPILER.test(m[2])) counts.compiler += n;
    else if (GC.test(m[2])) counts.gc += n;
  }
  return counts;
}

/** Instructions per request of one server over `requests` requests, after `warmup` uncounted ones. */
async function measure(kind) {
  const out = join(outDir, `${kind}-${process.pid}.callgrind`);
  const prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${out}`, "-q"];
  const server = await startServer(kind, ["--single-threaded"], {
    prefix,
    timeoutMs: 180_000,
    serviceBundle: opts.bundle,
  });
  try {
    if (warmup) load(server.port, warmup);
    const pid = String(server.child.pid);
    execFileSync("callgrind_control", ["--instr=on", pid], { stdio: "ignore" });
    const answered = load(server.port, requests);
    execFileSync("callgrind_control", ["--dump", pid], { stdio: "ignore" });
    // The dump of the counted requests is the first part file.
    const file = `${out}.1`;
    const counts = countsOf(file);
    if (!counts.total) throw new Error(`no totals in ${file}`);
    const per = (n) => n / answered;
    return { kind, answered, perRequest: per(counts.total), compiler: per(counts.compiler), gc: per(counts.gc), file };
  } finally {
    await server.stop();
  }
}

const fmt = (n) => Math.round(n).toLocaleString("en").padStart(9);
const results = [];
for (const kind of servers) {
  const r = await measure(kind);
  results.push(r);
  console.log(
    `${kind.padEnd(11)}${fmt(r.perRequest - r.compiler)} instructions/req without V8's compiler (with it${fmt(r.perRequest)}; GC${fmt(r.gc)})  ${r.file}`,
  );
}
const reference = results.find((r) => r.kind === "koa-router");
const work = (r) => r.perRequest - r.compiler;
for (const r of results) {
  if (reference && r !== reference) {
    console.log(`ratio ${opts.path} koa-router/${r.kind}: ${(work(reference) / work(r)).toFixed(3)}`);
  }
}
