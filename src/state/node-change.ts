// What a durable or live node update changes: the patch a command writes (normalised tags and
// routes, merged hostinfo, refused names and owners), and the facets an event names. Pure
// functions of the node before and the update; TailnetState owns the maps they consult.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { Node, NodeId, PreAuthKeyId, RegisterMethod, UserId } from '../model/index.js';
import type { NodePatch } from '../store/types.js';
import type * as tailcfg from '../tailcfg/index.js';
import { formatPrefix, parsePrefix, tryParsePrefix } from '../util/ip.js';
import { StateErrors, stateError } from './errors.js';
import type { NodeFacet } from './events.js';

/** Durable node changes an admin or a registration makes. */
export interface NodeUpdate {
  nodeKey?: NodePublicKey;
  machineKey?: MachinePublicKey;
  discoKey?: DiscoPublicKey | null;
  hostinfo?: tailcfg.Hostinfo;
  givenName?: string;
  userId?: UserId | null;
  tags?: readonly string[];
  approvedRoutes?: readonly string[];
  keyExpiry?: Date | null;
  ephemeral?: boolean;
  registerMethod?: RegisterMethod;
  preAuthKeyId?: PreAuthKeyId | null;
  lastSeen?: Date | null;
  approved?: boolean;
}

/** What a map request may change, applied at once and persisted lazily. */
export interface LiveUpdate {
  endpoints?: readonly string[];
  discoKey?: DiscoPublicKey | null;
  hostinfo?: tailcfg.Hostinfo;
}

export type MutablePatch = { -readonly [K in keyof NodePatch]: NodePatch[K] };

/** What the patch computation asks of the tailnet it runs in. */
export interface NodePatchLookups {
  /** The node holding a MagicDNS name, if any. */
  holderOfName(givenName: string): NodeId | undefined;
  /** Throws the tailnet's not-found error for an unknown user. */
  requireUser(id: UserId): void;
}

const TAG_RE = /^tag:[A-Za-z][A-Za-z0-9-]*$/;

/** The fields `update` changes on `before`, validated; empty when it changes nothing. */
export function nodePatchFor(before: Node, update: NodeUpdate, lookups: NodePatchLookups): NodePatch {
  const patch: MutablePatch = {};
  if (update.nodeKey !== undefined && update.nodeKey !== before.nodeKey) patch.nodeKey = update.nodeKey;
  if (update.machineKey !== undefined && update.machineKey !== before.machineKey) patch.machineKey = update.machineKey;
  if (update.discoKey !== undefined && update.discoKey !== before.discoKey) patch.discoKey = update.discoKey;
  if (update.hostinfo !== undefined) {
    const hostinfo = mergeHostinfo(before.hostinfo, update.hostinfo);
    patch.hostinfo = hostinfo;
    if ((hostinfo.Hostname ?? '') !== before.hostname) patch.hostname = hostinfo.Hostname ?? '';
    const advertised = routesFromHostinfo(hostinfo);
    if (!sameList(advertised, before.advertisedRoutes)) patch.advertisedRoutes = advertised;
  }
  if (update.givenName !== undefined && update.givenName !== before.givenName) {
    const holder = lookups.holderOfName(update.givenName);
    if (holder !== undefined && holder !== before.id) {
      throw stateError(StateErrors.NODE_NAME_TAKEN, `renaming node ${before.id}: "${update.givenName}" is already the name of node ${holder}`);
    }
    patch.givenName = update.givenName;
  }
  if (update.userId !== undefined && update.userId !== before.userId) {
    if (update.userId !== null) lookups.requireUser(update.userId);
    patch.userId = update.userId;
  }
  if (update.tags !== undefined) {
    const tags = normaliseTags(update.tags);
    if (!sameList(tags, before.tags)) patch.tags = tags;
  }
  const userAfter = patch.userId !== undefined ? patch.userId : before.userId;
  const tagsAfter = patch.tags ?? before.tags;
  if (userAfter === null && tagsAfter.length === 0) {
    throw stateError(StateErrors.NODE_OWNER_INVALID, `node ${before.id} would have neither a user nor tags`);
  }
  if (update.approvedRoutes !== undefined) {
    const routes = normaliseRoutes(update.approvedRoutes);
    if (!sameList(routes, before.approvedRoutes)) patch.approvedRoutes = routes;
  }
  if (update.keyExpiry !== undefined && !sameDate(update.keyExpiry, before.keyExpiry)) patch.keyExpiry = update.keyExpiry;
  if (update.ephemeral !== undefined && update.ephemeral !== before.ephemeral) patch.ephemeral = update.ephemeral;
  if (update.registerMethod !== undefined && update.registerMethod !== before.registerMethod) patch.registerMethod = update.registerMethod;
  if (update.preAuthKeyId !== undefined && update.preAuthKeyId !== before.preAuthKeyId) patch.preAuthKeyId = update.preAuthKeyId;
  if (update.lastSeen !== undefined && !sameDate(update.lastSeen, before.lastSeen)) patch.lastSeen = update.lastSeen;
  if (update.approved !== undefined && update.approved !== before.approved) patch.approved = update.approved;
  return patch;
}

/** Which facets differ between two versions of a node. */
export function facetsBetween(before: Node, after: Node): Set<NodeFacet> {
  const facets = new Set<NodeFacet>();
  if (!sameList(before.endpoints, after.endpoints)) facets.add('endpoints');
  if (before.discoKey !== after.discoKey) facets.add('discoKey');
  if ((before.hostinfo.NetInfo?.PreferredDERP ?? 0) !== (after.hostinfo.NetInfo?.PreferredDERP ?? 0)) facets.add('derp');
  if (!hostinfoEqualIgnoringNetInfo(before.hostinfo, after.hostinfo)) facets.add('hostinfo');
  if (before.nodeKey !== after.nodeKey) facets.add('nodeKey');
  if (!sameDate(before.keyExpiry, after.keyExpiry)) facets.add('keyExpiry');
  if (before.givenName !== after.givenName) facets.add('name');
  if (!sameList(before.tags, after.tags)) facets.add('tags');
  if (before.userId !== after.userId) facets.add('user');
  if (!sameList(before.advertisedRoutes, after.advertisedRoutes)) facets.add('advertisedRoutes');
  if (!sameList(before.approvedRoutes, after.approvedRoutes)) facets.add('approvedRoutes');
  if (!sameDate(before.lastSeen, after.lastSeen)) facets.add('lastSeen');
  if (before.approved !== after.approved) facets.add('approval');
  return facets;
}

/** A Hostinfo without NetInfo keeps the previous NetInfo (clients omit it in some requests). */
export function mergeHostinfo(previous: Readonly<tailcfg.Hostinfo>, next: tailcfg.Hostinfo): tailcfg.Hostinfo {
  if (next.NetInfo == null && previous.NetInfo != null) return { ...next, NetInfo: previous.NetInfo };
  return next;
}

export function hostinfoEqualIgnoringNetInfo(a: Readonly<tailcfg.Hostinfo>, b: Readonly<tailcfg.Hostinfo>): boolean {
  const { NetInfo: _a, ...restA } = a;
  const { NetInfo: _b, ...restB } = b;
  return sameJson(restA, restB);
}

export function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function sameDate(a: Date | null, b: Date | null): boolean {
  return (a?.getTime() ?? null) === (b?.getTime() ?? null);
}

export function normaliseTags(tags: readonly string[]): string[] {
  for (const tag of tags) {
    if (!TAG_RE.test(tag)) throw stateError(StateErrors.TAG_INVALID, `"${tag}" is not a tag (want tag:<letter>[letters, digits, -])`);
  }
  return [...new Set(tags)].sort();
}

export function normaliseRoutes(routes: readonly string[]): string[] {
  const out = new Set<string>();
  for (const route of routes) {
    try {
      out.add(formatPrefix(parsePrefix(route, { strict: true })));
    } catch (err) {
      throw stateError(StateErrors.ROUTE_INVALID, `route ${JSON.stringify(route)}: ${(err as Error).message}`, err);
    }
  }
  return [...out].sort();
}

/** Advertised routes from Hostinfo.RoutableIPs; malformed entries are ignored (clients send valid ones). */
export function routesFromHostinfo(hostinfo: Readonly<tailcfg.Hostinfo>): string[] {
  const out = new Set<string>();
  for (const text of hostinfo.RoutableIPs ?? []) {
    const prefix = typeof text === 'string' ? tryParsePrefix(text) : null;
    if (prefix !== null) out.add(formatPrefix(prefix));
  }
  return [...out].sort();
}

export function auditPatch(patch: NodePatch): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === 'hostinfo') continue;
    details[key] = value instanceof Date ? value.toISOString() : value;
  }
  return details;
}
