// Headway's domain: tailnets, users, nodes, keys and policies as the rest of the server sees
// them. Readonly data with branded ids, so a NodeId can never be passed where a UserId is due.
// Rows (store) and wire objects (tailcfg) are separate types with their own converters.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type * as tailcfg from '../tailcfg/index.js';

declare const brand: unique symbol;
type Id<B extends string> = number & { readonly [brand]: B };

export type TailnetId = Id<'TailnetId'>;
export type UserId = Id<'UserId'>;
export type NodeId = Id<'NodeId'>;
export type PreAuthKeyId = Id<'PreAuthKeyId'>;
export type ApiKeyId = Id<'ApiKeyId'>;
export type PolicyVersionId = Id<'PolicyVersionId'>;

export const DEFAULT_TAILNET_NAME = 'default';

export interface Tailnet {
  readonly id: TailnetId;
  /** Unique per server; `default` always exists. */
  readonly name: string;
  readonly createdAt: Date;
}

/**
 * Tailscale's user roles, which policies name through `autogroup:admin`, `autogroup:owner`,
 * `autogroup:network-admin` and the like (and which stamp the is-admin/is-owner caps).
 */
export type UserRole = 'owner' | 'admin' | 'it-admin' | 'network-admin' | 'billing-admin' | 'auditor' | 'member';
export const USER_ROLES: readonly UserRole[] = ['owner', 'admin', 'it-admin', 'network-admin', 'billing-admin', 'auditor', 'member'];

/**
 * The roles an admin can give. `owner` is not among them yet: a tailnet's owner also fixes its
 * domain (what `localpart:*@domain` may name), so making someone owner could invalidate the
 * policy in force; that needs the policy's check before the change, which comes with login.
 */
export const ASSIGNABLE_USER_ROLES: readonly UserRole[] = ['admin', 'it-admin', 'network-admin', 'billing-admin', 'auditor', 'member'];

export interface User {
  readonly id: UserId;
  readonly tailnetId: TailnetId;
  /** Unique per tailnet; what policies may write as `name@`. */
  readonly name: string;
  readonly displayName: string;
  /** What policies write as `alice@example.com`; may be empty. */
  readonly email: string;
  readonly role: UserRole;
  readonly createdAt: Date;
}

/** How a node last authenticated. */
export type RegisterMethod = 'authkey' | 'interactive' | 'cli';

export interface Node {
  readonly id: NodeId;
  readonly tailnetId: TailnetId;
  /** Opaque stable id sent as `Node.StableID`; never reused. */
  readonly stableId: string;
  readonly machineKey: MachinePublicKey;
  readonly nodeKey: NodePublicKey;
  readonly discoKey: DiscoPublicKey | null;
  /** Tailscale IPv4 address (no prefix length), e.g. `100.64.0.1`. */
  readonly ipv4: string | null;
  /** Tailscale IPv6 address (no prefix length), e.g. `fd7a:115c:a1e0::1`. */
  readonly ipv6: string | null;
  /** The OS hostname the client reported. */
  readonly hostname: string;
  /** The MagicDNS label, unique per tailnet (`laptop`, `laptop-1`). */
  readonly givenName: string;
  /**
   * The user who owns the node, or who registered it when it is tagged. A tagged node
   * (`tags` non-empty) is owned by its tags: user selectors in policies do not match it.
   */
  readonly userId: UserId | null;
  /** Sorted, unique `tag:` names. */
  readonly tags: readonly string[];
  /** From Hostinfo.RoutableIPs, canonical prefix text, sorted. */
  readonly advertisedRoutes: readonly string[];
  /** Routes an admin or the policy's autoApprovers approved, canonical prefix text, sorted. */
  readonly approvedRoutes: readonly string[];
  readonly endpoints: readonly string[];
  readonly hostinfo: Readonly<tailcfg.Hostinfo>;
  /** null = never expires. */
  readonly keyExpiry: Date | null;
  readonly lastSeen: Date | null;
  readonly ephemeral: boolean;
  readonly registerMethod: RegisterMethod;
  readonly preAuthKeyId: PreAuthKeyId | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export function isTagged(node: Pick<Node, 'tags'>): boolean {
  return node.tags.length > 0;
}

export interface PreAuthKey {
  readonly id: PreAuthKeyId;
  readonly tailnetId: TailnetId;
  /** The user the key registers nodes for; null only for tagged keys. */
  readonly userId: UserId | null;
  /** The first characters of the key, shown in listings; the key itself is never stored. */
  readonly prefix: string;
  readonly reusable: boolean;
  readonly ephemeral: boolean;
  readonly tags: readonly string[];
  readonly expiresAt: Date | null;
  readonly usedCount: number;
  readonly createdAt: Date;
  /** Set when an admin expired the key before its time. */
  readonly revokedAt: Date | null;
}

export interface ApiKey {
  readonly id: ApiKeyId;
  /** The public prefix of the key (`hwk_<prefix>`); the secret part is stored only as a hash. */
  readonly prefix: string;
  readonly expiresAt: Date | null;
  readonly lastUsedAt: Date | null;
  readonly createdAt: Date;
  readonly revokedAt: Date | null;
}

export interface PolicyVersion {
  readonly id: PolicyVersionId;
  readonly tailnetId: TailnetId;
  /** The policy text exactly as written, comments included. */
  readonly text: string;
  /** Who stored it (`cli`, `api:<key prefix>`, ...). */
  readonly author: string;
  readonly createdAt: Date;
}

export interface AuditEntry {
  readonly id: number;
  readonly tailnetId: TailnetId | null;
  /** `unix-socket`, `api-key:<prefix>`, `system`, `node:<id>`. */
  readonly actor: string;
  /** `node.delete`, `user.create`, `policy.set`, ... */
  readonly action: string;
  /** What the action was applied to, e.g. `node:12`. */
  readonly target: string;
  /** Action details (never secrets). */
  readonly details: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}

/**
 * A browser session of the web console. The cookie carries a random token; only its SHA-256 is
 * stored. `userId` is null for a session started by the server's operator (`headway admin
 * login-link` without --user), who acts as a server admin.
 */
export interface ConsoleSession {
  readonly id: number;
  readonly tailnetId: TailnetId;
  readonly userId: UserId | null;
  readonly role: UserRole;
  /** What the audit log names as the actor, e.g. `console:alice` or `console:operator`. */
  readonly actor: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  /** The absolute end of the session, whatever its activity. */
  readonly expiresAt: Date;
  readonly revokedAt: Date | null;
}

/** A short-lived, single-use sign-in link of the web console. */
export interface ConsoleLoginLink {
  readonly id: number;
  readonly tailnetId: TailnetId;
  readonly userId: UserId | null;
  readonly role: UserRole;
  readonly actor: string;
  readonly expiresAt: Date;
  readonly usedAt: Date | null;
  readonly createdAt: Date;
}
