/**
 * @module control
 * Owns the TS2021 control protocol on the server: GET /key, the /ts2021 upgrade (plain HTTP and
 * WebSocket) into a Noise connection, HTTP/2 over it with the client's machine key bound to
 * every request (transport.ts), our own HTTP/2 server connection (h2/: framing, HPACK, flow
 * control, stream rules; no node:http2), the register and map handlers and `session/`
 * (coalescing, keep-alives, zstd frames).
 * May import: noise, mapper, state (commands), policy (decisions), tailcfg, key, log, util.
 * Must never: listen on a port itself (the composition root owns listeners), trust a request's
 * claimed identity over the Noise machine key, or buffer an unbounded request body.
 * This file is the part's only door.
 */
export { ControlErrors } from './errors.js';
export {
  createControlTransport,
  DEFAULT_CONTROL_LIMITS,
  type ControlTransport,
  type ControlTransportOptions,
  type ControlTransportLimits,
  type ControlTransportStats,
  type AttachOptions,
} from './transport.js';
export {
  defaultNoiseHandler,
  isKnownClientPath,
  pathOf,
  readRequestBody,
  type NoiseRequest,
  type NoiseResponse,
  type NoiseRequestContext,
  type NoiseRequestHandler,
} from './noise-request.js';
export { keyResponseBody } from './key-handler.js';
export { encodeEarlyPayload, EARLY_PAYLOAD_MAGIC } from './early-payload.js';
export { createMachineHandler } from './machine-handler.js';
export { MachineErrors } from './machine-errors.js';
export { authUrl, registrationIdOf, INVALID_AUTH_KEY_MESSAGE } from './register-handler.js';
export type { ControlBackend, TailnetServices, TagDecision } from './control-backend.js';
export { SessionHub, type SessionHubOptions } from './session/session-hub.js';
export { MapSession, type FrameSink } from './session/map-session.js';
