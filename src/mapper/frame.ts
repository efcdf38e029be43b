// Map-stream framing, server side. One message on the wire:
//
//   +----------------------+------------------------------------------+
//   | uint32 LITTLE-endian | one or more concatenated zstd frames      |
//   | length of what follows | whose decompressed concatenation is one |
//   |                      | MapResponse JSON                          |
//   +----------------------+------------------------------------------+
//
// The client decodes with klauspost's DecodeAll, which walks frame after frame, so a message
// may be assembled from pieces compressed at different times (protocol.md §9.2). That is what
// lets one compressed peer fragment be shared by every recipient of a change.
import { Compressor } from 'zstd-napi';

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const MAX_RAW_BLOCK = 128 * 1024;

/** Default level: level 1 compresses a 1 MB netmap in about 3 ms on the dev machine. */
export const DEFAULT_ZSTD_LEVEL = 1;
/** Below this size compressing costs more than it saves; use a raw-block frame. */
const RAW_BELOW_BYTES = 64;

export class ZstdEncoder {
  readonly #compressor = new Compressor();

  constructor(level: number = DEFAULT_ZSTD_LEVEL) {
    this.#compressor.setParameters({ compressionLevel: level, contentSizeFlag: true, checksumFlag: false });
  }

  /** One zstd frame holding `data`. */
  frame(data: Buffer): Buffer {
    if (data.length < RAW_BELOW_BYTES) return rawZstdFrame(data);
    return this.#compressor.compress(data);
  }
}

/**
 * A zstd frame made of raw (stored) blocks: no compression, no work. Used for tiny constant
 * pieces such as `{"PeersChangedPatch":[`.
 *
 *   magic 28 B5 2F FD | descriptor | frame content size | blocks...
 *   descriptor: single-segment (0x20) + size field width (0x00: 1 byte, 0x40: 2 bytes
 *   holding size-256, 0x80: 4 bytes); each block: 3-byte LE header (size << 3 | last).
 */
export function rawZstdFrame(data: Buffer): Buffer {
  const size = data.length;
  let header: Buffer;
  if (size < 256) {
    header = Buffer.from([0x20, size]);
  } else if (size < 65536 + 256) {
    header = Buffer.alloc(3);
    header[0] = 0x60;
    header.writeUInt16LE(size - 256, 1);
  } else {
    header = Buffer.alloc(5);
    header[0] = 0xa0;
    header.writeUInt32LE(size, 1);
  }
  const parts: Buffer[] = [ZSTD_MAGIC, header];
  let offset = 0;
  do {
    const blockSize = Math.min(MAX_RAW_BLOCK, size - offset);
    const last = offset + blockSize >= size ? 1 : 0;
    const blockHeader = Buffer.alloc(3);
    blockHeader.writeUIntLE((blockSize << 3) | last, 0, 3);
    parts.push(blockHeader, data.subarray(offset, offset + blockSize));
    offset += blockSize;
  } while (offset < size);
  return Buffer.concat(parts);
}

/** Prefixes the zstd frames of one message with its little-endian length. */
export function frameMessage(zstdFrames: readonly Buffer[]): Buffer {
  let length = 0;
  for (const part of zstdFrames) length += part.length;
  const out = Buffer.allocUnsafe(4 + length);
  out.writeUInt32LE(length, 0);
  let offset = 4;
  for (const part of zstdFrames) {
    part.copy(out, offset);
    offset += part.length;
  }
  return out;
}

/** Raw frames of constant JSON pieces, built once per process. */
const constantFrames = new Map<string, Buffer>();

export function constantPiece(json: string): Buffer {
  let frame = constantFrames.get(json);
  if (frame === undefined) {
    frame = rawZstdFrame(Buffer.from(json));
    constantFrames.set(json, frame);
  }
  return frame;
}
