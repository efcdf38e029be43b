// Error codes of the Noise core and Tailscale's framing on top of it. Messages name the step
// that failed (as controlbase does: "computing es", "decrypting machine key"); what a peer may
// see is only the short `publicHint` of a NoiseHandshakeError, never the message itself.
import { HeadwayError, registerErrors, type ErrorSpec } from '../util/headway-error.js';

export const NoiseErrors = registerErrors({
  BAD_LENGTH: {
    code: 'HW_NOISE_BAD_LENGTH',
    status: 400,
    meaning: 'A Noise handshake message or record had the wrong length.',
    fix: 'The peer does not speak Tailscale\'s TS2021 framing; check that it is a Tailscale client or control server.',
  },
  BAD_MESSAGE_TYPE: {
    code: 'HW_NOISE_BAD_MESSAGE_TYPE',
    status: 400,
    meaning: 'A Noise frame carried a message type that is not valid at that point of the protocol.',
    fix: 'The peer does not speak Tailscale\'s TS2021 framing, or the byte stream was corrupted in transit.',
  },
  DECRYPT_FAILED: {
    code: 'HW_NOISE_DECRYPT_FAILED',
    status: 400,
    meaning: 'A Noise handshake message or transport record failed authentication (wrong key, tampered, replayed or reordered).',
    fix: 'Usually the client cached an old server key; restart it so it fetches /key again. Otherwise the stream was tampered with.',
  },
  LOW_ORDER_KEY: {
    code: 'HW_NOISE_LOW_ORDER_KEY',
    status: 400,
    meaning: 'A peer sent a Curve25519 public key that gives an all-zero shared secret.',
    fix: 'None on our side: the peer is broken or hostile; the connection is refused.',
  },
  RECORD_TOO_LARGE: {
    code: 'HW_NOISE_RECORD_TOO_LARGE',
    status: 400,
    meaning: 'A Noise transport record was larger than 4096 bytes on the wire.',
    fix: 'The peer violates the TS2021 record limit; it is not a compatible Tailscale implementation.',
  },
  NONCE_EXHAUSTED: {
    code: 'HW_NOISE_NONCE_EXHAUSTED',
    status: 500,
    meaning: 'A Noise cipher reached its last nonce (2^64-1); TS2021 has no rekeying, so the connection ends.',
    fix: 'None needed: the client reconnects with a fresh handshake.',
  },
  TRUNCATED: {
    code: 'HW_NOISE_TRUNCATED',
    status: 400,
    meaning: 'The underlying connection ended in the middle of a Noise message.',
    fix: 'Usually a network interruption; the client reconnects.',
  },
  TRANSPORT_FAILED: {
    code: 'HW_NOISE_TRANSPORT_FAILED',
    status: 502,
    meaning: 'The connection under a Noise session failed (reset, write error).',
    fix: 'Usually a network interruption; the client reconnects.',
  },
  SERVER_REFUSED: {
    code: 'HW_NOISE_SERVER_REFUSED',
    status: 502,
    meaning: 'The control server answered the Noise initiation with an error message.',
    fix: 'Read the server\'s hint in the message (for example "client version too old") and act on it.',
  },
  INVALID_USE: {
    code: 'HW_NOISE_INVALID_USE',
    status: 500,
    meaning: 'Headway used a Noise state object in the wrong order (a bug).',
    fix: 'Report it with the log line; the connection was dropped.',
  },
});

/** A failed handshake step. `publicHint` is the fixed text a server may send to the peer. */
export class NoiseHandshakeError extends HeadwayError {
  override name = 'NoiseHandshakeError';
  readonly publicHint: string | null;

  constructor(spec: ErrorSpec, message: string, options?: { cause?: unknown; publicHint?: string }) {
    super(spec, message, options);
    this.publicHint = options?.publicHint ?? null;
  }
}
