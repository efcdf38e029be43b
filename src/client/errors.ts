// Error codes of our protocol client (tests, benchmarks, `headway debug`).
import { registerErrors } from '../util/headway-error.js';

export const ClientErrors = registerErrors({
  BAD_SERVER_URL: {
    code: 'HW_CLIENT_BAD_SERVER_URL',
    status: 400,
    meaning: 'The control server URL is not an http:// or https:// URL.',
    fix: 'Pass the server URL as http://host:port or https://host.',
  },
  KEY_FETCH_FAILED: {
    code: 'HW_CLIENT_KEY_FETCH_FAILED',
    status: 502,
    meaning: 'GET /key did not return the server\'s Noise key.',
    fix: 'Check that the URL points at a Headway (or Tailscale-compatible) control server.',
  },
  UPGRADE_FAILED: {
    code: 'HW_CLIENT_UPGRADE_FAILED',
    status: 502,
    meaning: 'The /ts2021 upgrade was refused or answered with something other than the TS2021 101 response.',
    fix: 'Read the status and text in the message; a proxy in between may be dropping the Upgrade header.',
  },
  DIAL_TIMEOUT: {
    code: 'HW_CLIENT_DIAL_TIMEOUT',
    status: 504,
    meaning: 'Connecting, upgrading and the Noise handshake did not finish within the dial timeout.',
    fix: 'Check that the server is reachable and not overloaded.',
  },
  BAD_EARLY_PAYLOAD: {
    code: 'HW_CLIENT_BAD_EARLY_PAYLOAD',
    status: 502,
    meaning: 'The server\'s early payload (before HTTP/2) was malformed.',
    fix: 'The server violates protocol.md §5; report it.',
  },
  REQUEST_FAILED: {
    code: 'HW_CLIENT_REQUEST_FAILED',
    status: 502,
    meaning: 'An HTTP/2 request over the Noise connection failed or was refused.',
    fix: 'Read the status and text in the message.',
  },
  BAD_MAP_FRAME: {
    code: 'HW_CLIENT_BAD_MAP_FRAME',
    status: 502,
    meaning: 'A map stream message could not be decoded (length prefix, zstd, or JSON).',
    fix: 'The server violates protocol.md §9.2; report it with the message index.',
  },
});
