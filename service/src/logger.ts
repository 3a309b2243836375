import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import type { Writable } from "node:stream";

export type { Logger };

/**
 * The service's logger: JSON lines (batched, see batchedStdout) or plain text for humans.
 * @param destination where lines go; stdout when omitted. Tests pass a stream to read the lines back.
 */
export function createLogger(format: "json" | "text", level: string, destination?: Writable): Logger {
  const options = { level, base: undefined, timestamp: isoTimePerMillisecond() };
  if (format === "text") {
    return pino(options, pretty({ colorize: false, sync: true, destination: destination ?? 1 }));
  }
  return pino(options, destination ?? batchedStdout());
}

/** The longest a log line waits in the batch before it is written. */
const FLUSH_EVERY_MS = 100;

/**
 * stdout written synchronously in batches of up to 4 KiB (the size a pipe writes atomically), and at least every
 * 100 ms so a quiet service's lines appear promptly. Synchronous writes from the main thread cost one cheap syscall
 * per batch; asynchronous ones went through libuv's thread pool, which on a small machine takes a core from the
 * clients, and queued without bound when lines came faster than writes finished.
 */
function batchedStdout() {
  const stream = pino.destination({ dest: 1, sync: true, minLength: 4096 });
  const timer = setInterval(() => stream.flushSync(), FLUSH_EVERY_MS);
  timer.unref();
  stream.on("close", () => clearInterval(timer));
  return stream;
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

/** Resolve once every line logged so far is written: ending the stream writes the batch (stdout itself stays open). */
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
