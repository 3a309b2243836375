import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** Above Heroku Router 2.0's 90 s idle timeout, so the router, not the app, closes idle keep-alive connections. */
export const KEEP_ALIVE_TIMEOUT_MS = 95_000;

/**
 * An HTTP server with deliberate timeouts: a slow client gets `headersTimeoutMs` to send its headers and a minute
 * for the whole request; oversized headers are answered 431 by Node (16 KiB limit).
 */
export function createHttpServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  headersTimeoutMs: number,
): Server {
  const server = createServer(
    {
      headersTimeout: headersTimeoutMs,
      requestTimeout: Math.max(60_000, headersTimeoutMs),
      // How often Node enforces the two timeouts above; its 30 s default would let a slow client stay far too long.
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
    handler,
  );
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  return server;
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
