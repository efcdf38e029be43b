// The store's contract with the rest of the server: repositories that take and return domain
// types (rows never leave store/), grouped in a transaction. Every multi-step write runs inside
// one `transaction()`; the audit entry of an admin change is written in the same transaction.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type {
  ApiKey, ApiKeyId, AuditEntry, Node, NodeId, PolicyVersion, PreAuthKey, PreAuthKeyId,
  RegisterMethod, Tailnet, TailnetId, TailnetSettings, User, UserId, UserRole,
  OAuthClient, Webhook, WebhookDelivery, ConsoleLoginLink, ConsoleSession,
} from '../model/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import type { HaRepo } from './ha-repo.js';
import type { SshCheckRepo } from './ssh-check-repo.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly dialect: Dialect;
  /** Runs `fn` in one database transaction; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /** Non-transactional reads and single-statement writes. */
  readonly read: StoreTx;
  /** Waits for in-flight transactions, then closes the connection(s). Idempotent. */
  close(): Promise<void>;
}

export interface StoreTx {
  readonly tailnets: TailnetRepo;
  readonly users: UserRepo;
  readonly nodes: NodeRepo;
  readonly preAuthKeys: PreAuthKeyRepo;
  readonly apiKeys: ApiKeyRepo;
  readonly policies: PolicyRepo;
  readonly audit: AuditRepo;
  readonly addresses: AddressAllocator;
  /** High availability's tables (PostgreSQL only; docs/ha.md). */
  readonly ha: HaRepo;
  readonly consoleSessions: ConsoleSessionRepo;
  readonly oauth: OAuthRepo;
  readonly webhooks: WebhookRepo;
  readonly scimGroups: ScimGroupRepo;
  readonly sshChecks: SshCheckRepo;
}

/** A group pushed by a SCIM client; members are user ids of the same tailnet. */
export interface ScimGroup {
  readonly id: string;
  readonly tailnetId: TailnetId;
  readonly displayName: string;
  readonly externalId: string | null;
  readonly members: readonly UserId[];
  readonly createdAt: Date;
}

export interface ScimGroupRepo {
  create(group: { tailnetId: TailnetId; displayName: string; externalId: string | null; members: readonly UserId[] }): Promise<ScimGroup>;
  get(tailnetId: TailnetId, id: string): Promise<ScimGroup | undefined>;
  list(tailnetId: TailnetId): Promise<ScimGroup[]>;
  update(tailnetId: TailnetId, id: string, patch: { displayName?: string; externalId?: string | null; members?: readonly UserId[] }): Promise<ScimGroup>;
  delete(tailnetId: TailnetId, id: string): Promise<void>;
}

export interface TailnetRepo {
  create(name: string): Promise<Tailnet>;
  get(id: TailnetId): Promise<Tailnet | undefined>;
  getByName(name: string): Promise<Tailnet | undefined>;
  list(): Promise<Tailnet[]>;
  /** Deletes the tailnet and everything in it (users, nodes, keys, policies). */
  delete(id: TailnetId): Promise<void>;
  /** Replaces the given settings keys; the others keep their values. */
  updateSettings(id: TailnetId, patch: Partial<TailnetSettings>): Promise<Tailnet>;
  setDeviceApproval(id: TailnetId, enabled: boolean): Promise<Tailnet>;
}

export interface NewUser {
  tailnetId: TailnetId;
  name: string;
  displayName?: string;
  email?: string;
  /** Default 'member'. */
  role?: UserRole;
  oidc?: { issuer: string; subject: string } | null;
  pictureUrl?: string;
  oidcGroups?: readonly string[];
  scimGroups?: readonly string[];
  active?: boolean;
  scimExternalId?: string | null;
}

/** The fields of a user an update may change. */
export type UserPatch = Partial<Pick<User, 'name' | 'displayName' | 'email' | 'role' | 'oidc' | 'pictureUrl' | 'oidcGroups' | 'scimGroups' | 'active' | 'scimExternalId'>>;

export interface UserRepo {
  create(user: NewUser): Promise<User>;
  get(id: UserId): Promise<User | undefined>;
  getByName(tailnetId: TailnetId, name: string): Promise<User | undefined>;
  list(tailnetId: TailnetId): Promise<User[]>;
  update(id: UserId, patch: UserPatch): Promise<User>;
  /** The user an OpenID Connect identity signs in, if any. */
  getByOidc(tailnetId: TailnetId, issuer: string, subject: string): Promise<User | undefined>;
  delete(id: UserId): Promise<void>;
}

export interface NewNode {
  tailnetId: TailnetId;
  machineKey: MachinePublicKey;
  nodeKey: NodePublicKey;
  discoKey: DiscoPublicKey | null;
  ipv4: string | null;
  ipv6: string | null;
  hostname: string;
  givenName: string;
  userId: UserId | null;
  tags: readonly string[];
  advertisedRoutes: readonly string[];
  approvedRoutes: readonly string[];
  endpoints: readonly string[];
  hostinfo: tailcfg.Hostinfo;
  keyExpiry: Date | null;
  ephemeral: boolean;
  registerMethod: RegisterMethod;
  preAuthKeyId: PreAuthKeyId | null;
  /** Default true; false holds the node for an admin's approval. */
  approved?: boolean;
}

export type NodePatch = Partial<Omit<Node, 'id' | 'tailnetId' | 'stableId' | 'createdAt' | 'updatedAt'>>;

/** The high-frequency fields a running server persists lazily, in batches. */
export interface NodeLiveFields {
  id: NodeId;
  endpoints: readonly string[];
  discoKey: DiscoPublicKey | null;
  hostinfo: tailcfg.Hostinfo;
  lastSeen: Date | null;
}

export interface NodeRepo {
  create(node: NewNode): Promise<Node>;
  get(id: NodeId): Promise<Node | undefined>;
  getByNodeKey(key: NodePublicKey): Promise<Node | undefined>;
  getByMachineKey(tailnetId: TailnetId, key: MachinePublicKey): Promise<Node[]>;
  list(tailnetId: TailnetId): Promise<Node[]>;
  listAll(): Promise<Node[]>;
  update(id: NodeId, patch: NodePatch): Promise<Node>;
  /** One statement per node, in one transaction when called inside `transaction()`. */
  updateLive(batch: readonly NodeLiveFields[]): Promise<void>;
  delete(id: NodeId): Promise<void>;
  /** True when the given name is taken in the tailnet (optionally ignoring one node). */
  givenNameTaken(tailnetId: TailnetId, givenName: string, exceptId?: NodeId): Promise<boolean>;
}

export interface NewPreAuthKey {
  tailnetId: TailnetId;
  userId: UserId | null;
  reusable: boolean;
  ephemeral: boolean;
  tags: readonly string[];
  expiresAt: Date | null;
  /** Nodes registered with the key skip device approval. Default false. */
  preApproved?: boolean;
  /** Default ''. */
  description?: string;
}

/** A key another control server issued (headscale's 48 hex digits), carried over as a hash. */
export interface ImportedPreAuthKey extends NewPreAuthKey {
  secret: string;
  usedCount: number;
  createdAt: Date | null;
}

export interface PreAuthKeyRepo {
  /** Creates a key; the returned secret is shown once and only its hash is stored. */
  create(key: NewPreAuthKey): Promise<{ key: PreAuthKey; secret: string }>;
  /** Stores an imported key's hash under its `hs:` prefix; the secret itself is not kept. */
  createImported(key: ImportedPreAuthKey): Promise<PreAuthKey>;
  getByPrefix(prefix: string): Promise<PreAuthKey | undefined>;
  get(id: PreAuthKeyId): Promise<PreAuthKey | undefined>;
  /** Finds a key by its secret (hash lookup); undefined when unknown. */
  findBySecret(secret: string): Promise<PreAuthKey | undefined>;
  list(tailnetId: TailnetId, userId?: UserId): Promise<PreAuthKey[]>;
  /** Increments used_count. */
  markUsed(id: PreAuthKeyId): Promise<PreAuthKey>;
  /** Sets revoked_at (an admin's "expire"). */
  revoke(id: PreAuthKeyId): Promise<PreAuthKey>;
}

export interface ApiKeyRepo {
  create(expiresAt: Date | null): Promise<{ key: ApiKey; secret: string }>;
  get(id: ApiKeyId): Promise<ApiKey | undefined>;
  getByPrefix(prefix: string): Promise<ApiKey | undefined>;
  /** Verifies a presented key (constant-time hash compare); undefined when unknown. */
  findBySecret(secret: string): Promise<ApiKey | undefined>;
  list(): Promise<ApiKey[]>;
  revoke(id: ApiKeyId): Promise<ApiKey>;
  touch(id: ApiKeyId, at: Date): Promise<void>;
}

export interface PolicyRepo {
  /** Stores a new version; previous versions are kept. */
  save(tailnetId: TailnetId, text: string, author: string): Promise<PolicyVersion>;
  latest(tailnetId: TailnetId): Promise<PolicyVersion | undefined>;
  list(tailnetId: TailnetId): Promise<PolicyVersion[]>;
}

export interface NewConsoleGrant {
  tailnetId: TailnetId;
  userId: UserId | null;
  role: UserRole;
  actor: string;
  /** When it starts (the caller's clock, which also judges idleness and expiry). */
  at: Date;
  expiresAt: Date;
}

/** Web console sessions and sign-in links; tokens are given as their SHA-256 hex only. */
export interface ConsoleSessionRepo {
  createSession(tokenHash: string, grant: NewConsoleGrant): Promise<ConsoleSession>;
  findSession(tokenHash: string): Promise<ConsoleSession | undefined>;
  touchSession(id: number, at: Date): Promise<void>;
  revokeSession(id: number, at: Date): Promise<void>;
  createLink(tokenHash: string, grant: NewConsoleGrant): Promise<ConsoleLoginLink>;
  /**
   * Marks an unused link used and returns it, in one statement so that two browsers racing
   * with the same link cannot both win; undefined when unknown or already used.
   */
  consumeLink(tokenHash: string, at: Date): Promise<ConsoleLoginLink | undefined>;
  /** Deletes sessions and links that ended before `before`; returns how many rows went. */
  prune(before: Date): Promise<number>;
}

export interface NewAuditEntry {
  tailnetId: TailnetId | null;
  actor: string;
  action: string;
  target: string;
  details?: Record<string, unknown>;
  /** The client address (`local`: the admin socket); absent: the server's own change. */
  from?: string | null;
}

export interface AuditRepo {
  record(entry: NewAuditEntry): Promise<AuditEntry>;
  list(filter: { tailnetId?: TailnetId; limit?: number }): Promise<AuditEntry[]>;
}

/**
 * Hands out Tailscale addresses from the configured prefixes, inside the caller's transaction,
 * so that a registration that rolls back frees its address. Never returns an address in use in
 * the tailnet, a reserved one, or the same one to two concurrent transactions.
 */
export interface AddressAllocator {
  allocate(tailnetId: TailnetId): Promise<{ ipv4: string | null; ipv6: string | null }>;
}

export interface OAuthRepo {
  /** The secret is returned once; only its hash is stored. */
  createClient(input: { tailnetId: TailnetId; scopes: readonly string[]; tags: readonly string[]; description: string }): Promise<{ client: OAuthClient; secret: string }>;
  getClient(clientId: string): Promise<OAuthClient | undefined>;
  /** The client when `secret` is its secret (constant-time compare), else undefined. */
  verifyClient(clientId: string, secret: string): Promise<OAuthClient | undefined>;
  listClients(tailnetId: TailnetId): Promise<OAuthClient[]>;
  updateClient(clientId: string, patch: { scopes: readonly string[]; tags: readonly string[]; description: string }): Promise<OAuthClient | undefined>;
  deleteClient(clientId: string): Promise<boolean>;
  /** Mints an access token (stored hashed) with `scopes`, valid for `ttlMs`. */
  createToken(client: OAuthClient, scopes: readonly string[], ttlMs: number): Promise<{ token: string; expiresAt: Date }>;
  findToken(token: string, nowMs: number): Promise<{ client: OAuthClient; scopes: string[] } | undefined>;
}

export interface WebhookRepo {
  create(input: { tailnetId: TailnetId; url: string; providerType: string; subscriptions: readonly string[]; creator: string }): Promise<Webhook>;
  get(endpointId: string): Promise<Webhook | undefined>;
  getById(id: number): Promise<Webhook | undefined>;
  list(tailnetId?: TailnetId): Promise<Webhook[]>;
  update(endpointId: string, patch: { subscriptions?: readonly string[]; rotateSecret?: boolean }): Promise<Webhook | undefined>;
  delete(endpointId: string): Promise<boolean>;
  /** Queues a payload for one endpoint; with a dedupe key, only the first enqueue counts. */
  enqueue(webhookId: number, payload: string, dedupeKey?: string | null): Promise<boolean>;
  due(nowMs: number, limit: number): Promise<WebhookDelivery[]>;
  /**
   * Takes up to `limit` due rows for this process: their next attempt moves `claimMs` ahead, so
   * no other instance takes them meanwhile (PostgreSQL: FOR UPDATE SKIP LOCKED). Call inside a
   * transaction.
   */
  claimDue(nowMs: number, limit: number, claimMs: number): Promise<WebhookDelivery[]>;
  nextDueAt(): Promise<number | null>;
  markDelivered(id: number, atMs: number): Promise<void>;
  markFailed(id: number, error: string, nextAttemptAtMs: number): Promise<void>;
  deliveries(webhookId: number, limit: number): Promise<WebhookDelivery[]>;
}
