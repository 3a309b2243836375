import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeader,
  type OutgoingHttpHeaders,
  type Server,
  ServerResponse,
  STATUS_CODES,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";

/** Above Heroku Router 2.0's 90 s idle timeout, so the router, not the app, closes idle keep-alive connections. */
export const KEEP_ALIVE_TIMEOUT_MS = 95_000;

/** Shared by main, the app and the server: main flips it when draining begins; /readyz and every response read it. */
export interface Lifecycle {
  shuttingDown: boolean;
}

/** Told of every client error (see answerClientError): its code, the status the client got (if any), the peer. */
export type ClientErrorObserver = (code: string, status: number | undefined, remote: string | undefined) => void;

/**
 * An HTTP server with deliberate timeouts: a slow client gets `headersTimeoutMs` to send its headers and a minute
 * for the whole request; oversized headers are answered 431 (16 KiB limit). Client errors (unparsable requests,
 * timeouts, resets) are answered here and reported to `onClientError` by code only. Once `lifecycle.shuttingDown`,
 * every response asks its client to leave (`Connection: close`), so keep-alive connections end while drain() waits.
 */
export function createHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  headersTimeoutMs: number,
  onClientError: ClientErrorObserver,
  lifecycle: Lifecycle,
): Server {
  // Node calls writeHead for every response as its head goes out (documented), so a request that was in flight when
  // draining began also closes its connection; per request this is one flag read, and no listener.
  class Response extends ServerResponse {
    override writeHead(
      statusCode: number,
      reason?: string | OutgoingHttpHeaders | OutgoingHttpHeader[],
      headers?: OutgoingHttpHeaders | OutgoingHttpHeader[],
    ): this {
      if (lifecycle.shuttingDown) this.setHeader("Connection", "close");
      // Node's writeHead tells a reason phrase from headers itself, as for writeHead(status, headers).
      return super.writeHead(statusCode, reason as string | undefined, headers);
    }
  }
  const server = createServer(
    {
      ServerResponse: Response,
      headersTimeout: headersTimeoutMs,
      requestTimeout: Math.max(60_000, headersTimeoutMs),
      // How often Node enforces the two timeouts above; its 30 s default would let a slow client stay far too long.
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
    handler,
  );
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Node hands CONNECT (a proxy's tunnel) to no handler, and without a listener closes it unanswered, unlogged and
  // uncounted. This service is no proxy: the app answers it as any other request, then the connection closes.
  server.on("connect", (req: IncomingMessage, socket: Socket) => {
    socket.on("error", () => socket.destroy()); // Node took its own error listener off: a reset must not crash us
    const res = new Response(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.on("finish", () => socket.destroySoon());
    handler(req, res);
  });
  server.on("clientError", (err: NodeJS.ErrnoException, socket: Socket) => {
    const remote = socket.remoteAddress; // gone once the socket is destroyed
    onClientError(errorCode(err), answerClientError(err, socket), remote);
  });
  return server;
}

/** Node's own answers to client errors other than 400, by error code. */
const CLIENT_ERROR_STATUS: Record<string, number> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};
/** Responses a client error cut off, and the status the client got in their place. */
const sentInstead = new WeakMap<ServerResponse, number>();

/**
 * Answer a client error as Node's HTTP server does when nobody listens for it (400, or 408/413/431), then close the
 * connection. The error never leaves this function: its `rawPacket` holds the request's bytes, header values included.
 * @returns the status sent, or undefined when none could be: the socket is gone, or the response in flight has begun.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): number | undefined {
  // The response in flight on this connection, as Node's default handler checks it: once its head is out, a second
  // status line would corrupt what the client reads.
  const inFlight = (socket as { _httpMessage?: ServerResponse })._httpMessage;
  let status: number | undefined;
  if (socket.writable && !inFlight?.headersSent) {
    status = CLIENT_ERROR_STATUS[err.code ?? ""] ?? 400;
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
    if (inFlight) sentInstead.set(inFlight, status);
  }
  socket.destroy();
  return status;
}

/** A client error's code as a bounded label: Node's codes are a fixed set; anything else is "OTHER". */
function errorCode(err: NodeJS.ErrnoException): string {
  return typeof err.code === "string" && /^[A-Z][A-Z0-9_]{0,47}$/.test(err.code) ? err.code : "OTHER";
}

/**
 * The status a client error answered in place of `res` (pipelined garbage after a valid request arrives before that
 * request's response), or undefined when `res` itself was the answer.
 */
export function statusSentInstead(res: ServerResponse): number | undefined {
  return sentInstead.get(res);
}

/** Listen, resolving with the bound address or rejecting with the listen error (EADDRINUSE, EACCES…). */
export function listen(server: Server, port: number, host?: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/**
 * Stop accepting, close idle keep-alive sockets and let in-flight requests finish.
 * @returns true when every connection closed within `timeoutMs`, false when the rest had to be cut.
 */
export function drain(server: Server, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    // Connections that finish a request later turn idle later: keep closing them until none is left.
    const sweeper = setInterval(() => server.closeIdleConnections(), 250);
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve(false);
    }, timeoutMs);
    server.close(() => {
      clearInterval(sweeper);
      clearTimeout(timer);
      resolve(true);
    });
    server.closeIdleConnections();
  });
}
