// The sending half of our HTTP/2 server connection: frames queued during one turn go out as one
// unit (one Noise seal, one transport write), DATA is cut from a stream's queue within the
// client's connection and stream windows and at most 16,384 bytes a frame, and writing stops
// while the transport is full. Control frames we owe a client that does not read are capped.
import { DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW, ErrorCode, Flag, FrameType, H2ProtocolError, frameHeader, headerFrames } from './frames.js';
import type { ServerStream } from './server-stream.js';

/** Where the connection's plaintext goes. */
export interface PlaintextWire {
  /** Sends `parts` as one unit (one Noise record sequence, one transport write); false: full. */
  send(parts: readonly Buffer[]): boolean;
  /** Calls `listener` once, when the transport has drained after a send returned false. */
  onceDrain(listener: () => void): void;
  /** Ends the transport after what was sent. */
  end(): void;
  destroy(): void;
}

/** Control frames we may hold while the transport is full before calling it a flood. */
const MAX_HELD_CONTROL_BYTES = 256 * 1024;

export class ConnectionOutput {
  readonly #wire: PlaintextWire;
  readonly #onDrained: () => void;
  #out: Buffer[] = [];
  #bytes = 0;
  #corked = 0;
  #blocked = false;
  /** GOAWAY is queued: the rest goes out even while the transport is full, then the wire ends. */
  #final = false;
  /** The wire is gone. */
  #discarded = false;
  /** The client's connection window for our DATA. */
  window = DEFAULT_WINDOW;
  readonly #onDrain = (): void => {
    this.#blocked = false;
    if (this.#discarded) return;
    this.flush();
    this.#onDrained();
  };

  /** `onDrained` runs when the transport drains after being full: time to send what waits. */
  constructor(wire: PlaintextWire, onDrained: () => void) {
    this.#wire = wire;
    this.#onDrained = onDrained;
  }

  /** The transport is full: DATA waits for its drain. */
  get blocked(): boolean {
    return this.#blocked;
  }

  /** Holds sends until uncork (a read, a round of streams): one unit for all of it. */
  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    this.#corked--;
    this.flush();
  }

  queue(frame: Buffer): void {
    this.#out.push(frame);
    this.#bytes += frame.length;
  }

  /** A frame we owe the client whatever its reading pace; a peer that piles them up is cut off. */
  queueControl(frame: Buffer): void {
    this.queue(frame);
    if (this.#blocked && this.#bytes > MAX_HELD_CONTROL_BYTES) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, `${this.#bytes} bytes of control frames held for a client that does not read`);
    }
  }

  /**
   * Frames what `stream` has queued: its response head, DATA as far as both windows allow
   * (none while the transport is full), END_STREAM once end() was called and the queue is empty.
   */
  frameStream(stream: ServerStream): void {
    if (stream.head !== null) {
      const endWithHead = stream.endRequested && stream.queuedBytes === 0;
      for (const frame of headerFrames(stream.id, stream.head, endWithHead)) this.queue(frame);
      stream.head = null;
      if (endWithHead) stream.localEnded = true;
    }
    if (!this.#blocked) {
      while (stream.queuedBytes > 0 && this.window > 0 && stream.sendWindow > 0) {
        const length = Math.min(DEFAULT_MAX_FRAME_SIZE, this.window, stream.sendWindow, stream.queuedBytes);
        const last = length === stream.queuedBytes && stream.endRequested;
        this.queue(frameHeader(length, FrameType.DATA, last ? Flag.END_STREAM : 0, stream.id));
        this.#bytes += stream.take(length, this.#out);
        this.window -= length;
        stream.sendWindow -= length;
        if (last) stream.localEnded = true;
      }
    }
    if (stream.endRequested && !stream.localEnded && stream.queuedBytes === 0) {
      // An empty DATA frame needs no window.
      this.queue(frameHeader(0, FrameType.DATA, Flag.END_STREAM, stream.id));
      stream.localEnded = true;
    }
  }

  flush(): void {
    if (this.#corked > 0 || this.#out.length === 0 || this.#discarded) return;
    if (this.#blocked && !this.#final) return;
    this.#sendNow();
  }

  /** Sends everything now, corked or full, and from here on: GOAWAY is queued, the wire ends next. */
  finish(): void {
    this.#final = true;
    if (!this.#discarded) this.#sendNow();
  }

  /** The wire is gone: drop what waits. */
  discard(): void {
    this.#discarded = true;
    this.#out = [];
    this.#bytes = 0;
  }

  #sendNow(): void {
    const out = this.#out;
    this.#out = [];
    this.#bytes = 0;
    if (out.length > 0 && !this.#wire.send(out) && !this.#blocked) {
      this.#blocked = true;
      this.#wire.onceDrain(this.#onDrain);
    }
  }
}
