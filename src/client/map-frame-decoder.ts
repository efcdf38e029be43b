// The client's reader of /machine/map response bodies (protocol.md §9.2), written apart from the
// server's encoder: each message is a 4-byte LITTLE-endian length, then that many bytes holding
// one or more concatenated zstd frames (the server may splice pre-compressed fragments; the
// decompressed concatenation is one JSON MapResponse). Raw-block frames are ordinary zstd.
import { decompress } from 'zstd-napi';
import { HeadwayError } from '../util/headway-error.js';
import { ClientErrors } from './errors.js';

const LENGTH_BYTES = 4;
/** tailscaled reads any size; we stop at a size no real netmap reaches, to fail clearly. */
export const DEFAULT_MAX_MAP_MESSAGE_BYTES = 256 << 20;

/** Splits a map response byte stream into message payloads (still compressed). */
export class MapFrameDecoder {
  readonly #maxMessageBytes: number;
  readonly #lengthBytes = Buffer.alloc(LENGTH_BYTES);
  #lengthFilled = 0;
  #payload: Buffer | null = null;
  #payloadFilled = 0;
  #messages = 0;

  constructor(maxMessageBytes = DEFAULT_MAX_MAP_MESSAGE_BYTES) {
    this.#maxMessageBytes = maxMessageBytes;
  }

  /** Messages completed so far. */
  get messages(): number {
    return this.#messages;
  }

  /** True when the stream stopped between messages (a clean end). */
  get atBoundary(): boolean {
    return this.#lengthFilled === 0 && this.#payload === null;
  }

  /** Feeds a chunk; returns the payloads of the messages it completed. */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#payload === null) {
        const take = Math.min(LENGTH_BYTES - this.#lengthFilled, chunk.length - offset);
        chunk.copy(this.#lengthBytes, this.#lengthFilled, offset, offset + take);
        this.#lengthFilled += take;
        offset += take;
        if (this.#lengthFilled < LENGTH_BYTES) break;
        const length = this.#lengthBytes.readUInt32LE(0);
        this.#lengthFilled = 0;
        if (length > this.#maxMessageBytes) {
          throw new HeadwayError(ClientErrors.BAD_MAP_FRAME, `client: map message ${this.#messages}: length ${length} exceeds ${this.#maxMessageBytes}`);
        }
        if (length === 0) {
          throw new HeadwayError(ClientErrors.BAD_MAP_FRAME, `client: map message ${this.#messages}: length 0 (an empty message is not a MapResponse)`);
        }
        // Whole message inside this chunk: no copy.
        if (chunk.length - offset >= length) {
          out.push(chunk.subarray(offset, offset + length));
          offset += length;
          this.#messages++;
          continue;
        }
        this.#payload = Buffer.allocUnsafe(length);
        this.#payloadFilled = 0;
      }
      const payload = this.#payload;
      const copied = chunk.copy(payload, this.#payloadFilled, offset, offset + payload.length - this.#payloadFilled);
      this.#payloadFilled += copied;
      offset += copied;
      if (this.#payloadFilled === payload.length) {
        out.push(payload);
        this.#payload = null;
        this.#messages++;
      }
    }
    return out;
  }
}

/** zstd-decompresses a message (every frame in it) and parses the JSON. */
export function decodeMapMessage<T>(payload: Buffer, index: number, compressed: boolean): T {
  let json: Buffer;
  try {
    json = compressed ? decompress(payload) : payload;
  } catch (err) {
    throw new HeadwayError(ClientErrors.BAD_MAP_FRAME, `client: map message ${index}: zstd: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  try {
    return JSON.parse(json.toString('utf8')) as T;
  } catch (err) {
    throw new HeadwayError(ClientErrors.BAD_MAP_FRAME, `client: map message ${index}: ${json.length} bytes are not JSON`, { cause: err });
  }
}
