import { fstatSync, writeSync } from "node:fs";
import type { Writable } from "node:stream";
import { isatty } from "node:tty";
import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import { buildInfo } from "./build-info";

export type { Logger };

/** What the logger writes its lines to: stdout's batching, or a stream a test reads back. */
interface LineSink {
  write(line: string): unknown;
  end(): unknown;
  once(event: "finish", listener: () => void): unknown;
}

/**
 * The service's logger: JSON lines or plain text for humans, both batched to stdout (see batchedStdout).
 * @param destination where lines go; stdout when omitted. Tests pass a stream to read the lines back.
 */
export function createLogger(format: "json" | "text", level: string, destination?: Writable): Logger {
  const options = { level, base: undefined, timestamp: isoTimePerMillisecond() };
  const out: LineSink = destination ?? batchedStdout();
  if (format === "text") return pino(options, prettified(out));
  return pino(options, out);
}

/** `out` written through pino-pretty's formatter: one plain-text line (or a few) per JSON line. */
function prettified(out: LineSink & { dropped?: DroppedLines }) {
  const prettify = pretty.prettyFactory({ colorize: false });
  return {
    write: (line: string) => out.write(prettify(line)),
    end: () => out.end(),
    once: (event: "finish", listener: () => void) => out.once(event, listener),
    dropped: out.dropped,
  };
}

// Characters some log readers take as a line break (Python's splitlines, editors) though JSON.stringify leaves them
// raw, as pino-pretty does: C1 controls (NEL, U+0085: a Host header's byte 0x85), U+2028 and U+2029.
const LINE_BREAKING = /[\u0080-\u009f\u2028\u2029]/;
const LINE_BREAKING_ALL = new RegExp(LINE_BREAKING.source, "g");

/** `line` with every line-breaking character written as a \uXXXX escape: still JSON, and one line for any reader. */
function escapeLineBreaking(line: string): string {
  if (!LINE_BREAKING.test(line)) return line;
  return line.replace(LINE_BREAKING_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** The line logged for every request. */
export interface RequestLine {
  requestId: string;
  method: string;
  path: string;
  query: string;
  host: string;
  remote: string;
  status: number;
  durationUs: number;
  bytes: number;
}

/**
 * A writer of the per-request line: what `logger.info(line, "request")` writes (same keys in the same order, level,
 * time and destination; only a lone surrogate, which HTTP input cannot carry, would be escaped where pino writes it
 * raw), built from a template because its keys never change. pino walks and escapes every key of every object it
 * logs: under the bench's load that cost 2.6 µs a request, the template 0.8 µs.
 */
export function requestLineWriter(logger: Logger): (line: RequestLine) => void {
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as { write(text: string): unknown };
  const time = internals[pino.symbols.timeSym] as () => string;
  const prefix = `{"level":${logger.levels.values.info}`;
  const json = JSON.stringify;
  return (l) => {
    if (!logger.isLevelEnabled("info")) return;
    stream.write(
      `${prefix}${time()},"requestId":${json(l.requestId)},"method":${json(l.method)},"path":${json(l.path)},"query":${json(l.query)},` +
        `"host":${json(l.host)},"remote":${json(l.remote)},"status":${l.status},"durationUs":${l.durationUs},"bytes":${l.bytes},"msg":"request"}\n`,
    );
  };
}

/** The longest a log line waits in the batch before it is written. */
const FLUSH_EVERY_MS = 100;
/**
 * Lines are written in batches of about this many bytes: each write is a syscall, and under the bench's load 4 KiB
 * batches (about 17 request lines) still took 2-5 % of a request's CPU in write(2), 16 KiB ones about 1 % (0.4 µs).
 * Only this process writes its stdout, so a write larger than a pipe's atomic 4 KiB cannot interleave with another's.
 */
const BATCH_BYTES = 16 * 1024;
/** Room for a batch plus one more line of up to a thousand characters, whatever their UTF-8 length. */
const CAPACITY = BATCH_BYTES + 3 * 1024;
/** Bytes stdout may hold unwritten (about 4,000 request lines) before whole batches are dropped instead. */
const MAX_PENDING_BYTES = 1024 * 1024;

/** Log lines that never reached stdout, by why. */
export interface DroppedLines {
  /** stdout already held MAX_PENDING_BYTES: its reader is slow or stopped. */
  bufferFull: number;
  /** Writing failed: ENOSPC, EIO, EPIPE (the reader has gone)… */
  writeError: number;
}

/** Where batches go: stdout, which for a pipe may hold a batch after `write` returns, until its reader takes it. */
export interface BatchSink {
  /**
   * Calls back once the batch is written, with the error if writing it failed and, when only part of it failed, how
   * many of its lines were lost (all of them when not said).
   */
  write(batch: Buffer, callback: (err?: Error | null, linesLost?: number) => void): unknown;
  /** Bytes given to `write` and not yet written. */
  readonly writableLength: number;
  on(event: "error", listener: (err: Error) => void): unknown;
}

/**
 * stdout in batches of about 16 KiB, at least every 100 ms so a quiet service's lines appear promptly. Node writes a
 * pipe without blocking (it queues what the pipe does not take) and a file synchronously; either way a batch costs one
 * syscall from the main thread, and a reader that stops reading costs dropped lines, never a blocked event loop.
 */
function batchedStdout() {
  // Told once per reason; a stderr that fails too must not stop the service either.
  process.stderr.on("error", () => {});
  const notice = (message: string) => void process.stderr.write(`${buildInfo.name}: ${message}\n`);
  const stdout = fstatSync(1);
  // A file or device (not a pipe, socket or terminal): written by fileSink, which Node's own stream for it is not.
  const file = !stdout.isFIFO() && !stdout.isSocket() && !isatty(1);
  return batchedLines(file ? fileSink(1) : process.stdout, FLUSH_EVERY_MS, MAX_PENDING_BYTES, notice);
}

/**
 * A file descriptor written synchronously, each batch whole or its losses said. Node's stream for a file ignores a
 * short write: on a filling disk (tmpfs, 256 KiB) the rest of a batch vanished uncounted and the cut line's head was
 * glued to the next line written once space came back. Here a short write's cut line is finished first by the next
 * write, and the lines after it are reported lost.
 * @param write `fs.writeSync`; a test passes one that fails as a full disk does.
 */
export function fileSink(
  fd: number,
  write: (fd: number, buffer: Buffer, offset: number, length: number) => number = writeSync,
): BatchSink {
  /** The rest of a line a short write cut: owed before anything else, so no other line is glued to its head. */
  let owed: Buffer | undefined;
  /** Writes as much of `bytes` as it can: how much, and the error that stopped it. */
  const writeAll = (bytes: Buffer): { written: number; err?: Error } => {
    let written = 0;
    try {
      while (written < bytes.length) {
        const n = write(fd, bytes, written, bytes.length - written);
        // A write that takes nothing and says no error would otherwise loop for ever.
        if (n <= 0) return { written, err: Object.assign(new Error("write wrote nothing"), { code: "EIO" }) };
        written += n;
      }
      return { written };
    } catch (err) {
      return { written, err: err as Error };
    }
  };
  return {
    writableLength: 0,
    on: () => undefined,
    write(batch, callback) {
      if (owed) {
        const { written, err } = writeAll(owed);
        owed = err ? owed.subarray(written) : undefined;
        if (err) return callback(err);
      }
      const { written, err } = writeAll(batch);
      if (!err) return callback();
      if (written === 0) return callback(err);
      // The line the short write cut ends at the next newline; the batch's buffer is reused, so its rest is copied.
      const cut = batch[written - 1] === NEWLINE ? written : batch.indexOf(NEWLINE, written) + 1;
      if (cut > written) owed = Buffer.from(batch.subarray(written, cut));
      callback(err, linesIn(batch.subarray(cut)));
    },
  };
}

const NEWLINE = 0x0a;

function linesIn(bytes: Buffer): number {
  let lines = 0;
  for (let i = bytes.indexOf(NEWLINE); i !== -1; i = bytes.indexOf(NEWLINE, i + 1)) lines++;
  return lines;
}

/**
 * Encode lines into one buffer and hand `sink` a batch when it holds 16 KiB, every `flushEveryMs` and at the end. Past
 * `maxPendingBytes` held by the sink, batches are dropped; lines dropped so, or whose write failed, are counted in
 * `dropped`, and the first of each kind is told to `notice`. Logging never stops the service.
 * Measured under the bench's load, writing a line through sonic-boom's own batching (`minLength`) cost 1.8 µs: it
 * measures the UTF-8 length of its whole pending text on every write and allocates a new buffer for each batch. This
 * way it costs about 1.3 µs, most of it encoding the line and the write syscall itself.
 */
export function batchedLines(
  sink: BatchSink,
  flushEveryMs: number,
  maxPendingBytes: number,
  notice: (message: string) => void,
) {
  let buffer = Buffer.allocUnsafe(CAPACITY);
  let used = 0;
  let lines = 0;
  const dropped: DroppedLines = { bufferFull: 0, writeError: 0 };
  const metric = "dummyapp_log_lines_dropped_total";
  // Every failed write also calls back with its error, which is where its lines are counted.
  sink.on("error", () => {});
  const send = (batch: Buffer, count: number) => {
    if (sink.writableLength > maxPendingBytes) {
      if (dropped.bufferFull === 0)
        notice(
          `stdout is not read fast enough (over ${maxPendingBytes} bytes waiting): dropping log lines, counted in ${metric}{reason="buffer_full"}`,
        );
      dropped.bufferFull += count;
      return;
    }
    sink.write(batch, (err, linesLost) => {
      if (!err) return;
      const code = (err as NodeJS.ErrnoException).code ?? err.message;
      if (dropped.writeError === 0)
        notice(`cannot write log lines to stdout (${code}): dropping them, counted in ${metric}{reason="write_error"}`);
      dropped.writeError += linesLost ?? count;
    });
    // Still held (the pipe was full): the batch's bytes are the sink's until written, so the next batch needs a buffer.
    if (sink.writableLength > 0 && batch.buffer === buffer.buffer) buffer = Buffer.allocUnsafe(CAPACITY);
  };
  const flush = () => {
    if (used === 0) return;
    const batch = buffer.subarray(0, used);
    const count = lines;
    used = 0;
    lines = 0;
    send(batch, count);
  };
  const timer = setInterval(flush, flushEveryMs);
  timer.unref();
  const finished: Array<() => void> = [];
  const write = (line: string): void => {
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (used + 3 * line.length > CAPACITY) flush();
    if (3 * line.length > CAPACITY) return send(Buffer.from(escapeLineBreaking(line)), 1);
    const bytes = buffer.write(line, used);
    // More bytes than characters: not ASCII, so it may hold NEL or U+2028 (checked only then: a regex over every
    // line cost 0.6-1.3 µs). Written again escaped, over the bytes just written.
    if (bytes !== line.length && LINE_BREAKING.test(line)) return write(escapeLineBreaking(line));
    used += bytes;
    lines++;
    if (used >= BATCH_BYTES) flush();
  };
  return {
    dropped,
    write,
    /** Write what is batched; `finish` listeners hear once the sink has written everything (stdout stays open). */
    end(): void {
      clearInterval(timer);
      flush();
      // Called back in order, after every write before it has been written (or has failed).
      sink.write(Buffer.alloc(0), () => {
        for (const listener of finished.splice(0)) listener();
      });
    },
    once(event: string, listener: () => void): void {
      if (event === "finish") finished.push(listener);
    },
  };
}

/** Log lines dropped so far by the logger's stdout batching (zeros for a logger writing elsewhere). */
export function droppedLines(logger: Logger): DroppedLines {
  const stream = (logger as unknown as Record<symbol, { dropped?: DroppedLines }>)[pino.symbols.streamSym];
  return stream?.dropped ?? { bufferFull: 0, writeError: 0 };
}

/** pino's isoTime, but formatted once per millisecond: under load many lines share one. */
function isoTimePerMillisecond(): () => string {
  let ms = Number.NaN;
  let text = "";
  return () => {
    const now = Date.now();
    if (now !== ms) {
      ms = now;
      text = `,"time":"${new Date(now).toISOString()}"`;
    }
    return text;
  };
}

/** Resolve once every line logged so far is written, or after `timeoutMs` (a stdout nobody reads never drains). */
export function closeLogger(logger: Logger, timeoutMs = 2000): Promise<void> {
  const stream = (logger as unknown as Record<symbol, Writable>)[pino.symbols.streamSym];
  return new Promise((resolve) => {
    if (!stream || typeof stream.end !== "function") return resolve();
    const done = () => resolve();
    setTimeout(done, timeoutMs).unref();
    stream.once("close", done);
    stream.once("finish", done);
    stream.end();
  });
}
