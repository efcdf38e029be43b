// Test oracle: an independent TS2021 Noise IK implementation on @noble (pure JS), written from
// protocol.md §4 and controlbase without sharing any code with the production core, so the two
// can check each other byte for byte. Tests only; production code must never import this file.
import { x25519 } from '@noble/curves/ed25519.js';
import { blake2s } from '@noble/hashes/blake2.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';

const PROTOCOL_NAME = 'Noise_IK_25519_ChaChaPoly_BLAKE2s';
const encoder = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** A straightforward Noise symmetric state, one single-use key per MixKey (nonce zero). */
class OracleSymmetric {
  h: Uint8Array;
  ck: Uint8Array;
  k: Uint8Array | null = null;

  constructor(prologue: Uint8Array) {
    this.h = blake2s(encoder.encode(PROTOCOL_NAME));
    this.ck = this.h;
    this.mixHash(prologue);
  }

  mixHash(data: Uint8Array): void {
    this.h = blake2s(concat(this.h, data));
  }

  mixDh(privateKey: Uint8Array, publicKey: Uint8Array): void {
    const shared = x25519.getSharedSecret(privateKey, publicKey);
    if (shared.every((b) => b === 0)) throw new Error('oracle: low-order point');
    const out = hkdf(blake2s, shared, this.ck, new Uint8Array(0), 64);
    this.ck = out.slice(0, 32);
    this.k = out.slice(32, 64);
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    if (this.k === null) throw new Error('oracle: no key');
    const sealed = chacha20poly1305(this.k, new Uint8Array(12), this.h).encrypt(plaintext);
    this.mixHash(sealed);
    return sealed;
  }

  decryptAndHash(sealed: Uint8Array): Uint8Array {
    if (this.k === null) throw new Error('oracle: no key');
    const plaintext = chacha20poly1305(this.k, new Uint8Array(12), this.h).decrypt(sealed);
    this.mixHash(sealed);
    return plaintext;
  }

  split(): [Uint8Array, Uint8Array] {
    const out = hkdf(blake2s, new Uint8Array(0), this.ck, new Uint8Array(0), 64);
    return [out.slice(0, 32), out.slice(32, 64)];
  }
}

function prologueOf(version: number): Uint8Array {
  return encoder.encode(`Tailscale Control Protocol v${version}`);
}

/** One direction of the TS2021 record layer: BE counter in nonce bytes 4..11, type 4 frames. */
export class OracleRecordCipher {
  readonly #key: Uint8Array;
  #counter = 0n;

  constructor(key: Uint8Array) {
    this.#key = key;
  }

  #nonce(): Uint8Array {
    const nonce = new Uint8Array(12);
    new DataView(nonce.buffer).setBigUint64(4, this.#counter, false);
    this.#counter++;
    return nonce;
  }

  /** One type-4 frame for `plaintext` (which must fit one record). */
  seal(plaintext: Uint8Array): Uint8Array {
    if (plaintext.length > 4077) throw new Error('oracle: plaintext too large for one record');
    const sealed = chacha20poly1305(this.#key, this.#nonce()).encrypt(plaintext);
    const header = new Uint8Array([4, sealed.length >> 8, sealed.length & 0xff]);
    return concat(header, sealed);
  }

  /** Splits `stream` into frames and opens each; throws on a bad frame or a partial tail. */
  openAll(stream: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let offset = 0;
    while (offset < stream.length) {
      if (stream.length - offset < 3) throw new Error('oracle: partial header');
      if (stream[offset] !== 4) throw new Error(`oracle: frame type ${stream[offset]}`);
      const length = ((stream[offset + 1] ?? 0) << 8) | (stream[offset + 2] ?? 0);
      if (3 + length > 4096) throw new Error('oracle: frame too large');
      const sealed = stream.subarray(offset + 3, offset + 3 + length);
      if (sealed.length !== length) throw new Error('oracle: partial frame');
      out.push(chacha20poly1305(this.#key, this.#nonce()).decrypt(sealed));
      offset += 3 + length;
    }
    return out;
  }
}

export interface OracleSession {
  send: OracleRecordCipher;
  receive: OracleRecordCipher;
  handshakeHash: Uint8Array;
  k1: Uint8Array;
  k2: Uint8Array;
}

/** Client side: builds the 101-byte initiation; `finish` takes the 51-byte response. */
export function oracleClientInitiation(options: {
  machinePrivate: Uint8Array;
  controlPublic: Uint8Array;
  ephemeralPrivate: Uint8Array;
  protocolVersion: number;
}): { message: Uint8Array; finish(response: Uint8Array): OracleSession } {
  const s = new OracleSymmetric(prologueOf(options.protocolVersion));
  s.mixHash(options.controlPublic);
  const ephemeralPublic = x25519.getPublicKey(options.ephemeralPrivate);
  s.mixHash(ephemeralPublic);
  s.mixDh(options.ephemeralPrivate, options.controlPublic);
  const machineSealed = s.encryptAndHash(x25519.getPublicKey(options.machinePrivate));
  s.mixDh(options.machinePrivate, options.controlPublic);
  const tag = s.encryptAndHash(new Uint8Array(0));
  const header = new Uint8Array([options.protocolVersion >> 8, options.protocolVersion & 0xff, 1, 0, 96]);
  const message = concat(header, ephemeralPublic, machineSealed, tag);
  return {
    message,
    finish(response: Uint8Array): OracleSession {
      if (response.length !== 51 || response[0] !== 2 || response[1] !== 0 || response[2] !== 48) throw new Error('oracle: bad response frame');
      const serverEphemeral = response.subarray(3, 35);
      s.mixHash(serverEphemeral);
      s.mixDh(options.ephemeralPrivate, serverEphemeral);
      s.mixDh(options.machinePrivate, serverEphemeral);
      s.decryptAndHash(response.subarray(35, 51));
      const [k1, k2] = s.split();
      return { send: new OracleRecordCipher(k1), receive: new OracleRecordCipher(k2), handshakeHash: s.h, k1, k2 };
    },
  };
}

/** Server side: checks and answers a 101-byte initiation. */
export function oracleServerAccept(options: {
  controlPrivate: Uint8Array;
  ephemeralPrivate: Uint8Array;
  initiation: Uint8Array;
}): { response: Uint8Array; machinePublic: Uint8Array; protocolVersion: number; session: OracleSession } {
  const init = options.initiation;
  if (init.length !== 101 || init[2] !== 1 || init[3] !== 0 || init[4] !== 96) throw new Error('oracle: bad initiation frame');
  const protocolVersion = ((init[0] ?? 0) << 8) | (init[1] ?? 0);
  const s = new OracleSymmetric(prologueOf(protocolVersion));
  const controlPublic = x25519.getPublicKey(options.controlPrivate);
  s.mixHash(controlPublic);
  const clientEphemeral = init.subarray(5, 37);
  s.mixHash(clientEphemeral);
  s.mixDh(options.controlPrivate, clientEphemeral);
  const machinePublic = s.decryptAndHash(init.subarray(37, 85));
  s.mixDh(options.controlPrivate, machinePublic);
  s.decryptAndHash(init.subarray(85, 101));
  const ephemeralPublic = x25519.getPublicKey(options.ephemeralPrivate);
  s.mixHash(ephemeralPublic);
  s.mixDh(options.ephemeralPrivate, clientEphemeral);
  s.mixDh(options.ephemeralPrivate, machinePublic);
  const tag = s.encryptAndHash(new Uint8Array(0));
  const response = concat(new Uint8Array([2, 0, 48]), ephemeralPublic, tag);
  const [k1, k2] = s.split();
  return {
    response,
    machinePublic,
    protocolVersion,
    session: { send: new OracleRecordCipher(k2), receive: new OracleRecordCipher(k1), handshakeHash: s.h, k1, k2 },
  };
}

export { equalBytes as oracleEqualBytes };

/** Random 32 bytes from the oracle's own source (not node:crypto), for fresh oracle keys. */
export function oracleRandomKey(): Uint8Array {
  return x25519.utils.randomSecretKey();
}
