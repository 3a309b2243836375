// Heroku language runtime metrics. Only the `heroku` build tag compiles this file into the bundle (see main.ts).
import {
  constants,
  type EventLoopUtilization,
  monitorEventLoopDelay,
  type PerformanceEntry,
  PerformanceObserver,
  performance,
} from "node:perf_hooks";
import { credentialsAsHeader, redactedUrl } from "./credentials";
import type { Logger } from "./logger";

/** The JSON body Heroku's metrics collector takes, with the Node names Heroku's own plugin uses. */
export interface HerokuMetricsPayload {
  counters: Record<string, number>;
  gauges: Record<string, number>;
}

/**
 * Collects GC and event-loop figures between two calls of `take()`: counters are deltas since the previous take,
 * gauges describe the interval just ended.
 */
class RuntimeSampler {
  private readonly delay = monitorEventLoopDelay({ resolution: 10 });
  private readonly gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.countGc(entry);
  });
  private gcCounts = zeroGc();
  private elu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor() {
    this.delay.enable();
    this.gc.observe({ entryTypes: ["gc"] });
  }

  /** The figures since the previous call, then start a new interval. */
  take(): HerokuMetricsPayload {
    const elu = performance.eventLoopUtilization(this.elu);
    this.elu = performance.eventLoopUtilization();
    const ms = (ns: number) => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);
    const payload = {
      counters: { ...this.gcCounts },
      gauges: {
        "node.eventloop.usage.percent": Math.round(elu.utilization * 10_000) / 100,
        "node.eventloop.delay.ms.median": ms(this.delay.percentile(50)),
        "node.eventloop.delay.ms.p95": ms(this.delay.percentile(95)),
        "node.eventloop.delay.ms.p99": ms(this.delay.percentile(99)),
        "node.eventloop.delay.ms.max": ms(this.delay.max),
      },
    };
    this.gcCounts = zeroGc();
    this.delay.reset();
    return payload;
  }

  /** Stop observing. */
  stop(): void {
    this.delay.disable();
    this.gc.disconnect();
  }

  private countGc(entry: PerformanceEntry): void {
    const kind = (entry as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind ?? 0;
    const pauseNs = Math.round(entry.duration * 1e6);
    const generation = kind === constants.NODE_PERFORMANCE_GC_MINOR ? "young" : "old";
    const c = this.gcCounts;
    c["node.gc.collections"]! += 1;
    c["node.gc.pause.ns"]! += pauseNs;
    c[`node.gc.${generation}.collections`]! += 1;
    c[`node.gc.${generation}.pause.ns`]! += pauseNs;
  }
}

function zeroGc(): Record<string, number> {
  return {
    "node.gc.collections": 0,
    "node.gc.pause.ns": 0,
    "node.gc.old.collections": 0,
    "node.gc.old.pause.ns": 0,
    "node.gc.young.collections": 0,
    "node.gc.young.pause.ns": 0,
  };
}

/** What starts the pusher. */
export interface HerokuMetricsOptions {
  /** The collector; a user name and password in it go as Basic auth and are never logged. */
  url: string;
  intervalMs: number;
  logger: Logger;
}

/**
 * POST runtime metrics to HEROKU_METRICS_URL every interval. A failed, refused or slow push is logged and dropped:
 * it never throws, never overlaps the next push and never holds the process open.
 * @returns a function that stops the pusher and aborts a push in flight.
 */
export function startHerokuMetrics({ url, intervalMs, logger }: HerokuMetricsOptions): () => void {
  const target = credentialsAsHeader(url);
  const sampler = new RuntimeSampler();
  let inFlight: AbortController | undefined;
  let stopped = false;
  const push = async () => {
    // The collector is still busy with the previous payload: skip this turn, and the next push covers both intervals.
    if (inFlight) return;
    const payload = sampler.take();
    inFlight = new AbortController();
    const timer = setTimeout(() => inFlight?.abort(), intervalMs / 2);
    try {
      const res = await fetch(target.url, {
        method: "POST",
        headers: { ...target.headers, "Content-Type": "application/json" },
        body: JSON.stringify(payload),
        signal: inFlight.signal,
      });
      await res.arrayBuffer();
      if (res.status !== 200) logger.warn({ status: res.status }, "heroku metrics push rejected");
    } catch (err) {
      if (stopped) return; // aborted by stop(): shutting down, not a collector failure
      const e = err as Error;
      logger.warn({ err: (e.cause as Error | undefined)?.message ?? e.message }, "heroku metrics push failed");
    } finally {
      clearTimeout(timer);
      inFlight = undefined;
    }
  };
  const interval = setInterval(() => void push(), intervalMs);
  interval.unref();
  logger.info({ url: redactedUrl(new URL(url)), intervalMs }, "heroku metrics enabled");
  return () => {
    stopped = true;
    clearInterval(interval);
    inFlight?.abort();
    sampler.stop();
  };
}
