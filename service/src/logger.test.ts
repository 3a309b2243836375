import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { batchedLines, createLogger, requestLineWriter } from "./logger";

function lines(format: "json" | "text", level: string, write: (log: ReturnType<typeof createLogger>) => void): string[] {
  const stream = new PassThrough();
  const out: string[] = [];
  stream.on("data", (c: Buffer) => out.push(...c.toString().split("\n").filter(Boolean)));
  write(createLogger(format, level, stream));
  return out;
}

describe("createLogger", () => {
  it("writes one JSON object a line with an ISO time and no pid/hostname noise", () => {
    const [line] = lines("json", "info", (log) => log.info({ requestId: "r1" }, "request"));
    const parsed = JSON.parse(line!);
    expect(parsed).toMatchObject({ level: 30, msg: "request", requestId: "r1" });
    expect(parsed.time).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(parsed).not.toHaveProperty("pid");
  });

  it("writes plain text for humans, without colour codes", () => {
    const out = lines("text", "info", (log) => log.info({ port: 8080 }, "accepting connections")).join("\n");
    expect(out).toContain("INFO: accepting connections");
    expect(out).toContain("port: 8080");
    expect(out).not.toContain("\u001b[");
  });

  it("honours the level", () => {
    expect(lines("json", "warn", (log) => log.info("quiet"))).toEqual([]);
  });
});

describe("batchedLines", () => {
  /** A sink that copies what it is given, as the contract allows the batch buffer to be reused. */
  function sink() {
    const batches: string[] = [];
    let ended = false;
    return {
      batches,
      ended: () => ended,
      write: (batch: Buffer) => void batches.push(batch.toString("utf8")),
      end: () => void (ended = true),
      once: () => undefined,
    };
  }

  it("holds lines until about 4 KiB are batched, then writes them whole and in order", () => {
    const out = sink();
    const lines = batchedLines(out, 60_000);
    const line = (i: number) => `{"n":${i},"text":"${"é".repeat(40)}"}\n`;
    for (let i = 0; i < 100; i++) lines.write(line(i));
    expect(out.batches.length).toBeGreaterThan(1);
    for (const batch of out.batches) {
      expect(Buffer.byteLength(batch)).toBeGreaterThanOrEqual(4096);
      expect(batch.endsWith("\n")).toBe(true);
    }
    lines.end();
    expect(out.ended()).toBe(true);
    expect(out.batches.join("")).toBe(Array.from({ length: 100 }, (_, i) => line(i)).join(""));
  });

  it("writes a quiet service's lines within the flush interval", async () => {
    const out = sink();
    const lines = batchedLines(out, 20);
    lines.write("one line\n");
    expect(out.batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 60));
    expect(out.batches).toEqual(["one line\n"]);
    lines.end();
  });

  it("after a failed write, neither repeats nor garbles the batch the sink keeps to retry (as sonic-boom does)", () => {
    const written: string[] = [];
    let kept: Buffer | undefined;
    let failNext = true;
    const failingOnce = {
      write(batch: Buffer) {
        if (failNext) {
          failNext = false;
          kept = batch; // sonic-boom keeps the unwritten bytes, without copying them, and retries them first
          throw new Error("EIO: i/o error, write");
        }
        if (kept) written.push(kept.toString("utf8"));
        kept = undefined;
        written.push(batch.toString("utf8"));
      },
      end: () => undefined,
      once: () => undefined,
    };
    const lines = batchedLines(failingOnce, 60_000);
    const line = (i: number) => `{"n":${i},"pad":"${"x".repeat(200)}"}\n`;
    const errors: unknown[] = [];
    for (let i = 0; i < 40; i++) {
      try {
        lines.write(line(i));
      } catch (err) {
        errors.push(err); // the error reaches the caller, as a throwing stream's would
      }
    }
    lines.end();
    expect(errors).toHaveLength(1);
    expect(written.join("")).toBe(Array.from({ length: 40 }, (_, i) => line(i)).join(""));
  });

  it("writes a line longer than the buffer by itself, after what was batched before it", () => {
    const out = sink();
    const lines = batchedLines(out, 60_000);
    const long = `${"x".repeat(20_000)}\n`;
    lines.write("before\n");
    lines.write(long);
    lines.write("after\n");
    lines.end();
    expect(out.batches).toEqual(["before\n", long, "after\n"]);
  });
});

describe("requestLineWriter", () => {
  const line = { requestId: "r-1", method: "GET", path: '/poetry/a "quoted" \\ päth', query: "x=1&y=\u0001", host: "example.com:80", remote: "::1", status: 200, durationUs: 1234, bytes: 148 };

  it("writes exactly the line pino writes for the same fields, apart from the time", () => {
    const ours = lines("json", "info", (log) => requestLineWriter(log)(line));
    const pinos = lines("json", "info", (log) => log.info(line, "request"));
    const withoutTime = (text: string) => text.replace(/"time":"[^"]+"/, '"time":""');
    expect(ours).toHaveLength(1);
    expect(withoutTime(ours[0]!)).toBe(withoutTime(pinos[0]!));
    expect(JSON.parse(ours[0]!)).toMatchObject({ level: 30, msg: "request", ...line });
  });

  it("honours the level, and reaches the text format too", () => {
    expect(lines("json", "warn", (log) => requestLineWriter(log)(line))).toEqual([]);
    expect(lines("text", "info", (log) => requestLineWriter(log)(line)).join("\n")).toContain("INFO: request");
  });
});
