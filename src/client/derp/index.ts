/**
 * @module client/derp
 * Owns our DERP client: connect (HTTP upgrade or WebSocket), the handshake, sending packets,
 * pings and NotePreferred, and reporting what the server sends. Used by tests, benchmarks and
 * `headway debug`. A black box written from the protocol: it never imports `src/derp`.
 * May import: key, util (errors). Must never: import server parts (`derp/`, `server/`, `state/`).
 * This index is the only door.
 */
export { DerpClient, ClientFrameType } from './derp-client.js';
export type { DerpClientOptions, DerpServerInfo, DerpPeerGone, DerpClientCounters } from './derp-client.js';
export { DerpClientErrors } from './errors.js';
