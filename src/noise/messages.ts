// Tailscale's TS2021 frames around Noise IK (control/controlbase/messages.go @de9ec7ee).
// Every frame but the initiation starts with a 3-byte header; all lengths are BIG-endian.
//
// Initiation, client -> server, exactly 101 bytes (the only frame with a 5-byte header):
//
//    0      2    3      5                  37                        85            101
//   +------+----+------+------------------+-------------------------+-------------+
//   | ver  | 01 | 0060 | ephemeral pub    | machine pub, encrypted  | tag (empty  |
//   | u16  |    | =96  | 32, cleartext    | 32 + 16 tag             | payload) 16 |
//   +------+----+------+------------------+-------------------------+-------------+
//
// Response, server -> client, exactly 51 bytes:
//
//    0    1      3                  35             51
//   +----+------+------------------+--------------+
//   | 02 | 0030 | ephemeral pub    | tag (empty   |
//   |    | =48  | 32, cleartext    | payload) 16  |
//   +----+------+------------------+--------------+
//
// Error, server -> client, only instead of a response: 03 | u16 length | text (unauthenticated;
// a public hint, never echoing the peer's input).
//
// Transport record, both ways, at most 4096 bytes on the wire:
//
//    0    1      3
//   +----+------+---------------------------------------------+
//   | 04 | len  | ChaCha20-Poly1305(plaintext) || tag           |
//   |    | u16  | len <= 4093, so plaintext <= 4077             |
//   +----+------+---------------------------------------------+
import { HeadwayError } from '../util/headway-error.js';
import { NoiseErrors, NoiseHandshakeError } from './errors.js';

export const MessageType = {
  initiation: 1,
  response: 2,
  error: 3,
  record: 4,
} as const;

/** Header of every frame except the initiation. */
export const HEADER_BYTES = 3;
/** Header of the initiation frame: version u16, type, length u16. */
export const INITIATION_HEADER_BYTES = 5;
export const INITIATION_PAYLOAD_BYTES = 96;
export const INITIATION_BYTES = INITIATION_HEADER_BYTES + INITIATION_PAYLOAD_BYTES;
export const RESPONSE_PAYLOAD_BYTES = 48;
export const RESPONSE_BYTES = HEADER_BYTES + RESPONSE_PAYLOAD_BYTES;

/** Largest frame on the wire, header included (controlbase maxMessageSize). */
export const MAX_RECORD_BYTES = 4096;
export const MAX_CIPHERTEXT_BYTES = MAX_RECORD_BYTES - HEADER_BYTES;
/** Largest plaintext one record carries: 4096 - 3 - 16. */
export const MAX_PLAINTEXT_BYTES = MAX_CIPHERTEXT_BYTES - 16;

const PROLOGUE_PREFIX = 'Tailscale Control Protocol v';

/** The Noise prologue both sides mix in: the version in decimal ASCII, e.g. `...v145`. */
export function protocolPrologue(protocolVersion: number): Buffer {
  return Buffer.from(`${PROLOGUE_PREFIX}${protocolVersion}`, 'ascii');
}

export interface InitiationHeader {
  /** The client's protocol version (its capability version), uint16 BE at offset 0. */
  readonly protocolVersion: number;
  readonly type: number;
  readonly payloadLength: number;
}

/** Reads the 5-byte initiation header; checks nothing but that 5 bytes are there. */
export function readInitiationHeader(bytes: Uint8Array): InitiationHeader {
  if (bytes.length < INITIATION_HEADER_BYTES) {
    throw new NoiseHandshakeError(NoiseErrors.BAD_LENGTH, `noise: initiation header: ${bytes.length} bytes, want ${INITIATION_HEADER_BYTES}`, {
      publicHint: 'wrong handshake initiation size',
    });
  }
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { protocolVersion: view.readUInt16BE(0), type: view[2] ?? 0, payloadLength: view.readUInt16BE(3) };
}

/**
 * Checks a complete initiation frame's size and header, with controlbase's public hints.
 * The version is not judged here; the caller decides what it serves.
 */
export function checkInitiation(bytes: Uint8Array): InitiationHeader {
  if (bytes.length !== INITIATION_BYTES) {
    throw new NoiseHandshakeError(NoiseErrors.BAD_LENGTH, `noise: initiation: ${bytes.length} bytes, want ${INITIATION_BYTES}`, {
      publicHint: 'wrong handshake initiation size',
    });
  }
  const header = readInitiationHeader(bytes);
  if (header.type !== MessageType.initiation) {
    throw new NoiseHandshakeError(NoiseErrors.BAD_MESSAGE_TYPE, `noise: initiation: message type ${header.type}, want ${MessageType.initiation}`, {
      publicHint: 'unexpected handshake message type',
    });
  }
  if (header.payloadLength !== INITIATION_PAYLOAD_BYTES) {
    throw new NoiseHandshakeError(NoiseErrors.BAD_LENGTH, `noise: initiation: length field ${header.payloadLength}, want ${INITIATION_PAYLOAD_BYTES}`, {
      publicHint: 'wrong handshake initiation length',
    });
  }
  return header;
}

export function writeInitiationHeader(protocolVersion: number, out: Buffer): void {
  if (!Number.isInteger(protocolVersion) || protocolVersion < 0 || protocolVersion > 0xffff) {
    throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: protocol version ${protocolVersion} is not a uint16`);
  }
  out.writeUInt16BE(protocolVersion, 0);
  out[2] = MessageType.initiation;
  out.writeUInt16BE(INITIATION_PAYLOAD_BYTES, 3);
}

/** Frames an error message: 03 | u16 BE length | text, cut at 65535 bytes as controlbase does. */
export function encodeErrorMessage(text: string): Buffer {
  let body = Buffer.from(text, 'utf8');
  if (body.length > 0xffff) body = body.subarray(0, 0xffff);
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out[0] = MessageType.error;
  out.writeUInt16BE(body.length, 1);
  body.copy(out, HEADER_BYTES);
  return out;
}

/** Reads a 3-byte frame header: type and BE length. */
export function readFrameHeader(bytes: Uint8Array, offset = 0): { type: number; length: number } {
  const type = bytes[offset];
  const high = bytes[offset + 1];
  const low = bytes[offset + 2];
  if (type === undefined || high === undefined || low === undefined) {
    throw new NoiseHandshakeError(NoiseErrors.TRUNCATED, `noise: frame header: need ${HEADER_BYTES} bytes`);
  }
  return { type, length: (high << 8) | low };
}
