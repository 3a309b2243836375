// Loaded with `node --import` into a server by memory.mjs: every 100 ms, one JSON line with the process's resident set
// and where V8 says its memory is (heap spaces, external), appended to $BENCH_MEMORY_DIR/<pid>.jsonl.
import { appendFileSync, readFileSync } from "node:fs";
import { getHeapSpaceStatistics } from "node:v8";

const dir = process.env.BENCH_MEMORY_DIR;
const kib = (status, field) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1]) * 1024;

if (dir) {
  setInterval(() => {
    const status = readFileSync("/proc/self/status", "utf8");
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]));
    const { heapTotal, heapUsed, external } = process.memoryUsage();
    const sample = { rss: kib(status, "VmRSS"), heapTotal, heapUsed, external, spaces };
    appendFileSync(`${dir}/${process.pid}.jsonl`, `${JSON.stringify(sample)}\n`);
  }, 100).unref();
}
