/**
 * @module noise
 * Owns the Noise core (Noise_{IK,NN,XX}_25519_ChaChaPoly_BLAKE2s: CipherState with a chosen
 * nonce byte order, SymmetricState, HandshakeState) and Tailscale's TS2021 framing on top of it
 * (controlbase): the prologue, the 101-byte initiation with its 5-byte header, the 51-byte
 * response, error frames, type-4 transport records (<= 4096 bytes on the wire, BIG-endian
 * counters) and `NoiseConnection`, a Duplex of plaintext over any byte stream.
 * Shared by control (responder) and client (initiator); both are checked by the standard
 * vectors, protocol.md §4.7 and an independent @noble implementation (testing.ts).
 * May import: key, util. Must never: do HTTP, know about HTTP/2 or map frames, log, or use a
 * pure-JS crypto library outside tests. This file is the part's only door.
 */
export { NoiseErrors, NoiseHandshakeError } from './errors.js';
export { CipherState, type NonceEncoding } from './cipher-state.js';
export {
  HandshakeState,
  SymmetricState,
  protocolNameOf,
  type HandshakePatternName,
  type HandshakeStateOptions,
  type HandshakeResult,
} from './handshake-state.js';
export { generateEphemeralKey, type DhKeyPair } from './primitives.js';
export {
  MessageType,
  HEADER_BYTES,
  INITIATION_HEADER_BYTES,
  INITIATION_BYTES,
  RESPONSE_BYTES,
  MAX_RECORD_BYTES,
  MAX_CIPHERTEXT_BYTES,
  MAX_PLAINTEXT_BYTES,
  protocolPrologue,
  checkInitiation,
  readInitiationHeader,
  readFrameHeader,
  encodeErrorMessage,
  type InitiationHeader,
} from './messages.js';
export {
  beginClientHandshake,
  acceptClientHandshake,
  decodeErrorText,
  type NoiseSession,
  type ClientInitiation,
  type ClientHandshakeOptions,
  type ServerHandshakeOptions,
  type ServerHandshake,
} from './control-handshake.js';
export { encodeRecords, recordsWireLength, RecordDecoder } from './record-layer.js';
export { NoiseConnection, type NoiseConnectionOptions, type NoiseConnectionStats, type PlaintextTap } from './noise-connection.js';
