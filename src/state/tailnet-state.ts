// One tailnet's in-memory model: users, nodes, presence and the policy text, kept equal to the
// store. Every durable command runs one store transaction under the tailnet's write mutex, then
// applies the committed result to memory, then publishes one event. Live facets (endpoints,
// disco key, hostinfo, presence) are applied and published at once and persisted in batches.
// SCIM group writes (scim-group-writes.ts) and rows another instance committed (stored-rows.ts)
// are carried out by their own modules through the internals this class lends them.
import type { DiscoPublicKey, MachinePublicKey, NodePublicKey } from '../key/index.js';
import type { Node, NodeId, PreAuthKeyId, RegisterMethod, Tailnet, TailnetId, TailnetSettings, User, UserId } from '../model/index.js';
import { isTagged, syncedGroupsOf } from '../model/index.js';
import type { NewNode, NewUser, NodePatch, ScimGroup, Store, StoreTx, UserPatch } from '../store/types.js';
import type * as tailcfg from '../tailcfg/index.js';
import { Mutex } from '../util/mutex.js';
import { StateErrors, stateError } from './errors.js';
import type { EventOrigin, NodeFacet, Presence, StateEvent, StateListener } from './events.js';
import { isValidGivenName, sanitizeHostname, uniqueGivenName } from './given-name.js';
import { auditActor, type Actor } from './actor.js';
import {
  auditPatch, facetsBetween, hostinfoEqualIgnoringNetInfo, mergeHostinfo, nodePatchFor, normaliseRoutes, normaliseTags, routesFromHostinfo, sameJson, sameList,
  type LiveUpdate, type MutablePatch, type NodeUpdate,
} from './node-change.js';
import { ScimGroupWrites } from './scim-group-writes.js';
import { StoredRows } from './stored-rows.js';
import type { TailnetInternals, TailnetStateHooks } from './tailnet-internals.js';

const OFFLINE: Presence = { online: false, capVersion: 0 };

export interface AddNodeInput {
  machineKey: MachinePublicKey;
  nodeKey: NodePublicKey;
  discoKey?: DiscoPublicKey | null;
  hostinfo: tailcfg.Hostinfo;
  userId: UserId | null;
  tags?: readonly string[];
  approvedRoutes?: readonly string[];
  keyExpiry: Date | null;
  ephemeral: boolean;
  registerMethod: RegisterMethod;
  preAuthKeyId?: PreAuthKeyId | null;
  /** Pre-auth key consumed by this registration, checked and counted in the same transaction. */
  consumePreAuthKey?: PreAuthKeyId;
  /**
   * The interactive login this registration completes: its shared row (high availability) is
   * marked approved in the same transaction, which wakes the client on whichever instance.
   */
  completesLogin?: string;
  /** False registers the node held for an admin's approval (default true). */
  approved?: boolean;
}

export type { TailnetStateHooks } from './tailnet-internals.js';

export class TailnetState {
  readonly #store: Store;
  readonly #hooks: TailnetStateHooks;
  readonly #writes = new Mutex();
  readonly #nodes = new Map<NodeId, Node>();
  readonly #users = new Map<UserId, User>();
  readonly #usersByName = new Map<string, UserId>();
  readonly #presence = new Map<NodeId, Presence>();
  readonly #nodeByGivenName = new Map<string, NodeId>();
  readonly #listeners = new Set<StateListener>();
  readonly #scimGroups: ScimGroupWrites;
  readonly #storedRows: StoredRows;
  #tailnet: Tailnet;
  #policyText: string | null;

  constructor(store: Store, tailnet: Tailnet, hooks: TailnetStateHooks, loaded: { users: User[]; nodes: Node[]; policyText: string | null }) {
    this.#store = store;
    this.#tailnet = tailnet;
    this.#hooks = hooks;
    this.#policyText = loaded.policyText;
    for (const user of loaded.users) this.#putUser(user);
    for (const node of loaded.nodes) this.#putNode(node);
    const internals = this.#internals();
    this.#scimGroups = new ScimGroupWrites(internals);
    this.#storedRows = new StoredRows(internals);
  }

  get id(): TailnetId {
    return this.#tailnet.id;
  }

  get name(): string {
    return this.#tailnet.name;
  }

  get tailnet(): Tailnet {
    return this.#tailnet;
  }

  get settings(): TailnetSettings {
    return this.#tailnet.settings;
  }

  // --- reads (synchronous, from memory) ------------------------------------------------------

  node(id: NodeId): Node | undefined {
    return this.#nodes.get(id);
  }

  nodes(): IterableIterator<Node> {
    return this.#nodes.values();
  }

  get nodeCount(): number {
    return this.#nodes.size;
  }

  nodeByGivenName(name: string): Node | undefined {
    const id = this.#nodeByGivenName.get(name);
    return id === undefined ? undefined : this.#nodes.get(id);
  }

  user(id: UserId): User | undefined {
    return this.#users.get(id);
  }

  userByName(name: string): User | undefined {
    const id = this.#usersByName.get(name);
    return id === undefined ? undefined : this.#users.get(id);
  }

  users(): IterableIterator<User> {
    return this.#users.values();
  }

  presence(id: NodeId): Presence {
    return this.#presence.get(id) ?? OFFLINE;
  }

  get policyText(): string | null {
    return this.#policyText;
  }

  /** Subscribes to committed changes; returns the unsubscribe function. */
  subscribe(listener: StateListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // --- settings ------------------------------------------------------------------------------

  /** Whether new devices of non-admin users wait for an admin's approval. */
  get deviceApproval(): boolean {
    return this.#tailnet.deviceApproval;
  }

  setDeviceApproval(enabled: boolean, actor: Actor): Promise<Tailnet> {
    return this.#write(async () => {
      const tailnet = await this.#store.transaction(async (tx) => {
        const updated = await tx.tailnets.setDeviceApproval(this.id, enabled);
        await this.#audit(tx, actor, 'tailnet.settings', `tailnet:${this.id}`, { device_approval: enabled });
        return updated;
      });
      this.#tailnet = tailnet;
      return tailnet;
    });
  }

  /**
   * Whether a new device registered by `userId` (null: a tagged device) must wait for an
   * admin: only with device_approval on, never for admins' own devices or pre-approved keys.
   */
  needsApproval(userId: UserId | null, preApprovedKey: boolean): boolean {
    if (!this.#tailnet.deviceApproval || preApprovedKey) return false;
    const role = userId === null ? undefined : this.#users.get(userId)?.role;
    return role !== 'admin' && role !== 'owner';
  }

  /** An admin approves a waiting device: it joins the tailnet's policy as an added node. */
  approveNode(id: NodeId, actor: Actor): Promise<Node> {
    return this.updateNode(id, { approved: true }, actor, { action: 'node.approve' });
  }

  // --- SCIM groups ---------------------------------------------------------------------------

  listScimGroups(): Promise<ScimGroup[]> {
    return this.#scimGroups.list();
  }

  getScimGroup(id: string): Promise<ScimGroup | undefined> {
    return this.#scimGroups.get(id);
  }

  createScimGroup(input: { displayName: string; externalId: string | null; members: readonly UserId[] }, actor: Actor): Promise<ScimGroup> {
    return this.#scimGroups.create(input, actor);
  }

  updateScimGroup(id: string, patch: { displayName?: string; externalId?: string | null; members?: readonly UserId[] }, actor: Actor): Promise<ScimGroup> {
    return this.#scimGroups.update(id, patch, actor);
  }

  deleteScimGroup(id: string, actor: Actor): Promise<void> {
    return this.#scimGroups.delete(id, actor);
  }

  // --- users ---------------------------------------------------------------------------------

  createUser(input: Omit<NewUser, 'tailnetId'>, actor: Actor): Promise<User> {
    return this.#write(async () => {
      if (input.role === 'owner') throw ownerByTransfer(`creating user "${input.name}"`);
      if (this.#usersByName.has(input.name)) {
        throw stateError(StateErrors.USER_EXISTS, `user "${input.name}" already exists in tailnet "${this.name}"`);
      }
      const user = await this.#store.transaction(async (tx) => {
        const created = await tx.users.create({ ...input, tailnetId: this.id });
        await this.#audit(tx, actor, 'user.create', `user:${created.id}`, {
          name: created.name, email: created.email, role: created.role,
          ...(created.oidc !== null ? { oidc: created.oidc, groups: syncedGroupsOf(created) } : {}),
        });
        return created;
      });
      this.#putUser(user);
      this.#publish({ kind: 'userAdded', user });
      return user;
    });
  }

  updateUser(id: UserId, patch: UserPatch, actor: Actor, options: { action?: string } = {}): Promise<User> {
    return this.#write(async () => {
      const before = this.#requireUser(id);
      if (patch.role !== undefined && patch.role !== before.role && (patch.role === 'owner' || before.role === 'owner')) {
        throw ownerByTransfer(`changing the role of user "${before.name}" to ${patch.role}`);
      }
      if (patch.name !== undefined && patch.name !== before.name && this.#usersByName.has(patch.name)) {
        throw stateError(StateErrors.USER_EXISTS, `user "${patch.name}" already exists in tailnet "${this.name}"`);
      }
      const after = await this.#store.transaction(async (tx) => {
        const updated = await tx.users.update(id, patch);
        await this.#audit(tx, actor, options.action ?? 'user.update', `user:${id}`, {
          before: { name: before.name, displayName: before.displayName, email: before.email, role: before.role, groups: syncedGroupsOf(before), active: before.active },
          after: patch,
        });
        return updated;
      });
      this.#replaceUser(before, after);
      this.#publish({ kind: 'userChanged', before, after });
      return after;
    });
  }

  deleteUser(id: UserId, actor: Actor): Promise<void> {
    return this.#write(async () => {
      const user = this.#requireUser(id);
      if (user.role === 'owner') throw ownerByTransfer(`deleting user "${user.name}", the owner of tailnet "${this.name}"`);
      for (const node of this.#nodes.values()) {
        if (node.userId === id) {
          throw stateError(StateErrors.USER_HAS_NODES, `user "${user.name}" still owns node "${node.givenName}"; delete or move its nodes first`);
        }
      }
      await this.#store.transaction(async (tx) => {
        await tx.users.delete(id);
        await this.#audit(tx, actor, 'user.delete', `user:${id}`, { name: user.name });
      });
      this.#dropUser(user);
      this.#publish({ kind: 'userRemoved', user });
    });
  }

  /** The tailnet's owner: at most one user, exactly one once ownership has been given. */
  owner(): User | undefined {
    for (const user of this.#users.values()) if (user.role === 'owner') return user;
    return undefined;
  }

  /**
   * Makes `to` the tailnet's owner; the former owner becomes an admin. Both role changes and
   * the audit entry are one transaction. With `actingUser` (a user's own session) only the
   * current owner may transfer; a server admin credential gives ownership to a tailnet without
   * one or moves it. `check` sees every user as they will be and may refuse (it runs under the
   * tailnet's write lock, so no policy change slips in between check and write).
   */
  transferOwnership(to: UserId, actor: Actor, options: { actingUser?: UserId; check?: (usersAfter: readonly User[]) => void } = {}): Promise<{ owner: User; previous: User | null }> {
    return this.#write(async () => {
      const target = this.#requireUser(to);
      const current = this.owner() ?? null;
      if (options.actingUser !== undefined && current?.id !== options.actingUser) {
        throw stateError(StateErrors.NOT_OWNER, `transferring ownership of tailnet "${this.name}": only its owner${current === null ? '' : ` (${current.name})`} may do that`);
      }
      if (current?.id === target.id) return { owner: target, previous: null };
      const usersAfter = [...this.#users.values()].map((u): User => (u.id === target.id ? { ...u, role: 'owner' } : u.id === current?.id ? { ...u, role: 'admin' } : u));
      options.check?.(usersAfter);
      const { demoted, promoted } = await this.#store.transaction(async (tx) => {
        const demotedUser = current === null ? null : await tx.users.update(current.id, { role: 'admin' });
        const promotedUser = await tx.users.update(target.id, { role: 'owner' });
        await this.#audit(tx, actor, 'tailnet.owner.transfer', `tailnet:${this.id}`, { from: current === null ? null : { id: current.id, name: current.name }, to: { id: target.id, name: target.name } });
        return { demoted: demotedUser, promoted: promotedUser };
      });
      // The former owner first: the tailnet is briefly without an owner, never with two.
      if (demoted !== null && current !== null) {
        this.#putUser(demoted);
        this.#publish({ kind: 'userChanged', before: current, after: demoted });
      }
      this.#putUser(promoted);
      this.#publish({ kind: 'userChanged', before: target, after: promoted });
      return { owner: promoted, previous: demoted };
    });
  }

  // --- nodes: durable changes ----------------------------------------------------------------

  /**
   * Registers a new node: consumes the pre-auth key (if any), allocates its addresses and a
   * unique name, inserts it and writes the audit entry, all in one transaction.
   */
  addNode(input: AddNodeInput, actor: Actor): Promise<Node> {
    return this.#write(async () => {
      const tags = normaliseTags(input.tags ?? []);
      if (input.userId === null && tags.length === 0) {
        throw stateError(StateErrors.NODE_OWNER_INVALID, 'registering node: it has neither a user nor tags');
      }
      if (input.userId !== null) this.#requireUser(input.userId);
      const advertisedRoutes = routesFromHostinfo(input.hostinfo);
      const approvedRoutes = normaliseRoutes(input.approvedRoutes ?? []);
      const givenName = uniqueGivenName(sanitizeHostname(input.hostinfo.Hostname ?? ''), (n) => this.#nodeByGivenName.has(n));
      const node = await this.#store.transaction(async (tx) => {
        if (input.consumePreAuthKey !== undefined) await consumePreAuthKey(tx, this.id, input.consumePreAuthKey);
        const addresses = await tx.addresses.allocate(this.id);
        const record: NewNode = {
          tailnetId: this.id,
          machineKey: input.machineKey,
          nodeKey: input.nodeKey,
          discoKey: input.discoKey ?? null,
          ipv4: addresses.ipv4,
          ipv6: addresses.ipv6,
          hostname: input.hostinfo.Hostname ?? '',
          givenName,
          userId: input.userId,
          tags,
          advertisedRoutes,
          approvedRoutes,
          endpoints: [],
          hostinfo: input.hostinfo,
          keyExpiry: input.keyExpiry,
          ephemeral: input.ephemeral,
          registerMethod: input.registerMethod,
          preAuthKeyId: input.preAuthKeyId ?? input.consumePreAuthKey ?? null,
          approved: input.approved ?? true,
        };
        const created = await tx.nodes.create(record);
        if (input.completesLogin !== undefined) await tx.ha.approvePendingLogin(input.completesLogin, created.id);
        await this.#audit(tx, actor, 'node.register', `node:${created.id}`, {
          name: created.givenName, user: created.userId, tags: created.tags, method: created.registerMethod,
          ipv4: created.ipv4, ipv6: created.ipv6, ephemeral: created.ephemeral,
          ...(created.approved ? {} : { approved: false }),
        });
        return created;
      });
      this.#putNode(node);
      this.#hooks.onNodeKey(node, null);
      this.#publish({ kind: 'nodeAdded', node });
      return node;
    });
  }

  /** Applies a durable change to a node in one transaction and publishes what changed. */
  updateNode(id: NodeId, update: NodeUpdate, actor: Actor, options: { action?: string; consumePreAuthKey?: PreAuthKeyId; completesLogin?: string } = {}): Promise<Node> {
    return this.#write(async () => {
      const before = this.#requireNode(id);
      const patch = this.#patchFor(before, update);
      const after = await this.#store.transaction(async (tx) => {
        if (options.consumePreAuthKey !== undefined) await consumePreAuthKey(tx, this.id, options.consumePreAuthKey);
        const updated = Object.keys(patch).length === 0 ? before : await tx.nodes.update(id, patch);
        if (options.completesLogin !== undefined) await tx.ha.approvePendingLogin(options.completesLogin, id);
        await this.#audit(tx, actor, options.action ?? 'node.update', `node:${id}`, auditPatch(patch));
        return updated;
      });
      return this.#applyNodeChange(id, patch, after);
    });
  }

  /**
   * The same change to several nodes (a bulk action of the console): every patch is checked
   * before anything is written, then all rows and their audit entries are one transaction, so
   * either every node changes or none does. Publishes each node's change after the commit.
   */
  updateNodes(ids: readonly NodeId[], update: NodeUpdate, actor: Actor, options: { action: string }): Promise<Node[]> {
    return this.#write(async () => {
      const unique = [...new Set(ids)];
      const patches = unique.map((id) => ({ id, before: this.#requireNode(id) })).map(({ id, before }) => ({ id, before, patch: this.#patchFor(before, update) }));
      const committed = await this.#store.transaction(async (tx) => {
        const rows: Node[] = [];
        for (const { id, before, patch } of patches) {
          rows.push(Object.keys(patch).length === 0 ? before : await tx.nodes.update(id, patch));
          await this.#audit(tx, actor, options.action, `node:${id}`, { ...auditPatch(patch), bulk: unique.length });
        }
        return rows;
      });
      return patches.map(({ id, patch }, i) => this.#applyNodeChange(id, patch, committed[i]!));
    });
  }

  renameNode(id: NodeId, givenName: string, actor: Actor): Promise<Node> {
    if (!isValidGivenName(givenName)) {
      return Promise.reject(stateError(StateErrors.NODE_NAME_INVALID, `renaming node ${id}: "${givenName}" is not a DNS label`));
    }
    return this.updateNode(id, { givenName }, actor, { action: 'node.rename' });
  }

  /** Sets the node's key expiry to `at` (default now): the node must log in again. */
  expireNode(id: NodeId, actor: Actor, at: Date = new Date()): Promise<Node> {
    return this.updateNode(id, { keyExpiry: at }, actor, { action: 'node.expire' });
  }

  deleteNode(id: NodeId, actor: Actor, action = 'node.delete'): Promise<void> {
    return this.#write(async () => {
      const node = this.#requireNode(id);
      await this.#store.transaction(async (tx) => {
        await tx.nodes.delete(id);
        await this.#audit(tx, actor, action, `node:${id}`, { name: node.givenName, ipv4: node.ipv4, ipv6: node.ipv6 });
      });
      this.#dropNode(node);
      this.#hooks.onNodeGone(node);
      this.#publish({ kind: 'nodeRemoved', node });
    });
  }

  // --- nodes: live changes -------------------------------------------------------------------

  /**
   * Applies what a map request reported. Endpoints, disco key and hostinfo take effect at once
   * and are written in the next batch; a change of advertised routes is durable and committed
   * first. Returns the node after the update.
   */
  async applyLiveUpdate(id: NodeId, update: LiveUpdate): Promise<Node> {
    const before = this.#requireNode(id);
    if (update.hostinfo !== undefined) {
      const advertised = routesFromHostinfo(update.hostinfo);
      if (!sameList(advertised, before.advertisedRoutes)) {
        // Rare and security-relevant (route approval keys off it): commit before announcing.
        return this.#write(async () => {
          const current = this.#requireNode(id);
          const patch: MutablePatch = { advertisedRoutes: advertised, hostinfo: mergeHostinfo(current.hostinfo, update.hostinfo!) };
          if (update.endpoints !== undefined) patch.endpoints = update.endpoints;
          if (update.discoKey !== undefined) patch.discoKey = update.discoKey;
          const after = await this.#store.transaction((tx) => tx.nodes.update(id, patch));
          return this.#applyNodeChange(id, patch, after);
        });
      }
    }
    const facets = new Set<NodeFacet>();
    let after: Node = before;
    if (update.endpoints !== undefined && !sameList(update.endpoints, before.endpoints)) {
      after = { ...after, endpoints: [...update.endpoints] };
      facets.add('endpoints');
    }
    if (update.discoKey !== undefined && update.discoKey !== before.discoKey) {
      after = { ...after, discoKey: update.discoKey };
      facets.add('discoKey');
    }
    if (update.hostinfo !== undefined) {
      const hostinfo = mergeHostinfo(before.hostinfo, update.hostinfo);
      const derpBefore = before.hostinfo.NetInfo?.PreferredDERP ?? 0;
      const derpAfter = hostinfo.NetInfo?.PreferredDERP ?? 0;
      if (derpBefore !== derpAfter) facets.add('derp');
      if (!hostinfoEqualIgnoringNetInfo(before.hostinfo, hostinfo)) facets.add('hostinfo');
      if (facets.has('derp') || facets.has('hostinfo') || !sameJson(before.hostinfo, hostinfo)) {
        after = { ...after, hostinfo, hostname: hostinfo.Hostname ?? after.hostname };
      }
    }
    if (after === before) return before;
    after = { ...after, updatedAt: new Date() };
    this.#nodes.set(id, after);
    this.#hooks.markDirty(after);
    if (facets.size > 0) this.#publish({ kind: 'nodeChanged', before, after, facets });
    return after;
  }

  /** Records whether the node holds a map session, and the capability version it speaks. */
  setPresence(id: NodeId, presence: Presence): void {
    const node = this.#nodes.get(id);
    if (node === undefined) return;
    const before = this.presence(id);
    if (before.online === presence.online && before.capVersion === presence.capVersion) return;
    this.#presence.set(id, presence);
    if (before.online && !presence.online) {
      const after = { ...node, lastSeen: new Date() };
      this.#nodes.set(id, after);
      this.#hooks.markDirty(after);
    }
    this.#publish({ kind: 'presenceChanged', nodeId: id, before, after: presence });
  }

  // --- policy --------------------------------------------------------------------------------

  /**
   * Replaces the policy text. With `persist` (database mode) a new version is stored with its
   * audit entry; file mode passes `persist: false`. The caller validates the text first.
   */
  setPolicy(text: string | null, actor: Actor, options: { persist: boolean }): Promise<void> {
    return this.#write(async () => {
      if (options.persist) {
        if (text === null) throw new Error('setPolicy: database mode stores text, not null');
        await this.#store.transaction(async (tx) => {
          const version = await tx.policies.save(this.id, text, actor.name);
          await this.#audit(tx, actor, 'policy.set', `policy:${version.id}`, { bytes: text.length });
        });
      }
      if (text === this.#policyText) return;
      this.#policyText = text;
      this.#publish({ kind: 'policyChanged', text });
    });
  }

  // --- settings ------------------------------------------------------------------------------

  /**
   * Changes the given settings (and device approval, a column of its own) in one transaction
   * with their audit entries; publishes the change.
   */
  updateSettings(patch: Partial<TailnetSettings>, actor: Actor, options: { deviceApproval?: boolean } = {}): Promise<TailnetSettings> {
    return this.#write(async () => {
      const before = this.#tailnet.settings;
      const changed = Object.fromEntries(Object.entries(patch).filter(([key, value]) =>
        value !== undefined && JSON.stringify(before[key as keyof TailnetSettings]) !== JSON.stringify(value)));
      const approval = options.deviceApproval !== undefined && options.deviceApproval !== this.#tailnet.deviceApproval ? options.deviceApproval : undefined;
      if (Object.keys(changed).length === 0 && approval === undefined) return before;
      const after = await this.#store.transaction(async (tx) => {
        let updated = this.#tailnet;
        if (Object.keys(changed).length > 0) updated = await tx.tailnets.updateSettings(this.id, changed);
        if (approval !== undefined) updated = await tx.tailnets.setDeviceApproval(this.id, approval);
        if (Object.keys(changed).length > 0) await this.#audit(tx, actor, 'tailnet.settings.update', `tailnet:${this.id}`, { before, after: updated.settings });
        // Device approval keeps the entry it always had.
        if (approval !== undefined) await this.#audit(tx, actor, 'tailnet.settings', `tailnet:${this.id}`, { device_approval: approval });
        return updated;
      });
      this.#tailnet = after;
      if (Object.keys(changed).length > 0) this.#publish({ kind: 'settingsChanged', before, after: after.settings });
      return after.settings;
    });
  }

  /** How long keys of new untagged devices live (0 = never): the tailnet's setting, else `configured`. */
  nodeExpiryMs(configured: number): number {
    const own = this.#tailnet.settings.nodeExpirySeconds;
    return own === null ? configured : own * 1000;
  }

  /** The tailnet's name as people read it: its display name, else its API name. */
  get displayName(): string {
    return this.#tailnet.settings.displayName || this.name;
  }

  // --- rows another instance committed (high availability, docs/ha.md) ----------------------

  /** Takes the settings another instance committed; publishes them as a local change would. */
  applyStoredSettings(row: Tailnet): void {
    this.#storedRows.applySettings(row);
  }

  /**
   * Brings a node to the row another instance committed (undefined: deleted); with `keepLive`
   * (this instance holds its map session) the live fields in memory stay.
   */
  applyStoredNode(id: NodeId, row: Node | undefined, options: { keepLive: boolean }): Promise<void> {
    return this.#storedRows.applyNode(id, row, options);
  }

  /** Brings a user to the row another instance committed (undefined: deleted). */
  applyStoredUser(id: UserId, row: User | undefined): Promise<void> {
    return this.#storedRows.applyUser(id, row);
  }

  /** Takes the policy text another instance stored. */
  applyStoredPolicy(text: string | null): Promise<void> {
    return this.#storedRows.applyPolicy(text);
  }

  /** Presence as the instances together see it; records no last-seen time, unlike setPresence. */
  applyStoredPresence(id: NodeId, presence: Presence): void {
    this.#storedRows.applyPresence(id, presence);
  }

  // --- internals -----------------------------------------------------------------------------

  /** What the modules doing part of this class's job (SCIM groups, stored rows) may use. */
  #internals(): TailnetInternals {
    return {
      store: this.#store,
      hooks: this.#hooks,
      nodes: this.#nodes,
      users: this.#users,
      presence: this.#presence,
      tailnetId: () => this.id,
      tailnet: () => this.#tailnet,
      setTailnet: (row) => { this.#tailnet = row; },
      policyText: () => this.#policyText,
      setPolicyText: (text) => { this.#policyText = text; },
      write: (fn) => this.#write(fn),
      publish: (event, origin) => this.#publish(event, origin),
      audit: (tx, actor, action, target, details) => this.#audit(tx, actor, action, target, details),
      requireUser: (id) => this.#requireUser(id),
      presenceOf: (id) => this.presence(id),
      putUser: (user) => this.#putUser(user),
      putNode: (node) => this.#putNode(node),
      dropNode: (node) => this.#dropNode(node),
      replaceUser: (before, after) => this.#replaceUser(before, after),
      dropUser: (user) => this.#dropUser(user),
      replaceNode: (before, after, origin) => this.#replaceNode(before, after, origin),
    };
  }

  #write<T>(fn: () => Promise<T>): Promise<T> {
    return this.#writes.run(fn);
  }

  #publish(event: StateEvent, origin: EventOrigin = 'local'): void {
    for (const listener of this.#listeners) listener(event, origin);
  }

  async #audit(tx: StoreTx, actor: Actor, action: string, target: string, details: Record<string, unknown>): Promise<void> {
    await tx.audit.record({ tailnetId: this.id, ...auditActor(actor), action, target, details });
  }

  #requireUser(id: UserId): User {
    const user = this.#users.get(id);
    if (user === undefined) throw stateError(StateErrors.USER_NOT_FOUND, `user ${id} not found in tailnet "${this.name}"`);
    return user;
  }

  #requireNode(id: NodeId): Node {
    const node = this.#nodes.get(id);
    if (node === undefined) throw stateError(StateErrors.NODE_NOT_FOUND, `node ${id} not found in tailnet "${this.name}"`);
    return node;
  }

  #putUser(user: User): void {
    this.#users.set(user.id, user);
    this.#usersByName.set(user.name, user.id);
  }

  /** A user's row changed: its name index follows a rename. */
  #replaceUser(before: User, after: User): void {
    if (this.#usersByName.get(before.name) === before.id) this.#usersByName.delete(before.name);
    this.#putUser(after);
  }

  #dropUser(user: User): void {
    this.#users.delete(user.id);
    if (this.#usersByName.get(user.name) === user.id) this.#usersByName.delete(user.name);
  }

  #putNode(node: Node): void {
    this.#nodes.set(node.id, node);
    this.#nodeByGivenName.set(node.givenName, node.id);
  }

  #dropNode(node: Node): void {
    this.#nodes.delete(node.id);
    this.#presence.delete(node.id);
    if (this.#nodeByGivenName.get(node.givenName) === node.id) this.#nodeByGivenName.delete(node.givenName);
  }

  #patchFor(before: Node, update: NodeUpdate): NodePatch {
    return nodePatchFor(before, update, {
      holderOfName: (name) => this.#nodeByGivenName.get(name),
      requireUser: (id) => { this.#requireUser(id); },
    });
  }

  /**
   * Applies a committed row to memory. Live fields the commit did not touch keep their
   * in-memory values: they may be newer than the row (they are persisted in batches).
   */
  #applyNodeChange(id: NodeId, patch: NodePatch, committed: Node): Node {
    const before = this.#requireNode(id);
    const after: Node = {
      ...committed,
      endpoints: patch.endpoints ?? before.endpoints,
      discoKey: patch.discoKey !== undefined ? patch.discoKey : before.discoKey,
      hostinfo: patch.hostinfo ?? before.hostinfo,
      hostname: patch.hostname ?? (patch.hostinfo ? committed.hostname : before.hostname),
      lastSeen: patch.lastSeen !== undefined ? patch.lastSeen : before.lastSeen,
    };
    this.#replaceNode(before, after, 'local');
    return after;
  }

  /**
   * A node's row changed in memory: the given-name index follows a rename, the server-wide
   * node-key index a new key, and listeners hear the changed facets.
   */
  #replaceNode(before: Node, after: Node, origin: EventOrigin): void {
    const facets = facetsBetween(before, after);
    if (before.givenName !== after.givenName && this.#nodeByGivenName.get(before.givenName) === before.id) {
      this.#nodeByGivenName.delete(before.givenName);
    }
    this.#putNode(after);
    if (before.nodeKey !== after.nodeKey) this.#hooks.onNodeKey(after, before.nodeKey);
    if (facets.size > 0) this.#publish({ kind: 'nodeChanged', before, after, facets }, origin);
  }
}

function ownerByTransfer(what: string): Error {
  return stateError(StateErrors.OWNER_BY_TRANSFER, `${what}: a tailnet has exactly one owner, and the owner role moves only by transferring ownership`);
}

async function consumePreAuthKey(tx: StoreTx, tailnetId: TailnetId, id: PreAuthKeyId): Promise<void> {
  const key = await tx.preAuthKeys.get(id);
  const now = Date.now();
  if (
    key === undefined ||
    key.tailnetId !== tailnetId ||
    key.revokedAt !== null ||
    (key.expiresAt !== null && key.expiresAt.getTime() <= now) ||
    (!key.reusable && key.usedCount > 0)
  ) {
    throw stateError(StateErrors.AUTHKEY_INVALID, 'invalid pre auth key');
  }
  // Two concurrent registrations may both have read usedCount 0; the increment serialises on
  // the row, so the later one sees 2 and rolls back.
  const used = await tx.preAuthKeys.markUsed(id);
  if (!used.reusable && used.usedCount > 1) throw stateError(StateErrors.AUTHKEY_INVALID, 'invalid pre auth key');
}

export { isTagged };
