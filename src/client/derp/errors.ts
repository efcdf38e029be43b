// Error codes of our DERP client (tests, benchmarks, `headway debug`).
import { HeadwayError, registerErrors } from '../../util/headway-error.js';

export const DerpClientErrors = registerErrors({
  connect: {
    code: 'HW_CLIENT_DERP_CONNECT',
    status: 502,
    meaning: 'The DERP client could not open the connection or the server did not answer the upgrade with 101.',
    fix: 'Check the URL (scheme, host, port, path /derp) and that the server has DERP enabled.',
  },
  handshake: {
    code: 'HW_CLIENT_DERP_HANDSHAKE',
    status: 502,
    meaning: 'The DERP server sent a malformed ServerKey or ServerInfo frame.',
    fix: 'The server does not speak DERP v2 correctly; compare it with derp.md §3.4.',
  },
  closed: {
    code: 'HW_CLIENT_DERP_CLOSED',
    status: 503,
    meaning: 'The DERP connection closed (before ServerInfo this usually means the server refused the node key).',
    fix: 'Check that the node key belongs to a node of the tailnet when derp.server.verify_clients is on.',
  },
  timeout: {
    code: 'HW_CLIENT_DERP_TIMEOUT',
    status: 504,
    meaning: 'The DERP handshake or a ping did not complete in time.',
    fix: 'Check that the server is reachable and not overloaded.',
  },
  packetTooLarge: {
    code: 'HW_CLIENT_DERP_PACKET_TOO_LARGE',
    status: 400,
    meaning: 'A packet given to sendPacket is larger than DERP allows (64 KiB).',
    fix: 'Send packets of at most 65536 bytes.',
  },
});

export function derpClientError(key: keyof typeof DerpClientErrors, message: string, options?: { cause?: unknown }): HeadwayError {
  return new HeadwayError(DerpClientErrors[key], message, options);
}
