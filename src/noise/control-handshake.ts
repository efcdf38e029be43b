// Tailscale's TS2021 handshake (control/controlbase/handshake.go @de9ec7ee) on the generic Noise
// IK state: prologue "Tailscale Control Protocol v<version>", empty payloads, the client's
// protocol version in the clear in the initiation header, and transport ciphers whose nonce
// carries the counter BIG-endian. Split gives k1 for client->server, k2 for server->client.
import { HandshakeState } from './handshake-state.js';
import type { CipherState, NonceEncoding } from './cipher-state.js';
import type { DhKeyPair } from './primitives.js';
import { DH_BYTES } from './primitives.js';
import { NoiseErrors, NoiseHandshakeError } from './errors.js';
import {
  INITIATION_BYTES,
  INITIATION_HEADER_BYTES,
  MessageType,
  RESPONSE_BYTES,
  RESPONSE_PAYLOAD_BYTES,
  checkInitiation,
  protocolPrologue,
  readFrameHeader,
  writeInitiationHeader,
} from './messages.js';
import { HeadwayError } from '../util/headway-error.js';

/** A finished TS2021 handshake, from one side's point of view. */
export interface NoiseSession {
  /** Encrypts what we send. */
  readonly send: CipherState;
  /** Decrypts what we receive. */
  readonly receive: CipherState;
  /** The peer's static Curve25519 key: the client's machine key, or the control server's key. */
  readonly peerStatic: Buffer;
  /** The protocol version from the initiation header (the client's capability version). */
  readonly protocolVersion: number;
  /** The final Noise handshake hash h. */
  readonly handshakeHash: Buffer;
}

export interface ClientHandshakeOptions {
  /** The client's machine key (its Noise static key). */
  machineKey: DhKeyPair;
  /** The control server's Noise public key, raw 32 bytes (from `/key`). */
  controlPublic: Uint8Array;
  protocolVersion: number;
  /** Fixed ephemeral key, for test vectors only. */
  ephemeral?: DhKeyPair;
  /** 'big-endian' (Tailscale, the default); 'little-endian' only to show what goes wrong. */
  nonceEncoding?: NonceEncoding;
}

/** The client's first flight, and the continuation that reads the server's answer. */
export interface ClientInitiation {
  /** The 101-byte initiation (sent base64 in `X-Tailscale-Handshake`). */
  readonly message: Buffer;
  /**
   * Completes the handshake from the server's 51-byte response frame. A type-3 error frame
   * throws HW_NOISE_SERVER_REFUSED carrying the server's text.
   */
  finish(responseFrame: Uint8Array): NoiseSession;
}

export function beginClientHandshake(options: ClientHandshakeOptions): ClientInitiation {
  if (options.controlPublic.length !== DH_BYTES) {
    throw new HeadwayError(NoiseErrors.INVALID_USE, `noise: control key is ${options.controlPublic.length} bytes, want ${DH_BYTES}`);
  }
  const handshake = new HandshakeState({
    pattern: 'IK',
    initiator: true,
    prologue: protocolPrologue(options.protocolVersion),
    localStatic: options.machineKey,
    remoteStatic: options.controlPublic,
    ...(options.ephemeral ? { localEphemeral: options.ephemeral } : {}),
    transportNonceEncoding: options.nonceEncoding ?? 'big-endian',
  });
  const message = Buffer.alloc(INITIATION_BYTES);
  writeInitiationHeader(options.protocolVersion, message);
  handshake.writeMessage(Buffer.alloc(0)).copy(message, INITIATION_HEADER_BYTES);
  let used = false;
  return {
    message,
    finish(responseFrame: Uint8Array): NoiseSession {
      if (used) throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: client handshake continued twice');
      used = true;
      const { type, length } = readFrameHeader(responseFrame);
      if (type === MessageType.error) {
        throw new NoiseHandshakeError(NoiseErrors.SERVER_REFUSED, `noise: server error: ${JSON.stringify(decodeErrorText(responseFrame))}`);
      }
      if (type !== MessageType.response) {
        throw new NoiseHandshakeError(NoiseErrors.BAD_MESSAGE_TYPE, `noise: reading response header: unexpected response message type ${type}`);
      }
      if (length !== RESPONSE_PAYLOAD_BYTES || responseFrame.length !== RESPONSE_BYTES) {
        throw new NoiseHandshakeError(NoiseErrors.BAD_LENGTH, `noise: wrong length ${length} received for handshake response, want ${RESPONSE_PAYLOAD_BYTES}`);
      }
      handshake.readMessage(responseFrame.subarray(3));
      const result = handshake.result();
      return {
        send: result.send,
        receive: result.receive,
        peerStatic: Buffer.from(options.controlPublic),
        protocolVersion: options.protocolVersion,
        handshakeHash: result.handshakeHash,
      };
    },
  };
}

/** The text of a type-3 error frame (header included); unauthenticated, for display only. */
export function decodeErrorText(frame: Uint8Array): string {
  const { length } = readFrameHeader(frame);
  return Buffer.from(frame.subarray(3, 3 + length)).toString('utf8');
}

export interface ServerHandshakeOptions {
  /** The control server's static Noise key. */
  controlKey: DhKeyPair;
  /** The 101-byte initiation, already base64-decoded. */
  initiation: Uint8Array;
  /** Fixed ephemeral key, for test vectors only. */
  ephemeral?: DhKeyPair;
  nonceEncoding?: NonceEncoding;
}

export interface ServerHandshake {
  /** The 51-byte response frame to send. */
  readonly response: Buffer;
  readonly session: NoiseSession;
}

/**
 * The responder side: checks the frame, decrypts the client's machine key, answers. Throws a
 * NoiseHandshakeError naming the step; its `publicHint` (if any) is what controlbase would send
 * back as an error frame. Version policy is the caller's (see checkInitiation).
 */
export function acceptClientHandshake(options: ServerHandshakeOptions): ServerHandshake {
  const header = checkInitiation(options.initiation);
  const handshake = new HandshakeState({
    pattern: 'IK',
    initiator: false,
    prologue: protocolPrologue(header.protocolVersion),
    localStatic: options.controlKey,
    ...(options.ephemeral ? { localEphemeral: options.ephemeral } : {}),
    transportNonceEncoding: options.nonceEncoding ?? 'big-endian',
  });
  handshake.readMessage(options.initiation.subarray(INITIATION_HEADER_BYTES));
  const body = handshake.writeMessage(Buffer.alloc(0));
  const response = Buffer.alloc(RESPONSE_BYTES);
  response[0] = MessageType.response;
  response.writeUInt16BE(RESPONSE_PAYLOAD_BYTES, 1);
  body.copy(response, 3);
  const result = handshake.result();
  const peerStatic = result.remoteStatic;
  if (peerStatic === null) throw new HeadwayError(NoiseErrors.INVALID_USE, 'noise: IK handshake finished without the client static key');
  return {
    response,
    session: {
      send: result.send,
      receive: result.receive,
      peerStatic,
      protocolVersion: header.protocolVersion,
      handshakeHash: result.handshakeHash,
    },
  };
}
