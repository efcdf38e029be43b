// TS2021 transport records (type 4, BE length, ChaCha20-Poly1305 without associated data; see
// the diagram in messages.ts). The encoder cuts plaintext into records of at most 4077 bytes;
// the decoder reassembles records from arbitrary chunks, skips empty ones, and throws on the
// first bad one: after a failure the stream can never resynchronise, so callers close.
import type { CipherState } from './cipher-state.js';
import { HeadwayError } from '../util/headway-error.js';
import { NoiseErrors } from './errors.js';
import { HEADER_BYTES, MAX_CIPHERTEXT_BYTES, MAX_PLAINTEXT_BYTES, MAX_RECORD_BYTES, MessageType } from './messages.js';

const TAG_BYTES = 16;
const RECORD_OVERHEAD = HEADER_BYTES + TAG_BYTES;
const EMPTY = Buffer.alloc(0);

/** Wire bytes needed to carry `plaintextBytes` (one empty record for zero). */
export function recordsWireLength(plaintextBytes: number): number {
  const records = Math.max(1, Math.ceil(plaintextBytes / MAX_PLAINTEXT_BYTES));
  return plaintextBytes + records * RECORD_OVERHEAD;
}

/**
 * Seals `parts` (taken as one byte sequence) into records of at most MAX_PLAINTEXT_BYTES each,
 * in one buffer ready for a single write. Zero bytes give one empty record, which receivers skip.
 */
export function encodeRecords(cipher: CipherState, parts: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const part of parts) total += part.length;
  const plaintext = parts.length === 1 ? (parts[0] ?? EMPTY) : Buffer.concat(parts, total);
  const out = Buffer.allocUnsafe(recordsWireLength(total));
  let offset = 0;
  let taken = 0;
  do {
    const chunk = plaintext.subarray(taken, taken + MAX_PLAINTEXT_BYTES);
    taken += chunk.length;
    out[offset] = MessageType.record;
    out.writeUInt16BE(chunk.length + TAG_BYTES, offset + 1);
    offset += HEADER_BYTES;
    offset += cipher.sealInto(EMPTY, chunk, out, offset);
  } while (taken < total);
  return out;
}

/** Reassembles and opens records; one per direction of a connection. */
export class RecordDecoder {
  readonly #cipher: CipherState;
  readonly #where: () => string;
  // A record split across chunks is gathered here; allocated only while one is pending, so an
  // idle connection holds no 4 KiB buffer (controlbase does the same).
  #partial: Buffer | null = null;
  #partialLength = 0;
  #recordsOpened = 0;

  /** `where` names the connection in error messages, e.g. `connection from 10.0.0.5:51234`. */
  constructor(cipher: CipherState, where: () => string) {
    this.#cipher = cipher;
    this.#where = where;
  }

  get recordsOpened(): number {
    return this.#recordsOpened;
  }

  /** Bytes of an incomplete record held back; non-zero at end of stream means truncation. */
  get pendingBytes(): number {
    return this.#partialLength;
  }

  /** Opens every complete record in `chunk`; returns their non-empty plaintexts in order. */
  decode(chunk: Buffer): Buffer[] {
    const plaintexts: Buffer[] = [];
    let offset = 0;
    if (this.#partialLength > 0) {
      offset = this.#continuePartial(chunk, plaintexts);
      if (this.#partialLength > 0) return plaintexts;
    }
    while (chunk.length - offset >= HEADER_BYTES) {
      const recordLength = this.#checkHeader(chunk, offset);
      if (chunk.length - offset < recordLength) break;
      this.#open(chunk.subarray(offset + HEADER_BYTES, offset + recordLength), plaintexts);
      offset += recordLength;
    }
    if (offset < chunk.length) {
      this.#partial ??= Buffer.allocUnsafe(MAX_RECORD_BYTES);
      this.#partialLength = chunk.copy(this.#partial, 0, offset);
    }
    return plaintexts;
  }

  /** Feeds the start of `chunk` into the pending record; returns how much of chunk it took. */
  #continuePartial(chunk: Buffer, plaintexts: Buffer[]): number {
    const partial = this.#partial;
    if (partial === null) return 0;
    let taken = 0;
    if (this.#partialLength < HEADER_BYTES) {
      taken = chunk.copy(partial, this.#partialLength, 0, Math.min(chunk.length, HEADER_BYTES - this.#partialLength));
      this.#partialLength += taken;
      if (this.#partialLength < HEADER_BYTES) return taken;
    }
    const recordLength = this.#checkHeader(partial, 0);
    const more = chunk.copy(partial, this.#partialLength, taken, taken + recordLength - this.#partialLength);
    this.#partialLength += more;
    taken += more;
    if (this.#partialLength < recordLength) return taken;
    this.#partialLength = 0;
    this.#open(partial.subarray(HEADER_BYTES, recordLength), plaintexts);
    this.#partial = null;
    return taken;
  }

  /** Validates a header (type first, so garbage fails before we wait for a body). */
  #checkHeader(bytes: Buffer, offset: number): number {
    const type = bytes[offset];
    if (type !== MessageType.record) {
      throw new HeadwayError(
        NoiseErrors.BAD_MESSAGE_TYPE,
        `noise: ${this.#where()}: record ${this.#recordsOpened}: message type ${type ?? 'none'}, want ${MessageType.record}`,
      );
    }
    const length = bytes.readUInt16BE(offset + 1);
    if (length > MAX_CIPHERTEXT_BYTES) {
      throw new HeadwayError(
        NoiseErrors.RECORD_TOO_LARGE,
        `noise: ${this.#where()}: record ${this.#recordsOpened}: ${HEADER_BYTES + length} bytes on the wire, limit ${MAX_RECORD_BYTES}`,
      );
    }
    if (length < TAG_BYTES) {
      throw new HeadwayError(
        NoiseErrors.BAD_LENGTH,
        `noise: ${this.#where()}: record ${this.#recordsOpened}: ciphertext of ${length} bytes is shorter than the ${TAG_BYTES}-byte tag`,
      );
    }
    return HEADER_BYTES + length;
  }

  #open(sealed: Buffer, plaintexts: Buffer[]): void {
    const index = this.#recordsOpened;
    const plaintext = this.#cipher.open(EMPTY, sealed, `${this.#where()}: decrypting record ${index}`);
    this.#recordsOpened = index + 1;
    if (plaintext.length > 0) plaintexts.push(plaintext);
  }
}
