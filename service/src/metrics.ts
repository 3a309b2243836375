import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { BuildInfo } from "./build-info";
import type { ConnectionLimit } from "./connection-limit";
import type { DroppedLines } from "./logger";
import type { PipelineLimit } from "./pipeline-limit";
import type { PoemCount, PoetryStore } from "./poetry-store";

/** The service's Prometheus registry and the one call the request path makes into it. */
export interface Metrics {
  registry: Registry;
  /** Count and time one finished request; `route` is the matched route template, never the raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** Count one client error (unparsable request, header timeout, reset…) by Node's error code. */
  observeClientError(code: string): void;
  /** Count one streamed poem whose file ended before its Content-Length (truncated while it streamed). */
  observeCutShort(): void;
}

/** Poems are counted at most every 10 s: fresher than a usual 15 s scrape interval, whatever a client scrapes. */
export const POEM_COUNT_TTL_MS = 10_000;
const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];
const labelNames = ["method", "route", "status"] as const;
/**
 * Create the registry: Node's default metrics, HTTP request counters and durations, build info, the poetry gauges and
 * the logger's dropped lines.
 * @param poetry the poetry store, whose poems are counted at scrape time (at most once per poemCountTtlMs); undefined when the service runs without poetry.
 * @param droppedLogLines the logger's dropped-line counts, read at scrape time.
 * @param poemCountTtlMs how long a count of the poems is reported before the tree is walked again.
 */
export function createMetrics(
  build: BuildInfo,
  poetry: Pick<PoetryStore, "countPoems" | "cacheSize"> | undefined,
  droppedLogLines: () => DroppedLines,
  poemCountTtlMs = POEM_COUNT_TTL_MS,
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "dummyapp_build_info",
    help: "The running build: version, commit and build tags. Always 1.",
    labelNames: ["version", "commit", "build_tags"],
    registers: [registry],
  }).set({ version: build.version, commit: build.commit, build_tags: build.buildTags.join(",") }, 1);
  // The poem gauges read one count (prom-client collects them concurrently), walked at most once per
  // poemCountTtlMs however often /metrics is scraped: a walk of 150,000 files took 0.3 s. A count that fails as a
  // whole is reported as unreadable, so the rest of the scrape is still served.
  let counting: Promise<PoemCount> | undefined;
  let counted: { at: number; count: PoemCount } | undefined;
  const count = () => {
    if (counted && performance.now() - counted.at < poemCountTtlMs) return Promise.resolve(counted.count);
    counting ??= (poetry?.countPoems() ?? Promise.resolve({ poems: 0, unreadable: 0, unnamable: 0 }))
      .catch(() => ({ poems: 0, unreadable: 1, unnamable: 0 }))
      .then((result) => {
        counted = { at: performance.now(), count: result };
        return result;
      })
      .finally(() => (counting = undefined));
    return counting;
  };
  new Gauge({
    name: "dummyapp_poems_available",
    help: "Poems the service can serve from its poetry directory.",
    registers: [registry],
    async collect() {
      this.set((await count()).poems);
    },
  });
  new Gauge({
    name: "dummyapp_poetry_unreadable_directories",
    help: "Directories of the poetry tree the last poems count could not read, and skipped.",
    registers: [registry],
    async collect() {
      this.set((await count()).unreadable);
    },
  });
  new Gauge({
    name: "dummyapp_poetry_unnamable_entries",
    help: "Entries of the poetry tree whose names are not valid UTF-8: no URL can ask for them, so they are not listed or counted.",
    registers: [registry],
    async collect() {
      this.set((await count()).unnamable);
    },
  });
  scrapedGauge(
    registry,
    "dummyapp_poetry_cache_bytes",
    "Bytes of poems and listings the poetry cache holds (bounded; least recently used entries go first).",
    () => poetry?.cacheSize().bytes ?? 0,
  );
  scrapedGauge(
    registry,
    "dummyapp_poetry_cache_entries",
    "Paths the poetry cache holds (bounded).",
    () => poetry?.cacheSize().entries ?? 0,
  );
  new Counter({
    name: "dummyapp_log_lines_dropped_total",
    help: "Log lines never written to stdout, by reason: buffer_full (its reader fell 1 MiB behind) or write_error (ENOSPC, EPIPE…).",
    labelNames: ["reason"],
    registers: [registry],
    collect() {
      const dropped = droppedLogLines();
      this.reset();
      this.inc({ reason: "buffer_full" }, dropped.bufferFull);
      this.inc({ reason: "write_error" }, dropped.writeError);
    },
  });
  const clientErrors = new Counter({
    name: "http_client_errors_total",
    help: "Requests the server could not read (parse errors, header timeouts, oversized headers) and client resets, by Node's error code.",
    labelNames: ["code"],
    registers: [registry],
  });
  const cutShort = new Counter({
    name: "dummyapp_poems_cut_short_total",
    help: "Streamed poems whose file ended before the Content-Length sent (truncated meanwhile): their connections were closed.",
    registers: [registry],
  });
  // The histogram's _count series, read at scrape time: one prom-client call a request instead of two (each is 1-3 µs
  // of label checks and hashing under the bench's load).
  new Counter({
    name: "http_requests_total",
    help: "HTTP requests served.",
    labelNames,
    registers: [registry],
    async collect() {
      const { values } = await durations.get();
      this.reset();
      for (const { metricName, labels, value } of values) {
        if (metricName === "http_request_duration_seconds_count") this.inc(labels, value);
      }
    },
  });
  const durations = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time to answer an HTTP request, by route template.",
    labelNames,
    registers: [registry],
  });
  return {
    registry,
    observeRequest: (method, route, status, seconds) => {
      // Methods outside the known set share one label value, so a client cannot mint series.
      durations.observe({ method: METHODS.includes(method) ? method : "OTHER", route, status }, seconds);
    },
    observeClientError: (code) => clientErrors.inc({ code }),
    observeCutShort: () => cutShort.inc(),
  };
}

/** A gauge read from `read` at each scrape. */
function scrapedGauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** A counter whose total `read` keeps, read at each scrape. */
function scrapedCounter(registry: Registry, name: string, help: string, read: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      this.reset();
      this.inc(read());
    },
  });
}

/** Register the pipelining limit's figures (README: Reliability). */
export function addPipelineMetrics(
  registry: Registry,
  pipeline: Pick<PipelineLimit, "pausedSockets" | "pauses">,
): void {
  scrapedGauge(
    registry,
    "dummyapp_pipeline_paused_sockets",
    "Connections not read right now: --pipeline-depth of their requests are unanswered.",
    pipeline.pausedSockets,
  );
  scrapedCounter(
    registry,
    "dummyapp_pipeline_pauses_total",
    "Times a connection stopped being read because --pipeline-depth of its requests were unanswered.",
    pipeline.pauses,
  );
}

/** Register the connection cap's figures (README: Reliability). */
export function addConnectionMetrics(registry: Registry, connections: ConnectionLimit): void {
  scrapedGauge(registry, "dummyapp_connections_open", "Client connections open.", () => connections.open());
  scrapedGauge(
    registry,
    "dummyapp_connections_max",
    "Client connections allowed (--max-connections).",
    () => connections.max,
  );
  scrapedCounter(
    registry,
    "dummyapp_connections_shed_total",
    "Idle connections closed to make room for new ones near the connection cap.",
    () => connections.shed(),
  );
  scrapedCounter(registry, "dummyapp_connections_refused_total", "Connections refused at the connection cap.", () =>
    connections.refused(),
  );
}
