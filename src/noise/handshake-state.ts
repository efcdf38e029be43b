// The Noise Protocol Framework's SymmetricState and HandshakeState (noiseprotocol.org/noise.html
// §5.2, §5.3), for the handshake patterns we need: IK (what Tailscale's TS2021 uses), and NN and
// XX so the standard vectors for the same primitives check the token machinery more broadly.
// Tailscale-specific framing (prologue text, version header, 101/51-byte messages) lives in
// control-handshake.ts on top of this.
import { AEAD_TAG_BYTES, DH_BYTES, HASH_BYTES, blake2s, generateEphemeralKey, hkdf2, unpooledCopy, type DhKeyPair } from './primitives.js';
import { CipherState, type NonceEncoding } from './cipher-state.js';
import { NoiseErrors, NoiseHandshakeError } from './errors.js';
import { HeadwayError } from '../util/headway-error.js';

export type HandshakePatternName = 'NN' | 'XX' | 'IK';
type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss';

interface HandshakePattern {
  /** Pre-message of the responder: IK's `<- s` (the initiator knows the responder's static key). */
  readonly responderPreMessage: readonly Token[];
  /** Messages in order; even index: initiator -> responder, odd: responder -> initiator. */
  readonly messages: readonly (readonly Token[])[];
}

const PATTERNS: Readonly<Record<HandshakePatternName, HandshakePattern>> = {
  NN: { responderPreMessage: [], messages: [['e'], ['e', 'ee']] },
  XX: { responderPreMessage: [], messages: [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']] },
  IK: { responderPreMessage: ['s'], messages: [['e', 'es', 's', 'ss'], ['e', 'ee', 'se']] },
};

export function protocolNameOf(pattern: HandshakePatternName): string {
  return `Noise_${pattern}_25519_ChaChaPoly_BLAKE2s`;
}

/** Noise SymmetricState: chaining key, handshake hash and the current handshake cipher. */
export class SymmetricState {
  #chainingKey: Buffer;
  #hash: Buffer;
  // Handshake ciphers see at most a few messages per key, and Tailscale's only counter 0, so the
  // nonce encoding is irrelevant here; standard Noise says little-endian.
  #cipher = new CipherState(null, 'little-endian');

  constructor(protocolName: string) {
    const name = Buffer.from(protocolName, 'ascii');
    this.#hash = name.length <= HASH_BYTES ? Buffer.concat([name, Buffer.alloc(HASH_BYTES - name.length)]) : blake2s(name);
    this.#chainingKey = this.#hash;
  }

  get handshakeHash(): Buffer {
    return unpooledCopy(this.#hash);
  }

  mixHash(data: Uint8Array): void {
    this.#hash = blake2s(this.#hash, data);
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [chainingKey, key] = hkdf2(this.#chainingKey, inputKeyMaterial);
    this.#chainingKey = chainingKey;
    this.#cipher.destroy();
    this.#cipher = new CipherState(key, 'little-endian');
  }

  hasKey(): boolean {
    return this.#cipher.hasKey();
  }

  encryptAndHash(plaintext: Uint8Array): Buffer {
    const sealed = this.#cipher.seal(this.#hash, plaintext);
    this.mixHash(sealed);
    return sealed;
  }

  decryptAndHash(sealed: Uint8Array, step: string): Buffer {
    const plaintext = this.#cipher.open(this.#hash, sealed, step);
    this.mixHash(sealed);
    return plaintext;
  }

  /** Split into (initiator->responder, responder->initiator) transport ciphers. */
  split(nonceEncoding: NonceEncoding): [CipherState, CipherState] {
    const [k1, k2] = hkdf2(this.#chainingKey, Buffer.alloc(0));
    this.#cipher.destroy();
    return [new CipherState(k1, nonceEncoding), new CipherState(k2, nonceEncoding)];
  }
}

export interface HandshakeStateOptions {
  pattern: HandshakePatternName;
  initiator: boolean;
  prologue: Uint8Array;
  /** Our static key (IK: both sides; XX: both sides; NN: none). */
  localStatic?: DhKeyPair;
  /** A fixed ephemeral key (test vectors); by default a fresh one per handshake. */
  localEphemeral?: DhKeyPair;
  /** The peer's static public key when known in advance (IK initiator). */
  remoteStatic?: Uint8Array;
  /** Nonce encoding of the transport ciphers that `split()` returns. */
  transportNonceEncoding: NonceEncoding;
}

/** Transport state after a completed handshake. */
export interface HandshakeResult {
  /** Cipher for messages we send. */
  readonly send: CipherState;
  /** Cipher for messages we receive. */
  readonly receive: CipherState;
  /** The peer's static public key (null for NN). */
  readonly remoteStatic: Buffer | null;
  /** The final handshake hash h (channel binding). */
  readonly handshakeHash: Buffer;
}

/**
 * One side of one handshake. Call writeMessage / readMessage in pattern order; after the last
 * message, `result()` gives the transport ciphers. Any failure poisons the state.
 */
export class HandshakeState {
  readonly #pattern: HandshakePattern;
  readonly #initiator: boolean;
  readonly #symmetric: SymmetricState;
  readonly #localStatic: DhKeyPair | undefined;
  #localEphemeral: DhKeyPair | undefined;
  #remoteStatic: Buffer | undefined;
  #remoteEphemeral: Buffer | undefined;
  #messageIndex = 0;
  #failed = false;
  readonly #transportNonceEncoding: NonceEncoding;

  constructor(options: HandshakeStateOptions) {
    this.#pattern = PATTERNS[options.pattern];
    this.#initiator = options.initiator;
    this.#localStatic = options.localStatic;
    this.#localEphemeral = options.localEphemeral;
    this.#remoteStatic = options.remoteStatic === undefined ? undefined : Buffer.from(options.remoteStatic);
    this.#transportNonceEncoding = options.transportNonceEncoding;
    this.#symmetric = new SymmetricState(protocolNameOf(options.pattern));
    this.#symmetric.mixHash(options.prologue);
    for (const token of this.#pattern.responderPreMessage) {
      if (token !== 's') throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: unsupported pre-message token ${token}`);
      const responderStatic = this.#initiator ? this.#remoteStatic : this.#localStatic?.publicBytes;
      if (responderStatic === undefined) {
        throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: ${options.pattern} needs the responder's static key before the handshake`);
      }
      this.#symmetric.mixHash(responderStatic);
    }
  }

  get isComplete(): boolean {
    return this.#messageIndex >= this.#pattern.messages.length;
  }

  get handshakeHash(): Buffer {
    return this.#symmetric.handshakeHash;
  }

  get remoteStatic(): Buffer | null {
    return this.#remoteStatic === undefined ? null : unpooledCopy(this.#remoteStatic);
  }

  /** Number of bytes writeMessage produces for the next message with a payload of `payloadBytes`. */
  nextMessageLength(payloadBytes: number): number {
    let length = 0;
    let keyed = this.#symmetric.hasKey();
    for (const token of this.#currentTokens()) {
      if (token === 'e') length += DH_BYTES;
      else if (token === 's') length += DH_BYTES + (keyed ? AEAD_TAG_BYTES : 0);
      else keyed = true;
    }
    return length + payloadBytes + (keyed ? AEAD_TAG_BYTES : 0);
  }

  writeMessage(payload: Uint8Array): Buffer {
    this.#checkTurn(true);
    try {
      const parts: Buffer[] = [];
      for (const token of this.#currentTokens()) {
        switch (token) {
          case 'e': {
            const ephemeral = this.#localEphemeral ?? generateEphemeralKey();
            this.#localEphemeral = ephemeral;
            parts.push(ephemeral.publicBytes);
            this.#symmetric.mixHash(ephemeral.publicBytes);
            break;
          }
          case 's':
            parts.push(this.#symmetric.encryptAndHash(this.#requireLocalStatic().publicBytes));
            break;
          default:
            this.#mixDh(token);
        }
      }
      parts.push(this.#symmetric.encryptAndHash(payload));
      this.#messageIndex++;
      return Buffer.concat(parts);
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  readMessage(message: Uint8Array): Buffer {
    this.#checkTurn(false);
    try {
      let offset = 0;
      const take = (n: number, what: string): Buffer => {
        if (message.length - offset < n) {
          throw new NoiseHandshakeError(NoiseErrors.BAD_LENGTH, `noise: reading handshake message ${this.#messageIndex}: ${what}: ${message.length} bytes is too short`);
        }
        const bytes = Buffer.from(message.subarray(offset, offset + n));
        offset += n;
        return bytes;
      };
      for (const token of this.#currentTokens()) {
        switch (token) {
          case 'e': {
            const ephemeral = take(DH_BYTES, 'ephemeral key');
            this.#remoteEphemeral = ephemeral;
            this.#symmetric.mixHash(ephemeral);
            break;
          }
          case 's': {
            const sealedLength = DH_BYTES + (this.#symmetric.hasKey() ? AEAD_TAG_BYTES : 0);
            this.#remoteStatic = this.#symmetric.decryptAndHash(take(sealedLength, 'static key'), 'decrypting static key');
            break;
          }
          default:
            this.#mixDh(token);
        }
      }
      const payload = this.#symmetric.decryptAndHash(message.subarray(offset), 'decrypting handshake payload');
      this.#messageIndex++;
      return payload;
    } catch (err) {
      this.#failed = true;
      throw err;
    }
  }

  /** The transport ciphers; only after the last handshake message. */
  result(): HandshakeResult {
    if (!this.isComplete || this.#failed) {
      throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: split before the handshake completed');
    }
    const handshakeHash = this.#symmetric.handshakeHash;
    const [initiatorToResponder, responderToInitiator] = this.#symmetric.split(this.#transportNonceEncoding);
    return {
      send: this.#initiator ? initiatorToResponder : responderToInitiator,
      receive: this.#initiator ? responderToInitiator : initiatorToResponder,
      remoteStatic: this.remoteStatic,
      handshakeHash,
    };
  }

  #currentTokens(): readonly Token[] {
    const tokens = this.#pattern.messages[this.#messageIndex];
    if (tokens === undefined) throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: handshake already complete');
    return tokens;
  }

  #checkTurn(writing: boolean): void {
    if (this.#failed) throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: handshake state used after a failure');
    const initiatorsTurn = this.#messageIndex % 2 === 0;
    if (writing !== (initiatorsTurn === this.#initiator)) {
      throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: ${writing ? 'write' : 'read'} out of turn at handshake message ${this.#messageIndex}`);
    }
  }

  #requireLocalStatic(): DhKeyPair {
    if (this.#localStatic === undefined) throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: pattern needs a local static key');
    return this.#localStatic;
  }

  /**
   * MixKey(DH(...)) for ee/es/se/ss. In `xy`, x is the initiator's key and y the responder's;
   * each side uses its own private half and the peer's public half.
   */
  #mixDh(token: 'ee' | 'es' | 'se' | 'ss'): void {
    const initiatorKind = token[0] === 'e' ? 'ephemeral' : 'static';
    const responderKind = token[1] === 'e' ? 'ephemeral' : 'static';
    const localKind = this.#initiator ? initiatorKind : responderKind;
    const remoteKind = this.#initiator ? responderKind : initiatorKind;
    const local = localKind === 'ephemeral' ? this.#localEphemeral : this.#localStatic;
    const remote = remoteKind === 'ephemeral' ? this.#remoteEphemeral : this.#remoteStatic;
    if (local === undefined || remote === undefined) {
      throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: computing ${token}: a key is missing`);
    }
    let secret: Buffer;
    try {
      secret = local.sharedSecret(remote);
    } catch (err) {
      throw new NoiseHandshakeError(NoiseErrors.LOW_ORDER_KEY, `noise: computing ${token}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    this.#symmetric.mixKey(secret);
    secret.fill(0);
  }
}
