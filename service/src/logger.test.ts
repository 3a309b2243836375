import { PassThrough, type Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { batchedLines, createLogger, fileSink, requestLineWriter } from "./logger";

function lines(
  format: "json" | "text",
  level: string,
  write: (log: ReturnType<typeof createLogger>) => void,
): string[] {
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
  /** A sink that writes at once, copying what it is given as the buffer may be reused once `write` returns. */
  function sink() {
    const batches: string[] = [];
    return {
      batches,
      writableLength: 0,
      write: (batch: Buffer, done: () => void) => {
        if (batch.length > 0) batches.push(batch.toString("utf8")); // end() writes nothing to learn when all is out
        done();
      },
      on: () => undefined,
    };
  }

  /** A pipe whose reader has stopped: it keeps every batch it is given (without copying, as a socket does). */
  function stalledPipe() {
    const held: Array<{ batch: Buffer; done: () => void }> = [];
    return {
      get writableLength() {
        return held.reduce((n, h) => n + h.batch.length, 0);
      },
      write: (batch: Buffer, done: () => void) => void held.push({ batch, done }),
      on: () => undefined,
      /** The reader takes everything. */
      read: () => {
        const taken = held.splice(0);
        for (const { done } of taken) done();
        return taken.map(({ batch }) => batch.toString("utf8")).join("");
      },
    };
  }

  const MIB = 1024 * 1024;
  const quiet = () => undefined;

  it("holds lines until about 16 KiB are batched, then writes them whole and in order", () => {
    const out = sink();
    const lines = batchedLines(out, 60_000, MIB, quiet);
    const line = (i: number) => `{"n":${i},"text":"${"é".repeat(40)}"}\n`;
    for (let i = 0; i < 400; i++) lines.write(line(i));
    expect(out.batches.length).toBeGreaterThan(1);
    for (const batch of out.batches) {
      expect(Buffer.byteLength(batch)).toBeGreaterThanOrEqual(16 * 1024);
      expect(batch.endsWith("\n")).toBe(true);
    }
    lines.end();
    expect(out.batches.join("")).toBe(Array.from({ length: 400 }, (_, i) => line(i)).join(""));
  });

  it("writes a quiet service's lines within the flush interval", async () => {
    const out = sink();
    const lines = batchedLines(out, 20, MIB, quiet);
    lines.write("one line\n");
    expect(out.batches).toEqual([]);
    await new Promise((r) => setTimeout(r, 60));
    expect(out.batches).toEqual(["one line\n"]);
    lines.end();
  });

  it("with a reader that stopped, holds at most the limit, drops and counts the rest, and never garbles what it holds", async () => {
    const pipe = stalledPipe();
    const limit = 64 * 1024;
    const notices: string[] = [];
    const lines = batchedLines(pipe, 60_000, limit, (m) => void notices.push(m));
    const line = (i: number) => `{"n":${i},"pad":"${"x".repeat(200)}"}\n`;
    const total = 5000;
    for (let i = 0; i < total; i++) lines.write(line(i));
    // What it holds is bounded by the limit plus the one batch that crossed it.
    expect(pipe.writableLength).toBeLessThanOrEqual(limit + 20 * 1024);
    expect(lines.dropped.bufferFull).toBeGreaterThan(total / 2);
    expect(notices).toEqual([expect.stringContaining('dummyapp_log_lines_dropped_total{reason="buffer_full"}')]);
    // Each held batch kept its bytes (a reused buffer would have overwritten them): whole lines, in order.
    let ended = false;
    const finished = new Promise<void>((resolve) => lines.once("finish", resolve)).then(() => (ended = true));
    lines.end();
    // Ending waits until the pipe has taken what it holds.
    await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(false);
    const kept = pipe.read().split("\n").filter(Boolean);
    await finished;
    expect(kept.length + lines.dropped.bufferFull).toBe(total);
    const numbers = kept.map((l) => (JSON.parse(l) as { n: number }).n);
    expect(numbers).toEqual([...numbers].sort((a, b) => a - b));
    expect(numbers[0]).toBe(0);
  });

  it("when writes fail (ENOSPC), drops and counts their lines, says so once, and writes again once the sink recovers", () => {
    let failing = true;
    const written: string[] = [];
    const full = {
      writableLength: 0,
      write(batch: Buffer, done: (err?: Error) => void) {
        if (failing)
          return done(Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
        written.push(batch.toString("utf8"));
        done();
      },
      on: () => undefined,
    };
    const notices: string[] = [];
    const lines = batchedLines(full, 60_000, MIB, (m) => void notices.push(m));
    const line = (i: number) => `{"n":${i},"pad":"${"x".repeat(200)}"}\n`;
    for (let i = 0; i < 1000; i++) lines.write(line(i));
    failing = false;
    for (let i = 1000; i < 1100; i++) lines.write(line(i));
    lines.end();
    const kept = written.join("").split("\n").filter(Boolean);
    expect(lines.dropped.writeError + kept.length).toBe(1100);
    // All but the lines still batched when the sink recovered (one batch: 16 KiB of 214-byte lines).
    expect(lines.dropped.writeError).toBeGreaterThanOrEqual(1000 - 80);
    expect(kept.at(-1)).toBe(line(1099).trim());
    expect(notices).toEqual([
      expect.stringMatching(/^cannot write log lines to stdout \(ENOSPC\): .*reason="write_error"/),
    ]);
  });

  it("writes a line longer than the buffer by itself, after what was batched before it", () => {
    const out = sink();
    const lines = batchedLines(out, 60_000, MIB, quiet);
    const long = `${"x".repeat(20_000)}\n`;
    lines.write("before\n");
    lines.write(long);
    lines.write("after\n");
    lines.end();
    expect(out.batches).toEqual(["before\n", long, "after\n"]);
  });
});

describe("fileSink", () => {
  /** A file on a disk with `room` bytes free: writes what fits (a short write), then fails with ENOSPC. */
  function disk(room: number) {
    const file: Buffer[] = [];
    return {
      text: () => Buffer.concat(file).toString("utf8"),
      free: (bytes: number) => {
        room += bytes;
      },
      write: (_fd: number, buffer: Buffer, offset: number, length: number) => {
        if (room === 0) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" });
        const n = Math.min(length, room);
        file.push(Buffer.from(buffer.subarray(offset, offset + n)));
        room -= n;
        return n;
      },
    };
  }
  const line = (i: number) => `{"n":${i},"pad":"${"x".repeat(200 + (i % 7))}"}\n`;

  it("on a disk that fills mid-batch, writes or counts every line and finishes a cut line before any other", () => {
    // Room that ends inside a line, with several 16 KiB batches before and after it.
    const full = disk(3 * 16 * 1024 + 123);
    const lines = batchedLines(fileSink(1, full.write), 60_000, 1024 * 1024, () => undefined);
    for (let i = 0; i < 500; i++) lines.write(line(i));
    full.free(50_000);
    for (let i = 500; i < 600; i++) lines.write(line(i));
    lines.end();
    const kept = full.text().split("\n");
    expect(kept.pop()).toBe(""); // ends with a whole line
    // Every line in the file is one whole line: the cut one was finished, not glued to a later one.
    for (const text of kept) expect(line((JSON.parse(text) as { n: number }).n)).toBe(`${text}\n`);
    expect(kept.length + lines.dropped.writeError).toBe(600);
    // Some before the disk filled, and the last lines after it had room again.
    expect(kept.length).toBeGreaterThan(200);
    expect(kept.at(-1)).toBe(line(599).trim());
  });

  it("fails a write that takes nothing without an error, instead of retrying it for ever", () => {
    let lost: number | undefined;
    let error: Error | null | undefined;
    let calls = 0;
    const takesNothing = () => {
      if (++calls > 100) throw new Error("retried for ever");
      return 0;
    };
    fileSink(1, takesNothing).write(Buffer.from("one\ntwo\n"), (err, linesLost) => {
      error = err;
      lost = linesLost;
    });
    expect([error?.message, lost]).toEqual(["write wrote nothing", undefined]);
  });
});

describe("requestLineWriter", () => {
  const line = {
    requestId: "r-1",
    method: "GET",
    path: '/poetry/a "quoted" \\ päth',
    query: "x=1&y=\u0001",
    host: "example.com:80",
    remote: "::1",
    status: 200,
    durationUs: 1234,
    bytes: 148,
  };

  it("writes exactly the line pino writes for the same fields, apart from the time", () => {
    const ours = lines("json", "info", (log) => requestLineWriter(log)(line));
    const pinos = lines("json", "info", (log) => log.info(line, "request"));
    const withoutTime = (text: string) => text.replace(/"time":"[^"]+"/, '"time":""');
    expect(ours).toHaveLength(1);
    expect(withoutTime(ours[0]!)).toBe(withoutTime(pinos[0]!));
    expect(JSON.parse(ours[0]!)).toMatchObject({ level: 30, msg: "request", ...line });
  });

  // NEL (byte 0x85 in a Host header arrives as U+0085), U+2028 and U+2029 break lines for some readers (Python's
  // splitlines, editors); JSON.stringify leaves them and the C1 controls raw, pino-pretty leaves even C0 ones raw.
  it.each(["json", "text"] as const)("writes no character a reader could take as a line break (%s)", (format) => {
    const host = "a\u0085b\u2028c\u2029d\u009be\u0080f";
    // To stdout's batching, as the service logs.
    const batches: string[] = [];
    const stdout = batchedLines(
      {
        writableLength: 0,
        write: (batch, done) => {
          batches.push(batch.toString("utf8"));
          done();
        },
        on: () => undefined,
      },
      60_000,
      1024 * 1024,
      () => undefined,
    );
    const log = createLogger(format, "info", stdout as unknown as Writable);
    requestLineWriter(log)({ ...line, host });
    log.warn({ host, long: "x".repeat(8000) }, "a line longer than a batch");
    stdout.end();
    const out = batches.join("").split("\n").filter(Boolean);
    expect(out.join("\n")).not.toMatch(/[\u0080-\u009f\u2028\u2029]/);
    if (format === "json") expect(out.map((l) => JSON.parse(l).host)).toEqual([host, host]);
    else expect(out.join("\n")).toContain("a\\u0085b\\u2028c\\u2029d\\u009be\\u0080f");
  });

  it("honours the level, and reaches the text format too", () => {
    expect(lines("json", "warn", (log) => requestLineWriter(log)(line))).toEqual([]);
    expect(lines("text", "info", (log) => requestLineWriter(log)(line)).join("\n")).toContain("INFO: request");
  });
});
