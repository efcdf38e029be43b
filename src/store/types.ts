// The store's contract with the rest of the server: repositories that take and return domain
// types (rows never leave store/), grouped in a transaction. Every multi-step write runs inside
// one `transaction()`; the audit entry of an admin change is written in the same transaction.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type {
  ApiKey, ApiKeyId, AuditEntry, Node, NodeId, PolicyVersion, PreAuthKey, PreAuthKeyId,
  RegisterMethod, Tailnet, TailnetId, User, UserId, UserRole,
} from '../model/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import type { HaRepo } from './ha-repo.js';

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
}

export interface TailnetRepo {
  create(name: string): Promise<Tailnet>;
  get(id: TailnetId): Promise<Tailnet | undefined>;
  getByName(name: string): Promise<Tailnet | undefined>;
  list(): Promise<Tailnet[]>;
  /** Deletes the tailnet and everything in it (users, nodes, keys, policies). */
  delete(id: TailnetId): Promise<void>;
}

export interface NewUser {
  tailnetId: TailnetId;
  name: string;
  displayName?: string;
  email?: string;
  /** Default 'member'. */
  role?: UserRole;
}

export interface UserRepo {
  create(user: NewUser): Promise<User>;
  get(id: UserId): Promise<User | undefined>;
  getByName(tailnetId: TailnetId, name: string): Promise<User | undefined>;
  list(tailnetId: TailnetId): Promise<User[]>;
  update(id: UserId, patch: Partial<Pick<User, 'name' | 'displayName' | 'email' | 'role'>>): Promise<User>;
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
}

export interface PreAuthKeyRepo {
  /** Creates a key; the returned secret is shown once and only its hash is stored. */
  create(key: NewPreAuthKey): Promise<{ key: PreAuthKey; secret: string }>;
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

export interface NewAuditEntry {
  tailnetId: TailnetId | null;
  actor: string;
  action: string;
  target: string;
  details?: Record<string, unknown>;
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
