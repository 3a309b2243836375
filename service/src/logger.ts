import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import type { Writable } from "node:stream";
import { LineWriter } from "./line-writer";

export type { Logger };

/**
 * The service's logger: JSON lines (written asynchronously, off the request path) or plain text for humans.
 * @param destination where lines go; stdout when omitted. Tests pass a stream to read the lines back.
 */
export function createLogger(format: "json" | "text", level: string, destination?: Writable): Logger {
  const options = { level, base: undefined, timestamp: isoTimePerMillisecond() };
  if (format === "text") {
    return pino(options, pretty({ colorize: false, sync: true, destination: destination ?? 1 }));
  }
  // Asynchronous writes keep the event loop free under load; closeLogger waits for them before exit. No buffering
  // beyond that: a quiet service must still log each line when it happens.
  return pino(options, destination ?? new LineWriter(1));
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

/**
 * Resolve once every line logged so far is written. pino's flush() does not wait for an asynchronous write already
 * in flight, so exiting after it can lose the last lines; ending the stream does wait (stdout itself stays open).
 */
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
