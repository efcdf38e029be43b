// The whole server's memory model: every tailnet's TailnetState, the server-wide node-key index
// (map requests and DERP admission find a node by key alone), pending interactive logins, and
// the batched writer of live node fields.
import type { NodePublicKey } from '../key/index.js';
import type {
  ApiKey, ApiKeyId, AuditEntry, Node, NodeId, PreAuthKey, PreAuthKeyId, RegisterMethod, Tailnet, TailnetId, UserId,
} from '../model/index.js';
import { DEFAULT_TAILNET_NAME } from '../model/index.js';
import type { NodeLiveFields, Store } from '../store/types.js';
import { Mutex } from '../util/mutex.js';
import { StateErrors, stateError } from './errors.js';
import { PendingRegistrations } from './pending-registrations.js';
import { auditActor, type Actor } from './actor.js';
import { normaliseTags } from './node-change.js';
import { TailnetState } from './tailnet-state.js';

export interface ServerStateOptions {
  /** How often live node fields (endpoints, hostinfo, last seen) are written. */
  flushIntervalMs?: number;
  pendingTtlMs?: number;
  /** High availability: pending logins live in the database, shared by every instance. */
  sharedPendingLogins?: boolean;
  /** Policy text per tailnet when the policy lives in a file, not the database. */
  policyTextFor?: (tailnet: Tailnet) => string | null;
}

export type ApiKeyCheck =
  | { readonly ok: true; readonly key: ApiKey }
  | { readonly ok: false; readonly problem: 'unknown' }
  | { readonly ok: false; readonly problem: 'revoked' | 'expired'; readonly key: ApiKey };

export type TailnetListener = (event: { kind: 'tailnetAdded' | 'tailnetRemoved'; tailnet: TailnetState }) => void;

export class ServerState {
  readonly store: Store;
  readonly pending: PendingRegistrations;
  readonly #tailnets = new Map<TailnetId, TailnetState>();
  readonly #byName = new Map<string, TailnetId>();
  readonly #nodeByKey = new Map<NodePublicKey, { tailnetId: TailnetId; nodeId: NodeId }>();
  /** Nodes whose live fields changed since the last write; the current values are read at flush time. */
  readonly #dirty = new Map<NodeId, TailnetId>();
  readonly #adminWrites = new Mutex();
  readonly #listeners = new Set<TailnetListener>();
  readonly #policyTextFor: ServerStateOptions['policyTextFor'];
  #flushTimer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(store: Store, options: ServerStateOptions) {
    this.store = store;
    this.pending = new PendingRegistrations({
      ttlMs: options.pendingTtlMs,
      ...(options.sharedPendingLogins === true ? { shared: { store, nodeOf: (id: NodeId) => this.tailnetOfNode(id)?.node(id) } } : {}),
    });
    this.#policyTextFor = options.policyTextFor;
    const interval = options.flushIntervalMs ?? 5_000;
    if (interval > 0) {
      this.#flushTimer = setInterval(() => void this.flush().catch(() => undefined), interval);
      this.#flushTimer.unref();
    }
  }

  /** Loads every tailnet, user and node from the store (the default tailnet is created if missing). */
  static async load(store: Store, options: ServerStateOptions = {}): Promise<ServerState> {
    const state = new ServerState(store, options);
    let tailnets = await store.read.tailnets.list();
    if (!tailnets.some((t) => t.name === DEFAULT_TAILNET_NAME)) {
      await store.transaction((tx) => tx.tailnets.create(DEFAULT_TAILNET_NAME));
      tailnets = await store.read.tailnets.list();
    }
    const allNodes = await store.read.nodes.listAll();
    const nodesByTailnet = new Map<TailnetId, Node[]>();
    for (const node of allNodes) {
      let list = nodesByTailnet.get(node.tailnetId);
      if (list === undefined) nodesByTailnet.set(node.tailnetId, (list = []));
      list.push(node);
    }
    for (const tailnet of tailnets) {
      const users = await store.read.users.list(tailnet.id);
      await state.#attach(tailnet, users, nodesByTailnet.get(tailnet.id) ?? []);
    }
    return state;
  }

  // --- tailnets ------------------------------------------------------------------------------

  tailnets(): IterableIterator<TailnetState> {
    return this.#tailnets.values();
  }

  tailnet(id: TailnetId): TailnetState | undefined {
    return this.#tailnets.get(id);
  }

  tailnetByName(name: string): TailnetState | undefined {
    const id = this.#byName.get(name);
    return id === undefined ? undefined : this.#tailnets.get(id);
  }

  requireTailnet(name: string): TailnetState {
    const tailnet = this.tailnetByName(name);
    if (tailnet === undefined) throw stateError(StateErrors.TAILNET_NOT_FOUND, `tailnet "${name}" not found`);
    return tailnet;
  }

  get defaultTailnet(): TailnetState {
    return this.requireTailnet(DEFAULT_TAILNET_NAME);
  }

  /** Subscribes to tailnets being created or deleted (the server builds a pipeline per tailnet). */
  onTailnets(listener: TailnetListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  createTailnet(name: string, actor: Actor): Promise<TailnetState> {
    return this.#adminWrites.run(async () => {
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(name)) {
        throw stateError(StateErrors.TAILNET_EXISTS, `tailnet name "${name}" is invalid (want a DNS label)`);
      }
      if (this.#byName.has(name)) throw stateError(StateErrors.TAILNET_EXISTS, `tailnet "${name}" already exists`);
      const tailnet = await this.store.transaction(async (tx) => {
        const created = await tx.tailnets.create(name);
        await tx.audit.record({ tailnetId: created.id, ...auditActor(actor), action: 'tailnet.create', target: `tailnet:${created.id}`, details: { name } });
        return created;
      });
      const attached = await this.#attach(tailnet, [], []);
      for (const listener of this.#listeners) listener({ kind: 'tailnetAdded', tailnet: attached });
      return attached;
    });
  }

  deleteTailnet(name: string, actor: Actor): Promise<void> {
    return this.#adminWrites.run(async () => {
      if (name === DEFAULT_TAILNET_NAME) throw stateError(StateErrors.TAILNET_DEFAULT, 'the default tailnet cannot be deleted');
      const tailnet = this.requireTailnet(name);
      await this.store.transaction(async (tx) => {
        await tx.tailnets.delete(tailnet.id);
        await tx.audit.record({ tailnetId: null, ...auditActor(actor), action: 'tailnet.delete', target: `tailnet:${tailnet.id}`, details: { name } });
      });
      for (const node of tailnet.nodes()) {
        this.#nodeByKey.delete(node.nodeKey);
        this.#dirty.delete(node.id);
      }
      this.#tailnets.delete(tailnet.id);
      this.#byName.delete(name);
      for (const listener of this.#listeners) listener({ kind: 'tailnetRemoved', tailnet });
    });
  }

  // --- rows another instance committed (high availability, docs/ha.md) ----------------------

  /** Attaches a tailnet another instance created, or detaches one it deleted (undefined). */
  applyStoredTailnet(id: TailnetId, row: Tailnet | undefined): Promise<void> {
    return this.#adminWrites.run(async () => {
      const current = this.#tailnets.get(id);
      if (row !== undefined) {
        if (current !== undefined) {
          current.applyStoredSettings(row);
          return;
        }
        const users = await this.store.read.users.list(id);
        const nodes = await this.store.read.nodes.list(id);
        const attached = await this.#attach(row, users, nodes);
        for (const listener of this.#listeners) listener({ kind: 'tailnetAdded', tailnet: attached });
        return;
      }
      if (current === undefined) return;
      for (const node of current.nodes()) {
        this.#nodeByKey.delete(node.nodeKey);
        this.#dirty.delete(node.id);
      }
      this.#tailnets.delete(id);
      this.#byName.delete(current.name);
      for (const listener of this.#listeners) listener({ kind: 'tailnetRemoved', tailnet: current });
    });
  }

  /** The tailnet whose memory holds node `id` (a deleted row no longer names its tailnet). */
  tailnetOfNode(id: NodeId): TailnetState | undefined {
    for (const tailnet of this.#tailnets.values()) if (tailnet.node(id) !== undefined) return tailnet;
    return undefined;
  }

  tailnetOfUser(id: UserId): TailnetState | undefined {
    for (const tailnet of this.#tailnets.values()) if (tailnet.user(id) !== undefined) return tailnet;
    return undefined;
  }

  /** True when the policy lives in a file: stored policy versions are not applied then. */
  get policyFromFile(): boolean {
    return this.#policyTextFor !== undefined;
  }

  // --- nodes across tailnets -----------------------------------------------------------------

  /** Finds a node by its current node key, in any tailnet. */
  nodeByKey(key: NodePublicKey): { tailnet: TailnetState; node: Node } | undefined {
    const ref = this.#nodeByKey.get(key);
    if (ref === undefined) return undefined;
    const tailnet = this.#tailnets.get(ref.tailnetId);
    const node = tailnet?.node(ref.nodeId);
    return tailnet && node ? { tailnet, node } : undefined;
  }

  // --- interactive logins ---------------------------------------------------------------------

  /**
   * Completes a waiting interactive login for `userId` (or as a tagged node): a machine that
   * rotates its key (the login carries its old node key) keeps its node, addresses and name;
   * otherwise a new node is registered. The client's waiting request is released.
   */
  async approvePending(
    id: string,
    tailnet: TailnetState,
    input: {
      userId: UserId | null; tags?: readonly string[]; approvedRoutes?: readonly string[]; keyExpiry: Date | null; registerMethod?: RegisterMethod;
      /** An admin registering the device approves it; default: the tailnet's device approval decides. */
      approved?: boolean;
    },
    actor: Actor,
  ): Promise<Node> {
    const registration = await this.pending.lookup(id);
    if (registration === undefined) {
      throw stateError(StateErrors.PENDING_NOT_FOUND, `no login is waiting for registration key "${id}" (it may have expired; run tailscale up again)`);
    }
    const previous = this.#ownNode(registration.oldNodeKey, registration.machineKey) ?? this.#ownNode(registration.nodeKey, registration.machineKey);
    let node: Node;
    if (previous !== undefined && previous.tailnet === tailnet) {
      node = await tailnet.updateNode(previous.node.id, {
        nodeKey: registration.nodeKey,
        discoKey: registration.discoKey ?? previous.node.discoKey,
        hostinfo: registration.hostinfo,
        userId: input.userId,
        tags: input.tags ?? [],
        ...(input.approvedRoutes !== undefined ? { approvedRoutes: input.approvedRoutes } : {}),
        keyExpiry: input.keyExpiry,
        registerMethod: input.registerMethod ?? 'interactive',
      }, actor, { action: 'node.reauthenticate', completesLogin: id });
    } else {
      node = await tailnet.addNode({
        machineKey: registration.machineKey,
        nodeKey: registration.nodeKey,
        discoKey: registration.discoKey,
        hostinfo: registration.hostinfo,
        userId: input.userId,
        tags: input.tags ?? [],
        approvedRoutes: input.approvedRoutes ?? [],
        keyExpiry: input.keyExpiry,
        ephemeral: registration.ephemeral,
        registerMethod: input.registerMethod ?? 'interactive',
        approved: input.approved ?? !tailnet.needsApproval(input.userId, false),
        completesLogin: id,
      }, actor);
    }
    this.pending.approve(id, node);
    return node;
  }

  /** The node that holds `key`, if it belongs to `machineKey`. */
  #ownNode(key: NodePublicKey | null, machineKey: string): { tailnet: TailnetState; node: Node } | undefined {
    if (key === null) return undefined;
    const found = this.nodeByKey(key);
    return found !== undefined && found.node.machineKey === machineKey ? found : undefined;
  }

  // --- pre-auth keys and API keys (no memory model: straight to the store, with audit) --------

  async createPreAuthKey(
    tailnet: TailnetState,
    input: { userId: UserId | null; reusable: boolean; ephemeral: boolean; tags: readonly string[]; expiresAt: Date | null; preApproved?: boolean; description?: string },
    actor: Actor,
  ): Promise<{ key: PreAuthKey; secret: string }> {
    const tags = normaliseTags(input.tags);
    if (input.userId === null && tags.length === 0) {
      throw stateError(StateErrors.NODE_OWNER_INVALID, 'a pre-auth key needs a user or tags');
    }
    if (input.userId !== null && tailnet.user(input.userId) === undefined) {
      throw stateError(StateErrors.USER_NOT_FOUND, `user ${input.userId} not found in tailnet "${tailnet.name}"`);
    }
    return this.store.transaction(async (tx) => {
      const created = await tx.preAuthKeys.create({ ...input, tags, tailnetId: tailnet.id });
      await tx.audit.record({
        tailnetId: tailnet.id, ...auditActor(actor), action: 'preauthkey.create', target: `preauthkey:${created.key.id}`,
        details: { prefix: created.key.prefix, user: input.userId, reusable: input.reusable, ephemeral: input.ephemeral, tags, expiresAt: input.expiresAt?.toISOString() ?? null, preApproved: input.preApproved ?? false },
      });
      return created;
    });
  }

  listPreAuthKeys(tailnet: TailnetState, userId?: UserId): Promise<PreAuthKey[]> {
    return this.store.read.preAuthKeys.list(tailnet.id, userId);
  }

  async expirePreAuthKey(tailnet: TailnetState, id: PreAuthKeyId, actor: Actor): Promise<PreAuthKey> {
    return this.store.transaction(async (tx) => {
      const key = await tx.preAuthKeys.get(id);
      if (key === undefined || key.tailnetId !== tailnet.id) {
        throw stateError(StateErrors.PREAUTHKEY_NOT_FOUND, `pre-auth key ${id} not found in tailnet "${tailnet.name}"`);
      }
      const revoked = await tx.preAuthKeys.revoke(id);
      await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(actor), action: 'preauthkey.expire', target: `preauthkey:${id}`, details: { prefix: key.prefix } });
      return revoked;
    });
  }

  /** Looks a presented pre-auth key up; undefined when unknown (validity is checked on use). */
  findPreAuthKey(secret: string): Promise<PreAuthKey | undefined> {
    return this.store.read.preAuthKeys.findBySecret(secret);
  }

  async createApiKey(expiresAt: Date | null, actor: Actor): Promise<{ key: ApiKey; secret: string }> {
    return this.store.transaction(async (tx) => {
      const created = await tx.apiKeys.create(expiresAt);
      await tx.audit.record({ tailnetId: null, ...auditActor(actor), action: 'apikey.create', target: `apikey:${created.key.id}`, details: { prefix: created.key.prefix, expiresAt: expiresAt?.toISOString() ?? null } });
      return created;
    });
  }

  listApiKeys(): Promise<ApiKey[]> {
    return this.store.read.apiKeys.list();
  }

  async expireApiKey(prefix: string, actor: Actor): Promise<ApiKey> {
    return this.store.transaction(async (tx) => {
      const key = await tx.apiKeys.getByPrefix(prefix);
      if (key === undefined) throw stateError(StateErrors.APIKEY_NOT_FOUND, `API key "${prefix}" not found`);
      const revoked = await tx.apiKeys.revoke(key.id as ApiKeyId);
      await tx.audit.record({ tailnetId: null, ...auditActor(actor), action: 'apikey.expire', target: `apikey:${key.id}`, details: { prefix } });
      return revoked;
    });
  }

  /**
   * Verifies a presented API key: known, not revoked, not expired. The last-use time is written
   * at most once per `touchIntervalMs`, so a busy script costs one read per call, not one write;
   * a failure to record it never refuses an authenticated request.
   */
  async authenticateApiKey(secret: string, now: number = Date.now(), touchIntervalMs = 60_000): Promise<ApiKeyCheck> {
    const key = await this.store.read.apiKeys.findBySecret(secret);
    if (key === undefined) return { ok: false, problem: 'unknown' };
    if (key.revokedAt !== null) return { ok: false, problem: 'revoked', key };
    if (key.expiresAt !== null && key.expiresAt.getTime() <= now) return { ok: false, problem: 'expired', key };
    if (key.lastUsedAt === null || now - key.lastUsedAt.getTime() >= touchIntervalMs) {
      await this.store.read.apiKeys.touch(key.id, new Date(now)).catch(() => undefined);
    }
    return { ok: true, key };
  }

  listAudit(filter: { tailnetId?: TailnetId; limit?: number }): Promise<AuditEntry[]> {
    return this.store.read.audit.list(filter);
  }

  // --- lifecycle -----------------------------------------------------------------------------

  /** Writes the batched live fields now. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#dirty.size === 0) return;
      const batch: NodeLiveFields[] = [];
      const taken = new Map(this.#dirty);
      this.#dirty.clear();
      for (const [id, tailnetId] of taken) {
        const node = this.#tailnets.get(tailnetId)?.node(id);
        if (node === undefined) continue;
        batch.push({ id: node.id, endpoints: node.endpoints, discoKey: node.discoKey, hostinfo: node.hostinfo, lastSeen: node.lastSeen });
      }
      try {
        await this.store.transaction((tx) => tx.nodes.updateLive(batch));
      } catch (err) {
        // Retry on the next tick; values are read afresh then.
        for (const [id, tailnetId] of taken) if (!this.#dirty.has(id)) this.#dirty.set(id, tailnetId);
        throw err;
      }
    });
    return this.#flushing;
  }

  /** Stops the flush timer, writes pending live fields, releases waiting logins. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#flushTimer) clearInterval(this.#flushTimer);
    this.pending.clear();
    await this.flush().catch(() => undefined);
  }

  async #attach(tailnet: Tailnet, users: Awaited<ReturnType<Store['read']['users']['list']>>, nodes: Node[]): Promise<TailnetState> {
    const policyText = this.#policyTextFor ? this.#policyTextFor(tailnet) : ((await this.store.read.policies.latest(tailnet.id))?.text ?? null);
    const state = new TailnetState(this.store, tailnet, {
      onNodeKey: (node, previousKey) => {
        if (previousKey !== null) this.#nodeByKey.delete(previousKey);
        this.#nodeByKey.set(node.nodeKey, { tailnetId: node.tailnetId, nodeId: node.id });
      },
      onNodeGone: (node) => {
        this.#nodeByKey.delete(node.nodeKey);
        this.#dirty.delete(node.id);
      },
      markDirty: (node) => {
        this.#dirty.set(node.id, node.tailnetId);
      },
    }, { users, nodes, policyText });
    for (const node of nodes) this.#nodeByKey.set(node.nodeKey, { tailnetId: tailnet.id, nodeId: node.id });
    this.#tailnets.set(tailnet.id, state);
    this.#byName.set(tailnet.name, tailnet.id);
    return state;
  }
}
