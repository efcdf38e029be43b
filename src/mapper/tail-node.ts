// Our Node -> tailcfg.Node, in the form each client generation expects. A peer's JSON depends
// on the node, its presence, how the viewer sees it (routes, caps) and the wire variant; the
// mapper caches it per (peer, variant, view key) so it is serialised once per change.
import type { Node } from '../model/index.js';
import { isTagged } from '../model/index.js';
import type { Presence } from '../state/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { CapVer } from '../tailcfg/index.js';
import type { PeerView, SelfView } from './policy-view.js';

/** The pseudo-user that owns tagged nodes as their peers see them (headscale's id, SaaS's role). */
export const TAGGED_DEVICES_USER_ID = 2147455555;
export const TAGGED_DEVICES_PROFILE: tailcfg.UserProfile = {
  ID: TAGGED_DEVICES_USER_ID,
  LoginName: 'tagged-devices',
  DisplayName: 'Tagged Devices',
};

/**
 * Client generations that need different JSON for the same node:
 * 0: below CapVer.NodeCapMap (no CapMap, legacy DERP, filters list addresses);
 * 1: CapMap, legacy DERP, filters list addresses (below CapVer.SrcCaps);
 * 2: CapMap with the peer's source caps, filters name sources as `cap:` (CapVer.SrcCaps),
 *    legacy DERP (below CapVer.HomeDERP);
 * 3: as 2, with HomeDERP.
 */
export type WireVariant = 0 | 1 | 2 | 3;
export const WIRE_VARIANTS: readonly WireVariant[] = [0, 1, 2, 3];

export function wireVariantOf(capVersion: number): WireVariant {
  if (capVersion >= CapVer.HomeDERP) return 3;
  if (capVersion >= CapVer.SrcCaps) return 2;
  if (capVersion >= CapVer.NodeCapMap) return 1;
  return 0;
}

/** Whether the variant's filters name node sources as `cap:` entries. */
export function usesSourceCaps(variant: WireVariant): boolean {
  return variant >= 2;
}

/** The legacy DERP field: a magic IP naming the region. */
export function legacyDerp(region: number): string {
  return `127.3.3.40:${region}`;
}

export interface TailNodeContext {
  /** MagicDNS suffix without dots at either end, e.g. `headway.internal`. */
  readonly baseDomain: string;
  readonly nowMs: number;
}

/** Hostinfo fields peers use (display, peerapi services, SSH host keys); the rest stays private. */
const PEER_HOSTINFO_FIELDS = ['IPNVersion', 'OS', 'OSVersion', 'Hostname', 'Services', 'sshHostKeys', 'ShareeNode', 'Location', 'AppConnector', 'Userspace', 'UserspaceRouter'] as const;

export function peerHostinfo(hostinfo: Readonly<tailcfg.Hostinfo>): tailcfg.Hostinfo {
  const out: Record<string, unknown> = {};
  for (const field of PEER_HOSTINFO_FIELDS) {
    const value: unknown = hostinfo[field];
    if (value !== undefined && value !== null && value !== '') out[field] = value;
  }
  return out as tailcfg.Hostinfo;
}

export function fqdn(node: Pick<Node, 'givenName'>, baseDomain: string): string {
  return baseDomain === '' ? `${node.givenName}.` : `${node.givenName}.${baseDomain}.`;
}

export function isExpired(node: Pick<Node, 'keyExpiry'>, nowMs: number): boolean {
  return node.keyExpiry !== null && node.keyExpiry.getTime() <= nowMs;
}

export function homeDerp(node: Node): number {
  return node.hostinfo.NetInfo?.PreferredDERP ?? 0;
}

export function addressesOf(node: Pick<Node, 'ipv4' | 'ipv6'>): string[] {
  const out: string[] = [];
  if (node.ipv4 !== null) out.push(`${node.ipv4}/32`);
  if (node.ipv6 !== null) out.push(`${node.ipv6}/128`);
  return out;
}

export function wireUserId(node: Node): number {
  return isTagged(node) || node.userId === null ? TAGGED_DEVICES_USER_ID : node.userId;
}

function baseNode(node: Node, presence: Presence, variant: WireVariant, ctx: TailNodeContext, allowedIPs: readonly string[], primaryRoutes: readonly string[]): tailcfg.Node {
  const expired = isExpired(node, ctx.nowMs);
  const out: tailcfg.Node = {
    ID: node.id,
    StableID: node.stableId,
    Name: fqdn(node, ctx.baseDomain),
    User: wireUserId(node),
    Key: node.nodeKey,
    Addresses: addressesOf(node),
    AllowedIPs: [...allowedIPs],
    Hostinfo: {},
  };
  if (node.keyExpiry !== null) out.KeyExpiry = node.keyExpiry.toISOString();
  if (node.discoKey !== null) out.DiscoKey = node.discoKey;
  const region = homeDerp(node);
  if (!expired) {
    if (node.endpoints.length > 0) out.Endpoints = [...node.endpoints];
    if (region !== 0) {
      if (variant === 3) out.HomeDERP = region;
      else out.DERP = legacyDerp(region);
    }
  }
  out.Created = node.createdAt.toISOString();
  if (presence.capVersion > 0) out.Cap = presence.capVersion;
  if (node.tags.length > 0) out.Tags = [...node.tags];
  if (primaryRoutes.length > 0) out.PrimaryRoutes = [...primaryRoutes];
  out.Online = presence.online;
  if (!presence.online && node.lastSeen !== null) out.LastSeen = node.lastSeen.toISOString();
  if (expired) out.Expired = true;
  return out;
}

/** A peer as `view` says the viewer sees it. */
export function peerNode(node: Node, presence: Presence, view: PeerView, variant: WireVariant, ctx: TailNodeContext, sourceCaps: readonly string[] = []): tailcfg.Node {
  const out = baseNode(node, presence, variant, ctx, view.AllowedIPs, view.PrimaryRoutes);
  out.Hostinfo = peerHostinfo(node.hostinfo);
  if (variant >= 1) {
    const caps: tailcfg.NodeCapMap = view.CapMap !== null ? { ...view.CapMap } : {};
    // The receiver matches `cap:` filter sources against the CapMap it holds for the peer.
    if (usesSourceCaps(variant)) for (const cap of sourceCaps) caps[cap] = null;
    if (Object.keys(caps).length > 0) out.CapMap = caps;
  }
  return out;
}

/**
 * The node itself, with its machine key, full hostinfo and self capabilities; authorised unless
 * it waits for device approval (clients then show that an admin must approve them).
 */
export function selfNode(node: Node, presence: Presence, view: SelfView, variant: WireVariant, ctx: TailNodeContext): tailcfg.Node {
  const out = baseNode(node, presence, variant, ctx, view.AllowedIPs, view.PrimaryRoutes);
  // The policy may narrow the node's own addresses (the disable-ipv4 attribute).
  out.Addresses = [...view.Addresses];
  out.Machine = node.machineKey;
  out.MachineAuthorized = node.approved;
  out.Hostinfo = { ...node.hostinfo };
  if (variant >= 1) out.CapMap = { ...view.CapMap };
  return out;
}

/** Which PeerChange fields a live change maps to; null when it needs a full PeersChanged. */
export function peerChange(node: Node, presence: Presence, fields: PatchFields, variant: WireVariant, nowMs: number): tailcfg.PeerChange {
  const change: tailcfg.PeerChange = { NodeID: node.id };
  const expired = isExpired(node, nowMs);
  if (fields & PatchField.Endpoints) change.Endpoints = expired ? [] : [...node.endpoints];
  if (fields & PatchField.Derp) change.DERPRegion = expired ? 0 : homeDerp(node);
  if (fields & PatchField.Online) change.Online = presence.online;
  if (fields & PatchField.LastSeen && node.lastSeen !== null) change.LastSeen = node.lastSeen.toISOString();
  if (fields & PatchField.KeyExpiry && node.keyExpiry !== null) change.KeyExpiry = node.keyExpiry.toISOString();
  if (fields & PatchField.Cap && presence.capVersion > 0) change.Cap = presence.capVersion;
  void variant;
  return change;
}

/** Bit set of the PeerChange fields a pending patch carries. */
export type PatchFields = number;
export const PatchField = {
  Endpoints: 1,
  Derp: 2,
  Online: 4,
  LastSeen: 8,
  KeyExpiry: 16,
  Cap: 32,
} as const;
