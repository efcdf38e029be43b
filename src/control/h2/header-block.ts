// A request's header block coming in (RFC 9113 §4.3, §6.2, §6.10): a HEADERS frame and the
// CONTINUATION frames after it, the flood limits on them (CVE-2024-27316: so many bytes, so many
// frames), and HPACK decoding with the connection's one decoder. What a block means for its
// stream (open, trailers, refused, malformed) is the connection's business.
import { ErrorCode, Flag, H2ProtocolError, unpad, type FrameHeader } from './frames.js';
import { HpackDecoder, HpackError, type DecodedBlock } from './hpack-decoder.js';

/** A header block made of more frames than this, or over twice the header list limit, is a flood. */
const MAX_HEADER_BLOCK_FRAMES = 32;

export interface ReceivedHeaderBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly decoded: DecodedBlock;
}

interface OpenBlock {
  readonly streamId: number;
  readonly endStream: boolean;
  readonly parts: Buffer[];
  bytes: number;
}

export class HeaderBlockAssembler {
  readonly #decoder = new HpackDecoder();
  readonly #maxHeaderList: number;
  #open: OpenBlock | null = null;

  constructor(maxHeaderList: number) {
    this.#maxHeaderList = maxHeaderList;
  }

  /** The stream whose header block awaits CONTINUATION frames; 0 when none is open. */
  get openStreamId(): number {
    return this.#open === null ? 0 : this.#open.streamId;
  }

  /** A HEADERS frame: its decoded block, or null when CONTINUATION frames must follow. */
  headers(header: FrameHeader, payload: Buffer): ReceivedHeaderBlock | null {
    const id = header.streamId;
    if (id === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    let fragment = unpad(header, payload);
    if (header.flags & Flag.PRIORITY) {
      if (fragment.length < 5) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, 'HEADERS too short for its priority fields');
      fragment = fragment.subarray(5);
    }
    const block: OpenBlock = { streamId: id, endStream: (header.flags & Flag.END_STREAM) !== 0, parts: [fragment], bytes: fragment.length };
    if (header.flags & Flag.END_HEADERS) return this.#decode(block);
    this.#open = block;
    return null;
  }

  /**
   * A CONTINUATION frame of the open block (the caller has checked it is on the block's
   * stream): the decoded block once END_HEADERS arrives, else null.
   */
  continuation(header: FrameHeader, payload: Buffer): ReceivedHeaderBlock | null {
    const block = this.#open;
    if (block === null) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `CONTINUATION on stream ${header.streamId} without a header block`);
    block.parts.push(payload);
    block.bytes += payload.length;
    if (block.bytes > 2 * this.#maxHeaderList || block.parts.length > MAX_HEADER_BLOCK_FRAMES) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, `header block of stream ${block.streamId} passed ${block.bytes} bytes in ${block.parts.length} frames`);
    }
    if ((header.flags & Flag.END_HEADERS) === 0) return null;
    this.#open = null;
    return this.#decode(block);
  }

  /** The wire is gone: a half-received block is dropped. */
  discard(): void {
    this.#open = null;
  }

  /** Every block is decoded, whatever becomes of its stream: the table must follow the client's encoder. */
  #decode(block: OpenBlock): ReceivedHeaderBlock {
    try {
      const bytes = block.parts.length === 1 ? block.parts[0]! : Buffer.concat(block.parts, block.bytes);
      return { streamId: block.streamId, endStream: block.endStream, decoded: this.#decoder.decode(bytes, this.#maxHeaderList) };
    } catch (err) {
      if (err instanceof HpackError) throw new H2ProtocolError(ErrorCode.COMPRESSION_ERROR, `stream ${block.streamId}: ${err.message}`);
      throw err;
    }
  }
}
