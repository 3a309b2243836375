import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";

/** Told when a socket starts or stops having requests to answer (the connection limit sheds idle ones first). */
export interface SocketActivity {
  busy(socket: Socket): void;
  idle(socket: Socket): void;
}

/** The request handler with the per-socket limit in front of it, and what the limit has done so far. */
export interface PipelineLimit {
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Sockets not read right now because `depth` of their responses are unfinished. */
  pausedSockets(): number;
  /** Times a socket was paused so, since start. */
  pauses(): number;
}

/** Where a response keeps the state of the socket it answers on. */
const STATE = Symbol("pipeline state");
type Tracked = ServerResponse & { [STATE]?: SocketState };

interface SocketState {
  socket: Socket;
  /** Requests handed to the handler whose responses have not closed (finished and flushed, or cut). */
  inFlight: number;
  /** Requests Node has parsed that wait for a slot: one read (up to 64 KiB) can hold a thousand pipelined requests. */
  waiting: [IncomingMessage, ServerResponse][];
  paused: boolean;
  scheduled: boolean;
}

/**
 * Backpressure and fairness for pipelining clients: at most `depth` requests of one socket are handled at a time, the
 * rest wait in order, and the socket is not read while `depth` are pending, so a client that sends without reading
 * costs a bounded amount (8 sockets each sending 4.7 MB of poem requests: RSS 63 → 1,331 MiB without this, ≤ 198 MiB
 * with it). A waiting request is started on the next turn of the event loop (setImmediate), not at once, so one socket
 * gets at most `depth` requests a turn and every other socket is read in between (one client pipelining /healthz held
 * others' median at 494 ms without this).
 * @param activity told when a socket turns busy and idle again.
 */
export function limitPipelining(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  depth: number,
  activity?: SocketActivity,
): PipelineLimit {
  const states = new WeakMap<Socket, SocketState>();
  let paused = 0;
  let pauses = 0;

  const start = (state: SocketState, req: IncomingMessage, res: ServerResponse) => {
    state.inFlight++;
    // 'close' follows 'finish' once the response is flushed to the socket, and comes alone when it is cut. One listener
    // for every response, which finds its socket's state on the response: no closure per request.
    (res as Tracked)[STATE] = state;
    res.on("close", closed);
    handler(req, res);
  };
  function closed(this: ServerResponse) {
    done((this as Tracked)[STATE]!);
  }
  const done = (state: SocketState) => {
    state.inFlight--;
    if (state.waiting.length > 0) {
      if (!state.scheduled) {
        state.scheduled = true;
        setImmediate(startWaiting, state);
      }
    } else if (state.inFlight === 0) {
      activity?.idle(state.socket);
    }
    resumeIfBelow(state);
  };
  const startWaiting = (state: SocketState) => {
    state.scheduled = false;
    if (state.socket.destroyed) return;
    while (state.inFlight < depth && state.waiting.length > 0) start(state, ...state.waiting.shift()!);
    resumeIfBelow(state);
  };
  const resumeIfBelow = (state: SocketState) => {
    if (state.paused && state.inFlight + state.waiting.length < depth) {
      state.paused = false;
      paused--;
      if (!state.socket.destroyed) state.socket.resume();
    }
  };
  const track = (socket: Socket): SocketState => {
    const state: SocketState = { socket, inFlight: 0, waiting: [], paused: false, scheduled: false };
    states.set(socket, state);
    // Node resumes the socket after every request it parses (and Koa's body handling may too): pause it again.
    socket.on("resume", () => {
      if (state.paused) socket.pause();
    });
    socket.once("close", () => {
      state.waiting.length = 0; // nobody is left to answer
      if (state.paused) paused--;
      state.paused = false;
    });
    return state;
  };

  return {
    handler: (req, res) => {
      const socket = req.socket;
      const state = states.get(socket) ?? track(socket);
      if (state.inFlight === 0 && state.waiting.length === 0) activity?.busy(socket);
      if (state.inFlight < depth && state.waiting.length === 0) start(state, req, res);
      else state.waiting.push([req, res]);
      if (state.inFlight + state.waiting.length >= depth) {
        if (!state.paused) {
          state.paused = true;
          paused++;
          pauses++;
        }
        socket.pause();
      }
    },
    pausedSockets: () => paused,
    pauses: () => pauses,
  };
}
