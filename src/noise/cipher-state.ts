// Noise CipherState: a key and a 64-bit message counter. The counter's place in the 12-byte
// AEAD nonce is a parameter, because the two users disagree:
//
//   standard Noise (the spec, snow, cacophony):  00 00 00 00 | counter, 8 bytes LITTLE-endian
//   Tailscale TS2021 transport (controlbase):    00 00 00 00 | counter, 8 bytes BIG-endian
//
// Counter 0 encodes identically both ways, which is why a wrong choice passes the first record
// in each direction and fails on the second (protocol.md §4.5). Handshake messages only ever
// use counter 0, so the choice matters for transport ciphers only.
import { AEAD_KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, aeadOpen, aeadSealInto, unpooledCopy } from './primitives.js';
import { NoiseErrors, NoiseHandshakeError } from './errors.js';
import { HeadwayError } from '../util/headway-error.js';

export type NonceEncoding = 'little-endian' | 'big-endian';

const UINT32_MAX = 0xffffffff;

export class CipherState {
  #key: Buffer | null;
  readonly nonceEncoding: NonceEncoding;
  // The counter as two uint32 halves: a JS number loses precision above 2^53, and a bigint per
  // record costs more than two integer compares.
  #high: number;
  #low: number;
  readonly #nonce = Buffer.alloc(AEAD_NONCE_BYTES);

  /** `startCounter` is for tests that need to reach the end of the nonce space. */
  constructor(key: Buffer | null, nonceEncoding: NonceEncoding, startCounter: bigint = 0n) {
    if (key !== null && key.length !== AEAD_KEY_BYTES) {
      throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: cipher key is ${key.length} bytes, want ${AEAD_KEY_BYTES}`);
    }
    if (startCounter < 0n || startCounter > 0xffffffffffffffffn) {
      throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: cipher start counter outside 0..2^64-1');
    }
    this.#key = key === null ? null : unpooledCopy(key);
    this.nonceEncoding = nonceEncoding;
    this.#high = Number(startCounter >> 32n);
    this.#low = Number(startCounter & 0xffffffffn);
  }

  hasKey(): boolean {
    return this.#key !== null;
  }

  /** The next counter value to be used. */
  get counter(): bigint {
    return (BigInt(this.#high) << 32n) | BigInt(this.#low);
  }

  /** Drops the key: no further use. Called when a connection ends or a record fails. */
  destroy(): void {
    this.#key?.fill(0);
    this.#key = null;
  }

  /**
   * Encrypts `plaintext` (associated data `ad`) into `out` at `offset` as ciphertext||tag and
   * advances the counter. Without a key (Noise handshake before the first MixKey) the plaintext
   * is copied unchanged, as the Noise spec says.
   */
  sealInto(ad: Uint8Array, plaintext: Uint8Array, out: Buffer, offset: number): number {
    const key = this.#key;
    if (key === null) {
      out.set(plaintext, offset);
      return plaintext.length;
    }
    const nonce = this.#takeNonce();
    return aeadSealInto(key, nonce, ad, plaintext, out, offset);
  }

  /** Like sealInto, into a new buffer. */
  seal(ad: Uint8Array, plaintext: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(plaintext.length + (this.#key === null ? 0 : AEAD_TAG_BYTES));
    this.sealInto(ad, plaintext, out, 0);
    return out;
  }

  /**
   * Decrypts ciphertext||tag. On an authentication failure the key is dropped (this state cannot
   * resynchronise with the peer, as in controlbase) and the error names `step`.
   */
  open(ad: Uint8Array, sealed: Uint8Array, step: string): Buffer {
    const key = this.#key;
    if (key === null) return Buffer.from(sealed);
    const nonce = this.#takeNonce();
    const plaintext = aeadOpen(key, nonce, ad, sealed);
    if (plaintext === null) {
      this.destroy();
      throw new NoiseHandshakeError(NoiseErrors.DECRYPT_FAILED, `noise: ${step}: message authentication failed`);
    }
    return plaintext;
  }

  /** Writes the current counter into the nonce buffer and advances; 2^64-1 is never used. */
  #takeNonce(): Buffer {
    const high = this.#high;
    const low = this.#low;
    if (high === UINT32_MAX && low === UINT32_MAX) {
      this.destroy();
      throw new HeadwayError(NoiseErrors.NONCE_EXHAUSTED, 'noise: cipher exhausted: counter reached 2^64-1, no more nonces for this key');
    }
    const nonce = this.#nonce;
    if (this.nonceEncoding === 'big-endian') {
      nonce.writeUInt32BE(high, 4);
      nonce.writeUInt32BE(low, 8);
    } else {
      nonce.writeUInt32LE(low, 4);
      nonce.writeUInt32LE(high, 8);
    }
    if (low === UINT32_MAX) {
      this.#low = 0;
      this.#high = high + 1;
    } else {
      this.#low = low + 1;
    }
    return nonce;
  }
}
