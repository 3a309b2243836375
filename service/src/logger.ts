import pino, { type Logger } from "pino";
import pretty from "pino-pretty";
import type { Writable } from "node:stream";

export type { Logger };

/**
 * The service's logger: JSON lines (buffered, written off the request path) or plain text for humans.
 * @param destination where lines go; stdout when omitted. Tests pass a stream to read the lines back.
 */
export function createLogger(format: "json" | "text", level: string, destination?: Writable): Logger {
  const options = { level, base: undefined, timestamp: pino.stdTimeFunctions.isoTime };
  if (format === "text") {
    return pino(options, pretty({ colorize: false, sync: true, destination: destination ?? 1, ignore: "pid,hostname" }));
  }
  // Asynchronous writes keep the event loop free under load; main flushes them before exit. No minLength buffering:
  // a quiet service must still log each line when it happens.
  return pino(options, destination ?? pino.destination({ dest: 1, sync: false }));
}
