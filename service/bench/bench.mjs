// npm run bench [-- --duration S --rounds N --connections C --pipelining P --starts N --servers A,B,… --out FILE
//                   --before BUNDLE]
//
// The service bundle side by side with reference servers answering the same bytes and headers from memory
// (reference-servers.mjs): bare node:http (the ceiling for Node here), bare Koa (Koa's ceiling) and bare Koa with
// @koa/router (the ceiling of a routed Koa service). Each server and autocannon run as separate processes — on a
// 2-core machine that is one core for the server under load and one for the load generator, so the generator never
// steals the server's core and every server gets the same deal. Rounds alternate (service, koa, koa-router, baseline,
// service, …) so machine noise lands on all of them alike. Besides req/s, each run reads the server's CPU time from
// /proc: µs of CPU per request is what a ratio is made of when the server is the bottleneck. The goal is stated
// against the framework's own ceiling: the service with every feature on at ≥ 0.95 of Koa + @koa/router; the ratios
// to node:http are context. `--before` adds another build of the service (the commit before a change, built with
// `node service/build.mjs --outfile F`) to the same rounds and cold starts, so a change is measured side by side.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { autocannon, bundle, ensureBundle, fetchRaw, kinds, poemName, repo, startServer } from "./harness.mjs";

const { values: opts } = parseArgs({
  options: {
    // fastify/benchmarks' settings: 100 connections, 10 pipelined requests each, 40 s.
    duration: { type: "string", default: "40" },
    rounds: { type: "string", default: "2" },
    connections: { type: "string", default: "100" },
    pipelining: { type: "string", default: "10" },
    starts: { type: "string", default: "7" },
    servers: { type: "string", default: kinds.join(",") },
    out: { type: "string", default: join(repo, "bench", "results.json") },
    before: { type: "string" },
  },
});
const duration = Number(opts.duration);
const rounds = Number(opts.rounds);
const paths = { poem: `/poetry/${poemName}`, healthz: "/healthz" };
const chosen = opts.servers.split(",");
/** Every server measured: the chosen ones, and the service as it was before a change when `--before` names its bundle. */
const measured = opts.before ? [...chosen, "before"] : chosen;
const valid = chosen.every((k) => kinds.includes(k)) && new Set(chosen).size === chosen.length;
if (!valid || !["service", "koa-router", "baseline"].every((k) => chosen.includes(k))) {
  console.error(
    `bench: --servers ${opts.servers}: expected distinct names from ${kinds.join(", ")}, comma-separated, service, koa-router and baseline among them`,
  );
  process.exit(2);
}

/** Peak resident set size (VmHWM) in MiB of a running process. */
function peakRssMiB(pid) {
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  return Math.round((kb / 1024) * 10) / 10;
}

const clockTicksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }));

/** CPU seconds (user + system) a process has used so far, as the kernel counts them. */
function cpuSeconds(pid) {
  // utime and stime are fields 14 and 15 of proc(5); counted from after the command name, which is in parentheses
  // and may itself hold spaces or parentheses, they are the 12th and 13th.
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/** The same bytes and headers from every server, apart from each response's own Date and X-Request-Id. */
async function checkSameResponses(servers) {
  const own = new Set(["date", "x-request-id"]);
  for (const path of Object.values(paths)) {
    const [first, ...rest] = await Promise.all(servers.map((s) => fetchRaw(s.port, path)));
    const shape = (r) =>
      JSON.stringify([
        r.status,
        r.rawHeaders.map((v, i) => (i % 2 === 1 && own.has(r.rawHeaders[i - 1].toLowerCase()) ? v.length : v)),
        r.body.toString("base64"),
      ]);
    for (const [i, r] of rest.entries()) {
      if (shape(r) !== shape(first)) {
        throw new Error(
          `${servers[i + 1].kind} differs from ${servers[0].kind} on ${path}:\n${shape(r)}\n${shape(first)}`,
        );
      }
    }
  }
}

/**
 * One autocannon run with the bench's settings against one server, with the CPU the server process (all its threads)
 * used meanwhile: µs per request, and cores' worth over the run. Near 1, the server's one JavaScript thread had no
 * time to spare, so its CPU per request is what set its req/s; well below 1, it waited on the load generator or lost
 * its core to the machine.
 */
function load(server, path, seconds) {
  const cpuBefore = cpuSeconds(server.child.pid);
  const r = autocannon(server.port, path, seconds, opts);
  const cpu = cpuSeconds(server.child.pid) - cpuBefore;
  return {
    reqPerSec: r.requests.average,
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    cpuUsPerRequest: round2((cpu * 1e6) / r.requests.total),
    coreShare: round2(cpu / r.duration),
  };
}

/** The goal: the service at this share of Koa + @koa/router's throughput, on every path. */
const TARGET_RATIO = 0.95;
/** The server the goal is measured against. */
const REFERENCE = "koa-router";

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round2 = (x) => Math.round(x * 100) / 100;

ensureBundle();
console.log(
  `bench: ${opts.connections} connections, pipelining ${opts.pipelining}, ${rounds} rounds of ${duration} s per server and path`,
);

// Cold start first, while nothing else of ours is running.
// The node:http reference's too (its script imports Koa, @koa/router and helmet as well), alternating, so that a slow
// VM — Node itself starting slowly — shows apart from what the service's own start adds.
const starts = [];
const baselineStarts = [];
const beforeStarts = [];
for (let i = 0; i < Number(opts.starts); i++) {
  for (const [kind, samples, serviceBundle] of [
    ["service", starts, bundle],
    ["baseline", baselineStarts, bundle],
    ...(opts.before ? [["service", beforeStarts, opts.before]] : []),
  ]) {
    const s = await startServer(kind, [], { serviceBundle });
    samples.push(Math.round(s.startMs));
    await s.stop();
  }
}

const servers = [];
try {
  for (const kind of chosen) servers.push(await startServer(kind));
  if (opts.before)
    servers.push({ ...(await startServer("service", [], { serviceBundle: opts.before })), kind: "before" });
  await checkSameResponses(servers);
  // Warm-up (not recorded): let the JIT and caches settle on every server and path.
  for (const s of servers) for (const path of Object.values(paths)) load(s, path, Math.min(duration, 5));

  const runs = Object.fromEntries(Object.keys(paths).map((p) => [p, Object.fromEntries(measured.map((k) => [k, []]))]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, path] of Object.entries(paths)) {
      for (const s of servers) {
        const run = load(s, path, duration);
        runs[name][s.kind].push(run);
        console.log(
          `round ${r + 1} ${name.padEnd(7)} ${s.kind.padEnd(10)} ${Math.round(run.reqPerSec).toString().padStart(7)} req/s  p50 ${run.p50Ms} ms  p99 ${run.p99Ms} ms  ` +
            `${run.cpuUsPerRequest} µs CPU/req  ${run.coreShare} core`,
        );
      }
    }
  }
  const rssMiB = Object.fromEntries(servers.map((s) => [s.kind, peakRssMiB(s.child.pid)]));

  const results = {
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
    settings: {
      connections: Number(opts.connections),
      pipelining: Number(opts.pipelining),
      durationS: duration,
      rounds,
    },
    bundleBytes: statSync(bundle).size,
    coldStartMs: {
      median: median(starts),
      samples: starts,
      baseline: median(baselineStarts),
      ...(opts.before && { before: median(beforeStarts) }),
    },
    peakRssMiB: rssMiB,
    paths: {},
  };
  for (const [name, byKind] of Object.entries(runs)) {
    const summary = Object.fromEntries(
      Object.entries(byKind).map(([kind, rs]) => [
        kind,
        {
          reqPerSec: Math.round(mean(rs.map((x) => x.reqPerSec))),
          p50Ms: mean(rs.map((x) => x.p50Ms)),
          p99Ms: mean(rs.map((x) => x.p99Ms)),
          cpuUsPerRequest: round2(mean(rs.map((x) => x.cpuUsPerRequest))),
          coreShare: { min: Math.min(...rs.map((x) => x.coreShare)), max: Math.max(...rs.map((x) => x.coreShare)) },
          rounds: rs,
        },
      ]),
    );
    // Per-round ratios show how much the noise moved the result; the headline is the ratio of the means.
    const ratiosToBaseline = Object.fromEntries(
      measured.map((kind) => [
        kind,
        {
          mean: round2(summary[kind].reqPerSec / summary.baseline.reqPerSec),
          perRound: byKind[kind].map((x, i) => round2(x.reqPerSec / byKind.baseline[i].reqPerSec)),
        },
      ]),
    );
    const ratioToReference = {
      mean: round2(summary.service.reqPerSec / summary[REFERENCE].reqPerSec),
      perRound: byKind.service.map((x, i) => round2(x.reqPerSec / byKind[REFERENCE][i].reqPerSec)),
    };
    // What the goal asks of the service's CPU, when servers are CPU-bound: the reference's µs per request ÷ ratio.
    const cpuBudgetUsPerRequest = round2(summary[REFERENCE].cpuUsPerRequest / TARGET_RATIO);
    results.paths[name] = {
      path: paths[name],
      ...summary,
      ratiosToBaseline,
      ratioToReference,
      cpuBudgetUsPerRequest,
    };
  }
  mkdirSync(dirname(opts.out), { recursive: true });
  writeFileSync(opts.out, `${JSON.stringify(results, null, 2)}\n`);

  console.log("");
  console.log("path     server       req/s   p50 ms   p99 ms   ×baseline   CPU µs/req   cores");
  for (const [name, p] of Object.entries(results.paths)) {
    for (const kind of measured) {
      const x = p[kind];
      const ratio = p.ratiosToBaseline[kind].mean.toFixed(2);
      console.log(
        `${name.padEnd(8)} ${kind.padEnd(10)} ${String(x.reqPerSec).padStart(7)} ${x.p50Ms.toFixed(1).padStart(8)} ${x.p99Ms.toFixed(1).padStart(8)}   ${ratio.padStart(9)}   ${x.cpuUsPerRequest.toFixed(1).padStart(10)}   ${x.coreShare.min.toFixed(2)}–${x.coreShare.max.toFixed(2)}`,
      );
    }
    console.log(
      `${name.padEnd(8)} ${TARGET_RATIO.toFixed(2)} of ${REFERENCE} allows ${p.cpuBudgetUsPerRequest.toFixed(1)} µs CPU/req (if the servers are CPU-bound); per round ${p.ratioToReference.perRound.join(", ")}`,
    );
  }
  console.log(`peak RSS MiB: ${measured.map((k) => `${k} ${rssMiB[k]}`).join(", ")}`);
  console.log(
    `cold start to first 200: ${results.coldStartMs.median} ms (median of ${starts.length}: ${starts.join(", ")}); node:http reference ${results.coldStartMs.baseline} ms${opts.before ? `, before ${results.coldStartMs.before} ms` : ""}`,
  );
  console.log(`bundle: ${results.bundleBytes} bytes${opts.before ? `, before ${statSync(opts.before).size}` : ""}`);
  console.log(`results: ${opts.out}`);
  for (const name of ["poem", "healthz"]) {
    const p = results.paths[name];
    console.log(
      `ratio ${name} service/${REFERENCE}: ${p.ratioToReference.mean.toFixed(2)} (goal ≥ ${TARGET_RATIO.toFixed(2)}; service/baseline ${p.ratiosToBaseline.service.mean.toFixed(2)})`,
    );
    if (opts.before) {
      const perRound = p.service.rounds.map((x, i) => round2(x.reqPerSec / p.before.rounds[i].reqPerSec));
      console.log(
        `change ${name} service/before: ${round2(p.service.reqPerSec / p.before.reqPerSec).toFixed(2)} req/s (per round ${perRound.join(", ")}), CPU µs/req ${p.before.cpuUsPerRequest} → ${p.service.cpuUsPerRequest}`,
      );
    }
  }
} finally {
  await Promise.all(servers.map((s) => s.stop()));
}
