// What one node is shown: a peer as one viewer sees it and the node as it sees itself, and
// the self capabilities every node carries. The index fills these in (queries); nothing here
// depends on how classes are bound.
import type * as tailcfg from '../../tailcfg/index.js';

/** A peer as one viewer sees it; the rest of tailcfg.Node is the mapper's. */
export interface PeerView {
  readonly AllowedIPs: string[];
  readonly PrimaryRoutes: string[];
  readonly Tags: string[];
  /** null when the peer carries no peer-visible capabilities. */
  readonly CapMap: tailcfg.NodeCapMap | null;
}

export interface SelfView {
  readonly Addresses: string[];
  readonly AllowedIPs: string[];
  readonly PrimaryRoutes: string[];
  readonly Tags: string[];
  readonly CapMap: tailcfg.NodeCapMap;
}

export const BASE_SELF_CAPS: readonly string[] = [
  'https://tailscale.com/cap/file-sharing',
  'https://tailscale.com/cap/ssh',
  'https://tailscale.com/cap/tailnet-lock',
  'probe-udp-lifetime',
  'ssh-behavior-v1',
  'ssh-env-vars',
  'store-appc-routes',
];

export const CAP_IS_ADMIN = 'https://tailscale.com/cap/is-admin';

export const CAP_IS_OWNER = 'https://tailscale.com/cap/is-owner';

export const FUNNEL_EXTRA_CAPS: readonly string[] = ['https://tailscale.com/cap/funnel-ports?ports=443,8443,10000', 'https://tailscale.com/cap/warn-funnel-no-https'];

export const ATTR_DISABLE_IPV4 = 'disable-ipv4';

export const PEER_CAP_SUGGEST_EXIT = 'suggest-exit-node';
