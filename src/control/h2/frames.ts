// HTTP/2 framing (RFC 9113 §4, §6): frame types, flags, error codes and settings, the builders
// of the frames our server connection sends, and an incremental reader that cuts a plaintext
// byte stream into frames without copying a frame that arrived whole.

export const FRAME_HEADER_BYTES = 9;
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

/** RFC 9113 §7. */
export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  SETTINGS_TIMEOUT: 0x4,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  CONNECT_ERROR: 0xa,
  ENHANCE_YOUR_CALM: 0xb,
  INADEQUATE_SECURITY: 0xc,
  HTTP_1_1_REQUIRED: 0xd,
} as const;

export function errorCodeName(code: number): string {
  return Object.entries(ErrorCode).find(([, v]) => v === code)?.[0] ?? `error 0x${code.toString(16)}`;
}

/** A connection error (RFC 9113 §5.4.1): the connection sends GOAWAY with `code` and closes. */
export class H2ProtocolError extends Error {
  override name = 'H2ProtocolError';
  readonly code: number;

  constructor(code: number, message: string) {
    super(`${errorCodeName(code)}: ${message}`);
    this.code = code;
  }
}

/** RFC 9113 §6.5.2. */
export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const DEFAULT_WINDOW = 65_535;
export const MAX_WINDOW = 2 ** 31 - 1;
/** SETTINGS_MAX_FRAME_SIZE's initial value: what we accept and what we never exceed. */
export const DEFAULT_MAX_FRAME_SIZE = 16_384;

export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(header, 0, length, type, flags, streamId);
  return header;
}

export function writeFrameHeader(into: Buffer, at: number, length: number, type: number, flags: number, streamId: number): void {
  into[at] = (length >>> 16) & 0xff;
  into[at + 1] = (length >>> 8) & 0xff;
  into[at + 2] = length & 0xff;
  into[at + 3] = type;
  into[at + 4] = flags;
  into.writeUInt32BE(streamId, at + 5);
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6 * settings.length);
  writeFrameHeader(frame, 0, 6 * settings.length, FrameType.SETTINGS, 0, 0);
  settings.forEach(([id, value], i) => {
    frame.writeUInt16BE(id, FRAME_HEADER_BYTES + 6 * i);
    frame.writeUInt32BE(value, FRAME_HEADER_BYTES + 6 * i + 2);
  });
  return frame;
}

export const SETTINGS_ACK = frameHeader(0, FrameType.SETTINGS, Flag.ACK, 0);

export function pingAck(payload: Buffer): Buffer {
  return Buffer.concat([frameHeader(8, FrameType.PING, Flag.ACK, 0), payload]);
}

export function windowUpdateFrame(streamId: number, increment: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(frame, 0, 4, FrameType.WINDOW_UPDATE, 0, streamId);
  frame.writeUInt32BE(increment, FRAME_HEADER_BYTES);
  return frame;
}

export function rstStreamFrame(streamId: number, code: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(frame, 0, 4, FrameType.RST_STREAM, 0, streamId);
  frame.writeUInt32BE(code, FRAME_HEADER_BYTES);
  return frame;
}

export function goawayFrame(lastStreamId: number, code: number, debug = ''): Buffer {
  const text = Buffer.from(debug, 'utf8').subarray(0, 256);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8 + text.length);
  writeFrameHeader(frame, 0, 8 + text.length, FrameType.GOAWAY, 0, 0);
  frame.writeUInt32BE(lastStreamId, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(code, FRAME_HEADER_BYTES + 4);
  text.copy(frame, FRAME_HEADER_BYTES + 8);
  return frame;
}

/** A header block as HEADERS plus CONTINUATION frames of at most `maxFrame` bytes each. */
export function headerFrames(streamId: number, block: Buffer, endStream: boolean, maxFrame = DEFAULT_MAX_FRAME_SIZE): Buffer[] {
  const frames: Buffer[] = [];
  let at = 0;
  do {
    const length = Math.min(maxFrame, block.length - at);
    const last = at + length === block.length;
    const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags = (last ? Flag.END_HEADERS : 0) | (at === 0 && endStream ? Flag.END_STREAM : 0);
    frames.push(frameHeader(length, type, flags, streamId), block.subarray(at, at + length));
    at += length;
  } while (at < block.length);
  return frames;
}

/** A frame too large for our SETTINGS_MAX_FRAME_SIZE (a connection FRAME_SIZE_ERROR). */
export class FrameSizeError extends Error {
  override name = 'FrameSizeError';
}

/**
 * Cuts bytes into frames. A frame that arrived within one chunk is handed out as a view of it;
 * one split across chunks is gathered from views of its pieces and joined when complete, so a
 * peer that announces a large frame and sends a byte of it makes us hold a byte, not the frame.
 * Chunks must not be reused by whoever pushes them (decrypted records are fresh buffers).
 */
export class FrameReader {
  readonly #maxPayload: number;
  /** Only for a header split across chunks; allocated then, outside Node's shared pool. */
  #header: Buffer | null = null;
  #headerFill = 0;
  #current: FrameHeader | null = null;
  #pieces: Buffer[] | null = null;
  #payloadFill = 0;

  constructor(maxPayload = DEFAULT_MAX_FRAME_SIZE) {
    this.#maxPayload = maxPayload;
  }

  /** Bytes held for an incomplete frame. */
  get pendingBytes(): number {
    return this.#headerFill + this.#payloadFill;
  }

  /** Calls `onFrame` for each complete frame in order; stops early when it returns false. */
  push(chunk: Buffer, onFrame: (header: FrameHeader, payload: Buffer) => boolean): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.#current === null) {
        if (this.#headerFill === 0 && chunk.length - at >= FRAME_HEADER_BYTES) {
          this.#current = this.#parseHeader(chunk, at);
          at += FRAME_HEADER_BYTES;
        } else {
          this.#header ??= Buffer.alloc(FRAME_HEADER_BYTES);
          const n = chunk.copy(this.#header, this.#headerFill, at, Math.min(chunk.length, at + FRAME_HEADER_BYTES - this.#headerFill));
          this.#headerFill += n;
          at += n;
          if (this.#headerFill < FRAME_HEADER_BYTES) return;
          this.#headerFill = 0;
          this.#current = this.#parseHeader(this.#header, 0);
        }
      }
      const header = this.#current;
      let payload: Buffer;
      if (this.#pieces === null && chunk.length - at >= header.length) {
        payload = chunk.subarray(at, at + header.length);
        at += header.length;
      } else {
        const pieces = (this.#pieces ??= []);
        const n = Math.min(chunk.length - at, header.length - this.#payloadFill);
        pieces.push(chunk.subarray(at, at + n));
        this.#payloadFill += n;
        at += n;
        if (this.#payloadFill < header.length) return;
        payload = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, header.length);
        this.#pieces = null;
        this.#payloadFill = 0;
      }
      this.#current = null;
      if (!onFrame(header, payload)) return;
    }
  }

  #parseHeader(bytes: Buffer, at: number): FrameHeader {
    const length = (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
    if (length > this.#maxPayload) throw new FrameSizeError(`frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${this.#maxPayload}`);
    return { length, type: bytes[at + 3]!, flags: bytes[at + 4]!, streamId: bytes.readUInt32BE(at + 5) & 0x7fffffff };
  }
}

/** A DATA or HEADERS payload without its padding (§6.1); a bad pad length is PROTOCOL_ERROR. */
export function unpad(header: FrameHeader, payload: Buffer): Buffer {
  if ((header.flags & Flag.PADDED) === 0) return payload;
  if (payload.length === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `padded frame on stream ${header.streamId} without a pad length`);
  const pad = payload[0]!;
  if (pad >= payload.length) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `padding of ${pad} bytes in a frame of ${payload.length}`);
  return payload.subarray(1, payload.length - pad);
}
