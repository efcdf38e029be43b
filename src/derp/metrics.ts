/**
 * @module derp/metrics
 * Counters live in plain objects (the relay's hot path increments a number, nothing more) and
 * are exported to prom-client at scrape time through `collect`. Every close and every drop has
 * a named reason, as Tailscale's `dropReason` does.
 */
import type { Registry } from 'prom-client';
import { collectedCounter, collectedGauge, collectedLabelledCounter } from '../log/metrics.js';

/** Why a DERP connection ended. */
export type DerpCloseReason =
  /** The client hung up between frames after its handshake. */
  | 'eof'
  /** The client hung up before it was admitted. */
  | 'eof_in_handshake'
  /** The client hung up in the middle of a frame. */
  | 'truncated_frame'
  /** No ClientInfo (or no admission answer) within the handshake deadline. */
  | 'handshake_timeout'
  /** The first frame was not ClientInfo. */
  | 'bad_first_frame'
  /** ClientInfo too short or long, a low-order key, a box that does not open, bad JSON. */
  | 'bad_client_info'
  /** The admission callback said no. */
  | 'refused'
  /** The admission callback threw or rejected (fail closed). */
  | 'admit_error'
  /** A SendPacket longer than 32 + 64 KiB. */
  | 'frame_too_large'
  /** A known frame with an impossible length (NotePreferred != 1, Ping < 8 or > 1000, SendPacket < 32). */
  | 'bad_frame'
  /** A mesh-only frame (ForwardPacket, WatchConns, ClosePeer) from a client without the mesh key. */
  | 'mesh_frame'
  /** The client did not drain what we wrote within the write timeout. */
  | 'write_timeout'
  /** A socket error. */
  | 'socket_error'
  /** The server is closing. */
  | 'server_closed'
  /** `DerpServer.disconnect(key)` (e.g. the node was deleted). */
  | 'disconnected_by_server';

/** Why a packet was not delivered. */
export type DerpDropReason =
  /** No client with the destination key is connected. */
  | 'unknown_dest'
  /** The destination's queue was full; its oldest packet was dropped to make room. */
  | 'queue_head'
  /** The destination disconnected with the packet still queued. */
  | 'gone_disconnected';

export const CLOSE_REASONS: readonly DerpCloseReason[] = [
  'eof',
  'eof_in_handshake',
  'truncated_frame',
  'handshake_timeout',
  'bad_first_frame',
  'bad_client_info',
  'refused',
  'admit_error',
  'frame_too_large',
  'bad_frame',
  'mesh_frame',
  'write_timeout',
  'socket_error',
  'server_closed',
  'disconnected_by_server',
];

export const DROP_REASONS: readonly DerpDropReason[] = ['unknown_dest', 'queue_head', 'gone_disconnected'];

/** The relay's counters, readable directly by tests and benchmarks. */
export interface DerpStats {
  /** Transports handed to the relay (before the handshake). */
  connectionsAccepted: number;
  /** Connections that passed the handshake and admission. */
  clientsAdmitted: number;
  /** Admitted connections open now. */
  currentClients: number;
  /** Distinct keys connected now. */
  currentKeys: number;
  /** Connections whose client said this is its home DERP. */
  homeClients: number;
  readonly closed: Record<DerpCloseReason, number>;
  /** SendPacket frames read. */
  packetsReceived: number;
  bytesReceived: number;
  /** RecvPacket frames written. */
  packetsSent: number;
  bytesSent: number;
  readonly dropped: Record<DerpDropReason, number>;
  peerGoneDisconnectedSent: number;
  peerGoneNotHereSent: number;
  pingsReceived: number;
  pongsSent: number;
  keepAlivesSent: number;
  /** Times a client's reads were paused by its rate limit. */
  rateLimitWaits: number;
  /** Frames of unknown or server-only types skipped unread. */
  framesSkipped: number;
}

export function newDerpStats(): DerpStats {
  return {
    connectionsAccepted: 0,
    clientsAdmitted: 0,
    currentClients: 0,
    currentKeys: 0,
    homeClients: 0,
    closed: Object.fromEntries(CLOSE_REASONS.map((r) => [r, 0])) as Record<DerpCloseReason, number>,
    packetsReceived: 0,
    bytesReceived: 0,
    packetsSent: 0,
    bytesSent: 0,
    dropped: Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DerpDropReason, number>,
    peerGoneDisconnectedSent: 0,
    peerGoneNotHereSent: 0,
    pingsReceived: 0,
    pongsSent: 0,
    keepAlivesSent: 0,
    rateLimitWaits: 0,
    framesSkipped: 0,
  };
}

export function registerDerpMetrics(registry: Registry, stats: DerpStats): void {
  collectedCounter(registry, 'headway_derp_connections_total', 'DERP connections accepted (before the handshake).', () => stats.connectionsAccepted);
  collectedCounter(registry, 'headway_derp_clients_admitted_total', 'DERP connections that passed the handshake and admission.', () => stats.clientsAdmitted);
  collectedGauge(registry, 'headway_derp_clients', 'Admitted DERP connections open now.', () => stats.currentClients);
  collectedGauge(registry, 'headway_derp_client_keys', 'Distinct node keys connected to DERP now.', () => stats.currentKeys);
  collectedGauge(registry, 'headway_derp_home_clients', 'DERP connections whose client said this is its home region.', () => stats.homeClients);
  collectedLabelledCounter(registry, 'headway_derp_connections_closed_total', 'DERP connections closed, by reason.', 'reason', () => stats.closed);
  collectedCounter(registry, 'headway_derp_packets_received_total', 'SendPacket frames read from clients.', () => stats.packetsReceived);
  collectedCounter(registry, 'headway_derp_received_bytes_total', 'Packet bytes read from clients (excluding framing).', () => stats.bytesReceived);
  collectedCounter(registry, 'headway_derp_packets_sent_total', 'RecvPacket frames written to clients.', () => stats.packetsSent);
  collectedCounter(registry, 'headway_derp_sent_bytes_total', 'Packet bytes written to clients (excluding framing).', () => stats.bytesSent);
  collectedLabelledCounter(registry, 'headway_derp_packets_dropped_total', 'Relayed packets not delivered, by reason.', 'reason', () => stats.dropped);
  collectedLabelledCounter(registry, 'headway_derp_peer_gone_frames_total', 'PeerGone frames sent, by reason.', 'reason', () => ({
    disconnected: stats.peerGoneDisconnectedSent,
    not_here: stats.peerGoneNotHereSent,
  }));
  collectedCounter(registry, 'headway_derp_pings_total', 'Ping frames received from clients.', () => stats.pingsReceived);
  collectedCounter(registry, 'headway_derp_pongs_total', 'Pong frames sent to clients.', () => stats.pongsSent);
  collectedCounter(registry, 'headway_derp_keepalives_total', 'KeepAlive frames sent to clients.', () => stats.keepAlivesSent);
  collectedCounter(registry, 'headway_derp_rate_limit_waits_total', 'Times a client was paused by its rate limit.', () => stats.rateLimitWaits);
  collectedCounter(registry, 'headway_derp_unknown_frames_total', 'Frames of unknown or server-only types skipped unread.', () => stats.framesSkipped);
}
