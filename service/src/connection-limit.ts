import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import type { SocketActivity } from "./pipeline-limit";

/** Descriptors kept back from connections for Node itself (epoll, stdio, the threadpool's pipes), the log and listings. */
const RESERVED_DESCRIPTORS = 64;
/** Where the limit cannot be read, the usual soft RLIMIT_NOFILE of a Linux process. */
const FALLBACK_DESCRIPTORS = 1024;
/** A connection idle for less than this is not shed: a new one has had no time to send its request (loopback: < 1 ms). */
const SHED_AFTER_IDLE_MS = 200;

/**
 * The soft RLIMIT_NOFILE: "Max open files" of /proc/self/limits (Node has no getrlimit).
 * @param limits the text of /proc/self/limits; read when not given.
 * @returns the limit, or undefined where it cannot be read or is unlimited.
 */
export function descriptorLimit(limits?: string): number | undefined {
  let text = limits;
  if (text === undefined) {
    try {
      text = readFileSync("/proc/self/limits", "utf8");
    } catch {
      return undefined;
    }
  }
  const soft = /^Max open files\s+(\d+)\s/m.exec(text)?.[1];
  return soft === undefined ? undefined : Number(soft);
}

/**
 * The default connection cap for a descriptor limit: half of what is left after 64, since each connection may hold
 * a second descriptor, the large poem it streams (20,000 descriptors → 9,968 connections; 256 → 96).
 */
export function defaultMaxConnections(descriptors = descriptorLimit() ?? FALLBACK_DESCRIPTORS): number {
  return Math.max(1, Math.floor((descriptors - RESERVED_DESCRIPTORS) / 2));
}

/**
 * A cap on open connections below the descriptor limit, so a fresh client and the files a poem needs can always be
 * opened. Past `max − max/32` open connections each new one, or one turning idle, sheds the connection idle the longest
 * (a keep-alive socket between requests, or one that never sent a request) if it has been idle 200 ms; at `max`, with
 * none to shed, new ones are refused.
 * It hears which sockets are busy from the pipeline limit (see SocketActivity); `attach` it to the server.
 */
export class ConnectionLimit implements SocketActivity {
  /** Idle sockets and since when, longest idle first (a Map keeps insertion order). */
  private readonly idleSockets = new Map<Socket, number>();
  /** Sockets shed and not yet closed: already out of the count. */
  private readonly shedSockets = new WeakSet<Socket>();
  private readonly shedAbove: number;
  private retry: NodeJS.Timeout | undefined;
  private openCount = 0;
  private shedCount = 0;
  private refusedCount = 0;

  /** @param shedAfterIdleMs how long a connection must have been idle to be shed. */
  constructor(
    readonly max: number,
    private readonly shedAfterIdleMs = SHED_AFTER_IDLE_MS,
  ) {
    // Room for a burst accepted before the shed sockets' descriptors are closed (they close on the next loop turn).
    this.shedAbove = max - Math.ceil(max / 32);
  }

  /** Enforce the cap on `server`'s connections. */
  attach(server: Server): void {
    server.maxConnections = this.max;
    server.on("drop", () => {
      this.refusedCount++;
      this.shedIdle(); // connections that were too new to shed when they came may be old enough now
    });
    server.on("connection", (socket: Socket) => {
      this.openCount++;
      this.idleSockets.set(socket, performance.now());
      socket.once("close", () => {
        this.idleSockets.delete(socket);
        if (!this.shedSockets.has(socket)) this.openCount--; // a shed one left the count when it was shed
      });
      this.shedIdle(socket);
    });
  }

  /** Close the longest idle sockets but `keep` until the count is back under the threshold, or none has been idle long enough. */
  private shedIdle(keep?: Socket): void {
    if (this.openCount <= this.shedAbove) return;
    const youngest = performance.now() - this.shedAfterIdleMs;
    for (const [idle, since] of this.idleSockets) {
      if (this.openCount <= this.shedAbove) return;
      if (since > youngest) {
        // Come back when it is old enough, rather than sit at the cap refusing until the next connection is refused.
        this.retry ??= setTimeout(
          () => {
            this.retry = undefined;
            this.shedIdle();
          },
          since - youngest + 1,
        ).unref();
        return;
      }
      if (idle === keep) continue;
      this.idleSockets.delete(idle);
      this.shedSockets.add(idle);
      idle.destroy();
      this.openCount--;
      this.shedCount++;
    }
  }

  busy(socket: Socket): void {
    this.idleSockets.delete(socket);
  }

  idle(socket: Socket): void {
    if (socket.destroyed) return; // its response closed with it: it must not come back into the set
    this.idleSockets.delete(socket);
    this.idleSockets.set(socket, performance.now());
    // Connections that were all busy at the cap turn idle: make room now, or the next new one would be refused.
    this.shedIdle(socket);
  }

  /** Connections open now. */
  open(): number {
    return this.openCount;
  }

  /** Idle connections closed to make room, since start. */
  shed(): number {
    return this.shedCount;
  }

  /** Connections refused at the cap, since start. */
  refused(): number {
    return this.refusedCount;
  }
}
