/**
 * @module derp
 * Owns the embedded DERP relay (framing, handshake, forwarding, keep-alives, PeerGone, rate and
 * size limits, per-client bounded queues), its HTTP face (`/derp` upgrade incl. WebSocket,
 * `/derp/probe`, `/derp/latency-check`, `/generate_204`, `/bootstrap-dns`), the STUN server,
 * and the DERP map (embedded region + files + URLs, merged, validated, refreshed).
 * May import: key, tailcfg, util, log (config arrives as plain option objects mapped by the
 * composition root). Must never: import state, store or control; admission goes through the
 * `admit` callback, so the relay never knows what a tailnet is. Never logs packet contents.
 * This index is the only door.
 */
export { DerpServer } from './relay.js';
export type { DerpServerOptions, DerpAdmitFn, DerpRateLimit, DerpAcceptOptions, DerpMeshForwarder } from './relay.js';
export type { DerpClientInfo } from './relay-connection.js';
export { attachDerp, createDerpHttpHandler, serveNoContent, DERP_PATH, PROBE_PATHS, GENERATE_204_PATH, BOOTSTRAP_DNS_PATH } from './http.js';
export type { AttachDerpOptions, DerpHttpHandler } from './http.js';
export {
  startStunServer,
  stunBindingRequest,
  stunBindingResponse,
  parseBindingRequest,
  parseBindingResponse,
  parseListenAddr,
  DEFAULT_STUN_PORT,
} from './stun.js';
export type { StunServer, StunServerOptions, StunStats, StunDropReason, StunParseResult } from './stun.js';
export { DerpMapSource, embeddedDerpRegion, mergeDerpMaps, parseDerpMapText, derpMapLayerFromValue, derpMapHostNames, redactUrl } from './derp-map.js';
export type { DerpMapSourceOptions, DerpMapSourceEvents, DerpMapLayer, NamedLayer, EmbeddedRegionOptions } from './derp-map.js';
export { selfSignedCertificate } from './self-signed.js';
export type { SelfSignedCertificate } from './self-signed.js';
export { FrameType, PeerGoneReason, MAX_PACKET_BYTES, PROTOCOL_VERSION } from './frame.js';
export type { DerpStats, DerpCloseReason, DerpDropReason } from './metrics.js';
export { DerpErrors } from './errors.js';
