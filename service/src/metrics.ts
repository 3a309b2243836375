import { Counter, collectDefaultMetrics, Gauge, type Metric, Registry } from "prom-client";
import type { BuildInfo } from "./build-info";
import type { DroppedLines } from "./logger";
import type { PoemCount, PoetryStore } from "./poetry-store";

/** The service's Prometheus registry and the one call the request path makes into it. */
export interface Metrics {
  registry: Registry;
  /** Count and time one finished request; `route` is the matched route template, never the raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** Count one client error (unparsable request, header timeout, reset…) by Node's error code. */
  observeClientError(code: string): void;
}

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];
const labelNames = ["method", "route", "status"] as const;
type RequestLabels = Record<(typeof labelNames)[number], string>;
/** prom-client's default buckets, in seconds. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** One (method, route, status) series, counted and timed in plain numbers. */
interface RequestSeries {
  labels: RequestLabels;
  count: number;
  sum: number;
  /** Observations per bucket, not cumulative; the last slot counts those above the largest bound. */
  perBucket: Float64Array;
}

/**
 * Create the registry: Node's default metrics, HTTP request counters and durations, build info, the poetry gauges and
 * the logger's dropped lines.
 * @param poetry the poetry store, whose poems are counted at scrape time; undefined when the service runs without poetry.
 * @param droppedLogLines the logger's dropped-line counts, read at scrape time.
 */
export function createMetrics(
  build: BuildInfo,
  poetry: Pick<PoetryStore, "countPoems" | "cacheSize"> | undefined,
  droppedLogLines: () => DroppedLines,
): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  new Gauge({
    name: "dummyapp_build_info",
    help: "The running build: version, commit and build tags. Always 1.",
    labelNames: ["version", "commit", "build_tags"],
    registers: [registry],
  }).set({ version: build.version, commit: build.commit, build_tags: build.buildTags.join(",") }, 1);
  // Both poem gauges read one count per scrape (prom-client collects them concurrently). A count that fails as a
  // whole is reported as unreadable, so the rest of the scrape is still served.
  let counting: Promise<PoemCount> | undefined;
  const count = () =>
    (counting ??= (poetry?.countPoems() ?? Promise.resolve({ poems: 0, unreadable: 0 }))
      .catch(() => ({ poems: 0, unreadable: 1 }))
      .finally(() => (counting = undefined)));
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
    name: "dummyapp_poetry_cache_bytes",
    help: "Bytes of poems and listings the poetry cache holds (bounded; least recently used entries go first).",
    registers: [registry],
    collect() {
      this.set(poetry?.cacheSize().bytes ?? 0);
    },
  });
  new Gauge({
    name: "dummyapp_poetry_cache_entries",
    help: "Paths the poetry cache holds (bounded).",
    registers: [registry],
    collect() {
      this.set(poetry?.cacheSize().entries ?? 0);
    },
  });
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
  const requests = new RequestSeriesSet();
  registerRequestMetrics(registry, requests);
  return {
    registry,
    observeRequest: (method, route, status, seconds) => requests.observe(method, route, status, seconds),
    observeClientError: (code) => clientErrors.inc({ code }),
  };
}

/**
 * The request series, kept by route, then status and method. A request is a few map lookups and additions on numbers:
 * prom-client's own inc/observe validate and hash the label set on every call, which under load cost about 2 µs a
 * request. Scrapes read the series (see registerRequestMetrics).
 */
class RequestSeriesSet {
  private readonly byRoute = new Map<string, Map<number, RequestSeries>>();

  observe(method: string, route: string, status: number, seconds: number): void {
    let byStatusAndMethod = this.byRoute.get(route);
    if (!byStatusAndMethod) {
      byStatusAndMethod = new Map();
      this.byRoute.set(route, byStatusAndMethod);
    }
    const methodIndex = METHODS.indexOf(method);
    const key = status * 16 + (methodIndex === -1 ? METHODS.length : methodIndex);
    let series = byStatusAndMethod.get(key);
    if (!series) {
      const labels = { method: methodIndex === -1 ? "OTHER" : method, route, status: String(status) };
      series = { labels, count: 0, sum: 0, perBucket: new Float64Array(BUCKETS.length + 1) };
      byStatusAndMethod.set(key, series);
    }
    let bucket = 0;
    while (bucket < BUCKETS.length && seconds > BUCKETS[bucket]!) bucket++;
    series.perBucket[bucket]!++;
    series.count++;
    series.sum += seconds;
  }

  *[Symbol.iterator](): IterableIterator<RequestSeries> {
    for (const byStatusAndMethod of this.byRoute.values()) yield* byStatusAndMethod.values();
  }

  clear(): void {
    this.byRoute.clear();
  }
}

/**
 * Expose the series as `http_requests_total` (a prom-client Counter filled at scrape time) and
 * `http_request_duration_seconds`. prom-client has no way to load a histogram's buckets, so that one is a metric of
 * our own with the shape its registry reads (name, help, type, get, reset), written out as prom-client writes its own.
 */
function registerRequestMetrics(registry: Registry, requests: RequestSeriesSet): void {
  new Counter({
    name: "http_requests_total",
    help: "HTTP requests served.",
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const series of requests) this.inc(series.labels, series.count);
    },
  });
  const name = "http_request_duration_seconds";
  const description = {
    name,
    help: "Time to answer an HTTP request, by route template.",
    type: "histogram",
    aggregator: "sum",
  };
  const durations = {
    ...description,
    async get() {
      const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
      for (const { labels, count, sum, perBucket } of requests) {
        let cumulative = 0;
        BUCKETS.forEach((le, i) => {
          cumulative += perBucket[i]!;
          values.push({ metricName: `${name}_bucket`, labels: { le, ...labels }, value: cumulative });
        });
        values.push({ metricName: `${name}_bucket`, labels: { le: "+Inf", ...labels }, value: count });
        values.push({ metricName: `${name}_sum`, labels, value: sum });
        values.push({ metricName: `${name}_count`, labels, value: count });
      }
      return { ...description, values };
    },
    reset: () => requests.clear(),
  };
  registry.registerMetric(durations as unknown as Metric);
}
