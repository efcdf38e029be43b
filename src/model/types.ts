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
  readonly settings: TailnetSettings;
  /** New devices of non-admin users wait for an admin's approval (`headway nodes approve`). */
  readonly deviceApproval: boolean;
}

/**
 * A tailnet's settings: one object, stored as one JSON column, so that a new setting is a new
 * key (with its default here) rather than a new column. Sent to nodes as capabilities where
 * the service sends them (`default-auto-update`).
 */
export interface TailnetSettings {
  /** Tailscale's "auto-update" tailnet setting: the default of every client's auto-update. */
  readonly autoUpdate: boolean;
  /** The tailnet's name as people read it (console, audit); '' = its API name. */
  readonly displayName: string;
  /** Key lifetime of new untagged devices in seconds (0 = never expire); null = node_expiry of the config. */
  readonly nodeExpirySeconds: number | null;
  /** The tailnet's own DNS; null = the config file's dns section. */
  readonly dns: TailnetDns | null;
}

/**
 * A tailnet's DNS as an admin set it in the console or API. The MagicDNS base domain stays
 * server-wide (dns.base_domain): names already handed out must not move.
 */
export interface TailnetDns {
  readonly magicDns: boolean;
  /** Clients use the nameservers instead of their own resolver. */
  readonly overrideLocalDns: boolean;
  readonly nameservers: readonly string[];
  /** Domain -> nameservers. */
  readonly splitDns: Readonly<Record<string, readonly string[]>>;
  readonly searchDomains: readonly string[];
  readonly extraRecords: ReadonlyArray<{ readonly name: string; readonly type: string; readonly value: string }>;
}

export const DEFAULT_TAILNET_SETTINGS: TailnetSettings = { autoUpdate: false, displayName: '', nodeExpirySeconds: null, dns: null };

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
  /** The OpenID Connect identity that signs the user in (issuer + subject); null when none. */
  readonly oidc: { readonly issuer: string; readonly subject: string } | null;
  readonly pictureUrl: string;
  /**
   * Synced groups (`engineering@example.com`, what policies write as
   * `group:engineering@example.com`), from the provider's groups claim at the last sign-in.
   */
  readonly oidcGroups: readonly string[];
  /** Synced groups pushed by SCIM. */
  readonly scimGroups: readonly string[];
  /** False once SCIM deactivated the user: their devices are withheld from the tailnet. */
  readonly active: boolean;
  /** SCIM's externalId for the user, if a SCIM client set one. */
  readonly scimExternalId: string | null;
}

/**
 * The provider's group names as synced groups, what policies write as `group:<name>@<domain>`:
 * lower case; Keycloak's leading `/` dropped; a name without a domain takes the user's email
 * domain (`engineering` for ann@example.com is `engineering@example.com`).
 */
export function syncedGroupNames(groups: readonly string[], email: string): string[] {
  const domain = email.includes('@') ? email.slice(email.lastIndexOf('@') + 1).toLowerCase() : '';
  const out = new Set<string>();
  for (const raw of groups) {
    const name = raw.trim().replace(/^\/+/, '').toLowerCase();
    if (name === '') continue;
    if (name.includes('@')) out.add(name);
    else if (domain !== '') out.add(`${name}@${domain}`);
  }
  return [...out].sort();
}

/** Every synced group a user is in, from sign-in and from SCIM, sorted and unique. */
export function syncedGroupsOf(user: Pick<User, 'oidcGroups' | 'scimGroups'>): string[] {
  return [...new Set([...user.oidcGroups, ...user.scimGroups])].sort();
}

/** How a node last authenticated. */
export type RegisterMethod = 'authkey' | 'interactive' | 'cli' | 'oidc';

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
  /**
   * False while the node waits for an admin's approval (tailnet setting device_approval): it is
   * registered but withheld from the policy index, so no peer sees it and it sees no peers.
   */
  readonly approved: boolean;
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
  /** Nodes registered with the key skip device approval. */
  readonly preApproved: boolean;
  /** Free text (Tailscale's auth key description); may be empty. */
  readonly description: string;
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
  /** Where the change came from: the client's address, `local` (admin socket); null: unknown. */
  readonly from: string | null;
  readonly createdAt: Date;
}

/** An OAuth client of Tailscale's API v2: client credentials that mint short-lived access tokens. */
export interface OAuthClient {
  readonly id: number;
  readonly tailnetId: TailnetId;
  readonly clientId: string;
  readonly scopes: readonly string[];
  readonly tags: readonly string[];
  readonly description: string;
  readonly createdAt: Date;
}

/** A webhook endpoint: where a tailnet's events are POSTed, signed with `secret`. */
export interface Webhook {
  readonly id: number;
  readonly tailnetId: TailnetId;
  readonly endpointId: string;
  readonly url: string;
  readonly providerType: string;
  readonly subscriptions: readonly string[];
  readonly secret: string;
  readonly creator: string;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** One queued POST of a webhook: the signed payload and its retry state. */
export interface WebhookDelivery {
  readonly id: number;
  readonly webhookId: number;
  readonly payload: string;
  readonly attempts: number;
  readonly nextAttemptAt: Date;
  readonly lastError: string | null;
  readonly deliveredAt: Date | null;
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
