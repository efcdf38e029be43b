// The offline topology format: exactly the `topology` field of a conformance case (users list,
// nodes map keyed by name), plus optional fields a user may add (node `id`, `created`,
// `online`, user `role`) and the case's `tailnet` object (DNS and settings) under the key
// `tailnet`. Converted here into the engine's TailnetFacts.
import { PolicyError } from './errors.js';
import type { NodeFacts, TailnetFacts, TailnetSettings, UserFacts, UserRole } from './facts.js';

export interface TopologyUser {
  readonly id: number;
  readonly name: string;
  readonly email?: string;
  readonly role?: UserRole;
}

export interface TopologyNode {
  readonly hostname?: string;
  readonly tags?: readonly string[] | null;
  /** Owner's user name; absent for tagged nodes. */
  readonly user?: string;
  readonly ipv4?: string | null;
  readonly ipv6?: string | null;
  readonly routable_ips?: readonly string[] | null;
  readonly approved_routes?: readonly string[] | null;
  readonly id?: number;
  /** RFC 3339 registration time; orders HA route election. */
  readonly created?: string;
  readonly online?: boolean;
}

/** The `tailnet` object of a conformance case: the tailnet's DNS and settings. */
export interface TopologyTailnet {
  readonly dns?: Readonly<Record<string, unknown>>;
  /** The service's tailnet settings, named as its API names them in snake case. */
  readonly settings?: {
    /** Sent to every node as `default-auto-update`; off unless set. */
    readonly devices_auto_updates_on?: boolean;
  } & Readonly<Record<string, unknown>>;
}

export interface Topology {
  readonly users: readonly TopologyUser[];
  readonly nodes: Readonly<Record<string, TopologyNode>>;
  readonly tailnet?: TopologyTailnet;
}

const ROLES: ReadonlySet<string> = new Set(['owner', 'admin', 'it-admin', 'network-admin', 'billing-admin', 'auditor', 'member']);

/**
 * Converts a topology into facts. Without explicit roles, the first user is the owner and the
 * others admins: that is the tailnet the conformance cases were captured in, and what a dry
 * run of a case must reproduce. The running server always passes explicit roles. Settings
 * come from the topology's `tailnet` key; `overrides` replaces them key by key.
 */
export function factsFromTopology(topology: unknown, overrides: TailnetSettings = {}): { facts: TailnetFacts; names: Map<number, string> } {
  const topo = checkTopology(topology);
  const settings: TailnetSettings = { ...settingsFromTopology(topo.tailnet), ...overrides };
  const anyRole = topo.users.some((u) => u.role !== undefined);
  const sortedUsers = [...topo.users].sort((a, b) => a.id - b.id);
  const users: UserFacts[] = sortedUsers.map((u, i) => ({
    id: u.id,
    name: u.name,
    email: u.email ?? '',
    role: anyRole ? (u.role ?? 'member') : i === 0 ? 'owner' : 'admin',
  }));
  const byName = new Map(users.map((u) => [u.name, u]));
  const nodes: NodeFacts[] = [];
  const names = new Map<number, string>();
  let nextId = 1;
  const usedIds = new Set(Object.values(topo.nodes).flatMap((n) => (n.id === undefined ? [] : [n.id])));
  for (const [name, n] of Object.entries(topo.nodes)) {
    let id = n.id;
    if (id === undefined) {
      while (usedIds.has(nextId)) nextId++;
      id = nextId++;
    }
    const tags = n.tags ?? [];
    let userId: number | null = null;
    if (n.user !== undefined && n.user !== '') {
      const user = byName.get(n.user);
      if (user === undefined) throw topologyError(`nodes[${JSON.stringify(name)}].user: no user named ${JSON.stringify(n.user)} in users`);
      userId = user.id;
    }
    const created = n.created === undefined ? NaN : Date.parse(n.created);
    if (n.created !== undefined && Number.isNaN(created)) throw topologyError(`nodes[${JSON.stringify(name)}].created: not an RFC 3339 time`);
    nodes.push({
      id,
      name,
      ipv4: n.ipv4 ?? null,
      ipv6: n.ipv6 ?? null,
      userId,
      tags,
      advertisedRoutes: n.routable_ips ?? [],
      approvedRoutes: n.approved_routes ?? [],
      online: n.online ?? true,
      registeredOrder: Number.isNaN(created) ? Number.POSITIVE_INFINITY : created,
    });
    names.set(id, name);
  }
  // Registration order: nodes with a creation time first, by time; then the rest by id.
  const ranked = [...nodes].sort((a, b) => a.registeredOrder! - b.registeredOrder! || a.id - b.id);
  const rank = new Map(ranked.map((n, i) => [n.id, i]));
  const ordered = nodes.map((n) => ({ ...n, registeredOrder: rank.get(n.id)! }));
  return { facts: { users, nodes: ordered, settings }, names };
}

/**
 * The engine's settings from a case's `tailnet` object. The service sends `default-auto-update`
 * to every node, `[false]` unless the tailnet's auto-update setting is on.
 */
export function settingsFromTopology(tailnet: TopologyTailnet | undefined): TailnetSettings {
  return { autoUpdate: tailnet?.settings?.devices_auto_updates_on ?? false };
}

function topologyError(detail: string): PolicyError {
  return new PolicyError('invalidTopology', `topology: ${detail}`, null);
}

function checkTopology(value: unknown): Topology {
  if (typeof value !== 'object' || value === null) throw topologyError('want an object with users and nodes');
  const v = value as { users?: unknown; nodes?: unknown };
  if (!Array.isArray(v.users)) throw topologyError('users: want a list of {id, name, email}');
  if (typeof v.nodes !== 'object' || v.nodes === null || Array.isArray(v.nodes)) throw topologyError('nodes: want an object keyed by node name');
  v.users.forEach((u: unknown, i: number) => {
    const user = u as { id?: unknown; name?: unknown; email?: unknown; role?: unknown };
    if (typeof u !== 'object' || u === null || typeof user.id !== 'number' || typeof user.name !== 'string') {
      throw topologyError(`users[${i}]: want {id: number, name: string, email: string}`);
    }
    if (user.email !== undefined && typeof user.email !== 'string') throw topologyError(`users[${i}].email: want a string`);
    if (user.role !== undefined && (typeof user.role !== 'string' || !ROLES.has(user.role))) {
      throw topologyError(`users[${i}].role: want one of ${[...ROLES].join(', ')}`);
    }
  });
  checkTailnet((value as { tailnet?: unknown }).tailnet);
  for (const [name, n] of Object.entries(v.nodes as Record<string, unknown>)) {
    if (typeof n !== 'object' || n === null) throw topologyError(`nodes[${JSON.stringify(name)}]: want an object`);
    const node = n as Record<string, unknown>;
    for (const key of ['ipv4', 'ipv6', 'user', 'hostname', 'created'] as const) {
      if (node[key] !== undefined && node[key] !== null && typeof node[key] !== 'string') throw topologyError(`nodes[${JSON.stringify(name)}].${key}: want a string`);
    }
    for (const key of ['tags', 'routable_ips', 'approved_routes'] as const) {
      const list = node[key];
      if (list !== undefined && list !== null && (!Array.isArray(list) || list.some((x) => typeof x !== 'string'))) {
        throw topologyError(`nodes[${JSON.stringify(name)}].${key}: want a list of strings`);
      }
    }
  }
  return value as Topology;
}

function checkTailnet(tailnet: unknown): void {
  if (tailnet === undefined) return;
  if (typeof tailnet !== 'object' || tailnet === null || Array.isArray(tailnet)) throw topologyError('tailnet: want an object with dns and settings');
  const t = tailnet as { dns?: unknown; settings?: unknown };
  if (t.dns !== undefined && (typeof t.dns !== 'object' || t.dns === null || Array.isArray(t.dns))) throw topologyError('tailnet.dns: want an object');
  if (t.settings === undefined) return;
  if (typeof t.settings !== 'object' || t.settings === null || Array.isArray(t.settings)) throw topologyError('tailnet.settings: want an object');
  const auto = (t.settings as Record<string, unknown>)['devices_auto_updates_on'];
  if (auto !== undefined && typeof auto !== 'boolean') throw topologyError('tailnet.settings.devices_auto_updates_on: want true or false');
}
