// The tailnet facts the policy index is built from: plain data, no store or wire types, so the
// state part, the offline commands and the benchmarks all feed the same engine.

import type { UserRole } from '../model/index.js';

/** Tailscale's user roles (src/model); they decide role autogroups and the is-admin/is-owner caps. */
export type { UserRole };

export interface UserFacts {
  readonly id: number;
  /** Login name; policies write `name@` for users without an email. */
  readonly name: string;
  /** What policies write as `alice@example.com`; may be empty. */
  readonly email: string;
  /** Default `member`. */
  readonly role?: UserRole;
  /**
   * Groups synced from the identity provider or SCIM, as `name@domain`; policies select them
   * as `group:name@domain`.
   */
  readonly groups?: readonly string[];
}

export interface NodeFacts {
  readonly id: number;
  /** MagicDNS label; unique per tailnet. */
  readonly name: string;
  readonly ipv4: string | null;
  readonly ipv6: string | null;
  /** Owner; ignored by selectors when the node is tagged. */
  readonly userId: number | null;
  readonly tags: readonly string[];
  /** Hostinfo.RoutableIPs. */
  readonly advertisedRoutes: readonly string[];
  /** Routes an admin or autoApprovers approved; only advertised and approved routes are served. */
  readonly approvedRoutes: readonly string[];
  readonly online: boolean;
  /**
   * Registration order for HA route election: the router registered first is primary. Defaults
   * to `id` (ids are assigned in registration order).
   */
  readonly registeredOrder?: number;
  /** Device posture attributes (`node:os` ...) for srcPosture; absent ones never match. */
  readonly postureAttributes?: Readonly<Record<string, string | number | boolean>>;
}

export interface TailnetSettings {
  /** The `tailnet-display-name` cap value; default: the owner's email. */
  readonly displayName?: string;
  /** Domains associated with the tailnet (for `user:*@domain` and `localpart:*@domain`); default: the owner's email domain. */
  readonly domains?: readonly string[];
  /**
   * Tailnet auto-update setting, sent to every node as `default-auto-update`. Absent = not
   * sent, as the service did before 2026-04-14; a server and a topology always set it.
   */
  readonly autoUpdate?: boolean;
  /** Base of the ssh `check` hold-and-delegate URL; the service sends `https://unused`. */
  readonly sshCheckBaseUrl?: string;
}

export interface TailnetFacts {
  readonly users: readonly UserFacts[];
  readonly nodes: readonly NodeFacts[];
  readonly settings?: TailnetSettings;
}

/** What the policy needs of a user of the domain model (src/model). */
export interface ModelUser {
  readonly id: number;
  readonly name: string;
  readonly email: string;
  readonly role?: UserRole;
  /** Synced groups from sign-in and from SCIM (src/model User). */
  readonly oidcGroups?: readonly string[];
  readonly scimGroups?: readonly string[];
}

/** What the policy needs of a node of the domain model (src/model). */
export interface ModelNode {
  readonly id: number;
  readonly givenName: string;
  readonly ipv4: string | null;
  readonly ipv6: string | null;
  readonly userId: number | null;
  readonly tags: readonly string[];
  readonly advertisedRoutes: readonly string[];
  readonly approvedRoutes: readonly string[];
}

/** A node of the domain model as policy facts; a tagged node belongs to its tags, not its user. */
export function nodeFactsFromModel(node: ModelNode, online: boolean): NodeFacts {
  return {
    id: node.id,
    name: node.givenName,
    ipv4: node.ipv4,
    ipv6: node.ipv6,
    userId: node.tags.length > 0 ? null : node.userId,
    tags: node.tags,
    advertisedRoutes: node.advertisedRoutes,
    approvedRoutes: node.approvedRoutes,
    online,
    // Node ids are handed out in registration order: the first router of a prefix is primary.
    registeredOrder: node.id,
  };
}

export function userFactsFromModel(user: ModelUser): UserFacts {
  const groups = [...new Set([...(user.oidcGroups ?? []), ...(user.scimGroups ?? [])])].sort();
  return { id: user.id, name: user.name, email: user.email, role: user.role ?? 'member', ...(groups.length > 0 ? { groups } : {}) };
}

/** What the policy needs of a tailnet's settings in the domain model (src/model). */
export interface ModelTailnetSettings {
  readonly autoUpdate: boolean;
}

/** A tailnet's stored settings as the engine's: the service sends auto-update to every node. */
export function settingsFromModel(settings: ModelTailnetSettings | undefined): TailnetSettings {
  return { sshCheckBaseUrl: 'https://unused', autoUpdate: settings?.autoUpdate ?? false };
}

/** A tailnet of the domain model as policy facts. */
export function tailnetFactsFromModel(users: Iterable<ModelUser>, nodes: Iterable<ModelNode>, online: (id: number) => boolean, settings?: ModelTailnetSettings): TailnetFacts {
  return {
    users: [...users].map(userFactsFromModel),
    nodes: [...nodes].map((n) => nodeFactsFromModel(n, online(n.id))),
    settings: settingsFromModel(settings),
  };
}
