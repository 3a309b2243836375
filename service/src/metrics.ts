import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { BuildInfo } from "./build-info";

/** The service's Prometheus registry and the one call the request path makes into it. */
export interface Metrics {
  registry: Registry;
  /** Count and time one finished request; `route` is the matched route template, never the raw path. */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"]);

/**
 * Create the registry: Node's default metrics, HTTP request counters and durations, build info and the poems gauge.
 * @param countPoems counts the poems at scrape time; undefined when the service runs without poetry.
 */
export function createMetrics(build: BuildInfo, countPoems: (() => Promise<number>) | undefined): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const labelNames = ["method", "route", "status"] as const;
  const requests = new Counter({ name: "http_requests_total", help: "HTTP requests served.", labelNames, registers: [registry] });
  const durations = new Histogram({
    name: "http_request_duration_seconds",
    help: "Time to answer an HTTP request, by route template.",
    labelNames,
    registers: [registry],
  });
  new Gauge({
    name: "dummyapp_build_info",
    help: "The running build: version, commit and build tags. Always 1.",
    labelNames: ["version", "commit", "build_tags"],
    registers: [registry],
  }).set({ version: build.version, commit: build.commit, build_tags: build.buildTags.join(",") }, 1);
  new Gauge({
    name: "dummyapp_poems_available",
    help: "Poems the service can serve from its poetry directory.",
    registers: [registry],
    async collect() {
      this.set(countPoems ? await countPoems() : 0);
    },
  });

  // Label objects are built once per (method, route, status) and reused, so a request allocates none; prom-client
  // still hashes them on every inc/observe.
  const children = new Map<string, { count: Counter.Internal; time: Histogram.Internal<string> }>();
  return {
    registry,
    observeRequest(method, route, status, seconds) {
      const key = `${method} ${status} ${route}`;
      let child = children.get(key);
      if (!child) {
        const labels = { method: KNOWN_METHODS.has(method) ? method : "OTHER", route, status: String(status) };
        child = { count: requests.labels(labels), time: durations.labels(labels) };
        children.set(key, child);
      }
      child.count.inc();
      child.time.observe(seconds);
    },
  };
}
