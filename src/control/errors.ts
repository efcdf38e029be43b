// Error codes of the control transport (TS2021 upgrade, HTTP/2 over Noise, /key). Register and
// map handlers add theirs here too.
import { registerErrors } from '../util/headway-error.js';

export const ControlErrors = registerErrors({
  BAD_UPGRADE: {
    code: 'HW_CONTROL_BAD_UPGRADE',
    status: 400,
    meaning: 'A /ts2021 request was not a valid TS2021 or WebSocket upgrade (missing Upgrade or X-Tailscale-Handshake, bad base64, wrong subprotocol).',
    fix: 'If a reverse proxy sits in front of Headway, make it pass Upgrade and Connection headers (WebSocket support) to /ts2021.',
  },
  UNSUPPORTED_VERSION: {
    code: 'HW_CONTROL_UNSUPPORTED_VERSION',
    status: 400,
    meaning: 'A client offered a protocol (capability) version older than Headway supports.',
    fix: 'Upgrade the Tailscale client to 1.34 or newer.',
  },
  HANDSHAKE_FAILED: {
    code: 'HW_CONTROL_HANDSHAKE_FAILED',
    status: 400,
    meaning: 'The Noise handshake of a /ts2021 upgrade failed (bad initiation, wrong server key, tampering).',
    fix: 'If it persists for one client, restart it so it fetches /key again; the server key must not change between runs.',
  },
  HANDSHAKE_TIMEOUT: {
    code: 'HW_CONTROL_HANDSHAKE_TIMEOUT',
    status: 408,
    meaning: 'A connection did not finish its HTTP request, upgrade or HTTP/2 preface within the handshake deadline.',
    fix: 'None for real clients; raise limits.handshakeTimeoutMs for very slow links.',
  },
  TOO_MANY_CONNECTIONS: {
    code: 'HW_CONTROL_TOO_MANY_CONNECTIONS',
    status: 503,
    meaning: 'The server already holds limits.maxConnections Noise connections and refused a new one.',
    fix: 'Raise limits.maxConnections, or add capacity; clients retry with backoff.',
  },
  SHUTTING_DOWN: {
    code: 'HW_CONTROL_SHUTTING_DOWN',
    status: 503,
    meaning: 'The control transport is closing and refused a new connection.',
    fix: 'None: clients reconnect to the restarted server.',
  },
  BODY_TOO_LARGE: {
    code: 'HW_CONTROL_BODY_TOO_LARGE',
    status: 413,
    meaning: 'A request body over the Noise connection exceeded limits.maxRequestBodyBytes (1 MiB by default).',
    fix: 'Real clients stay far below the limit; a larger body is refused on purpose.',
  },
  HTTP2_PROTOCOL: {
    code: 'HW_CONTROL_HTTP2_PROTOCOL',
    status: 400,
    meaning: 'A client broke an HTTP/2 rule on its Noise connection (bad preface or frame, HPACK error, flow-control window past 2^31-1, a header block flood); the server sent GOAWAY with the RFC 9113 error code and closed the connection.',
    fix: 'None for real clients (they reconnect); a client that does this is broken. The debug log line names the rule.',
  },
  BAD_KEY_REQUEST: {
    code: 'HW_CONTROL_BAD_KEY_REQUEST',
    status: 400,
    meaning: 'GET /key had a `v` parameter that is not a capability version.',
    fix: 'Send /key?v=<integer capability version>, or no `v` at all.',
  },
  NOT_FOUND: {
    code: 'HW_CONTROL_NOT_FOUND',
    status: 404,
    meaning: 'A request over the Noise connection asked for a path Headway does not know.',
    fix: 'None for real clients; check the path if you wrote the client.',
  },
  NOT_IMPLEMENTED: {
    code: 'HW_CONTROL_NOT_IMPLEMENTED',
    status: 501,
    meaning: 'A client called a Tailscale control endpoint Headway does not implement (yet).',
    fix: 'None needed: Tailscale clients log the error and carry on.',
  },
  HANDLER_FAILED: {
    code: 'HW_CONTROL_HANDLER_FAILED',
    status: 500,
    meaning: 'A request handler over the Noise connection threw an unexpected error.',
    fix: 'Look for the log line with this code and the request path; report it.',
  },
});
