import type { FileHandle } from "node:fs/promises";
import { Readable } from "node:stream";

/** The size of each read: that of fs.createReadStream. */
const CHUNK = 64 * 1024;

/**
 * A large poem's body: exactly `length` bytes read from an open descriptor, and never more, so a file that grows while
 * it streams is cut at the length its headers promised. A file that ends first (truncated meanwhile) fails the stream
 * instead of ending it: the response cannot be completed, so Koa's pipeline destroys it, and its connection with it —
 * ending it normally would leave the client waiting for the missing bytes, and a response pipelined behind it would
 * appear inside this body. The descriptor is closed when the stream ends or is destroyed.
 */
export class PoemStream extends Readable {
  /** Bytes handed on to the response so far. */
  bytesSent = 0;
  /** Whether the file ended before `length` bytes (then `bytesSent` < `length`). */
  endedEarly = false;

  constructor(
    private readonly handle: FileHandle,
    /** The length the response promised (its Content-Length). */
    readonly length: number,
  ) {
    super({ highWaterMark: CHUNK });
  }

  override _read(): void {
    const wanted = Math.min(CHUNK, this.length - this.bytesSent);
    if (wanted === 0) {
      this.push(null);
      return;
    }
    this.handle.read(Buffer.allocUnsafe(wanted), 0, wanted, this.bytesSent).then(
      ({ bytesRead, buffer }) => {
        if (this.destroyed) return;
        if (bytesRead === 0) {
          this.endedEarly = true;
          this.destroy(cutShort(this.bytesSent, this.length));
          return;
        }
        this.bytesSent += bytesRead;
        this.push(bytesRead === wanted ? buffer : buffer.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(err),
      () => callback(err),
    );
  }
}

/** The error of a poem that ended before the length its response promised; observe logs it, so the app does not. */
function cutShort(sent: number, length: number): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`the poem ended after ${sent} of the ${length} bytes promised`);
  err.code = POEM_CUT_SHORT;
  return err;
}

/** The code of the error a PoemStream fails with when its file ends early. */
export const POEM_CUT_SHORT = "ERR_POEM_CUT_SHORT";
