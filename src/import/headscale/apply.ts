// Writing a headscale snapshot into a Headway tailnet, in one store transaction. Matching is by
// identity so that a second run adds nothing: users by name, nodes by node key, carried pre-auth
// keys by their `hs:` prefix, the policy by its text. A dry run does the same work and rolls back,
// so it finds the same conflicts the real run would.
import type { Node, PreAuthKeyId, RegisterMethod, TailnetId, User, UserId } from '../../model/index.js';
import { PolicyError, parsePolicy } from '../../policy/index.js';
import { headscaleLegacyKeyPrefix, type Store, type StoreTx } from '../../store/index.js';
import { HeadwayError } from '../../util/headway-error.js';
import { parsePrefix, prefixContains, tryParseIP } from '../../util/ip.js';
import { ImportErrors, importError } from '../errors.js';
import type { HeadscaleNode, HeadscalePreAuthKey, HeadscaleSnapshot, HeadscaleUser } from './source.js';

export interface ApplyOptions {
  tailnet: string;
  /** Headway's prefixes.v4 / prefixes.v6; imported addresses must lie inside them. */
  prefixes: { v4: string | null; v6: string | null };
  /** The policy to store (from --policy, headscale's policy file, or its database), or null. */
  policy: { text: string; source: string } | null;
  merge: boolean;
  dryRun: boolean;
  actor: string;
}

export interface NotCarried {
  what: string;
  reason: string;
}

export interface ImportReport {
  source: string;
  headscaleRelease: string;
  tailnet: string;
  dryRun: boolean;
  users: { created: string[]; alreadyPresent: string[] };
  nodes: { created: string[]; alreadyPresent: string[]; renamed: Array<{ from: string; to: string }> };
  preAuthKeys: { carried: number; alreadyPresent: number };
  policy: 'stored' | 'unchanged' | 'none';
  notCarried: NotCarried[];
}

class DryRunDone extends Error {
  constructor(readonly report: ImportReport) {
    super('dry run');
  }
}

const REGISTER_METHODS: Record<string, RegisterMethod> = { authkey: 'authkey', oidc: 'interactive', cli: 'cli' };

/** Imports `snapshot` into the tailnet; throws HW_IMPORT_* with nothing written on any problem. */
export async function applyHeadscaleSnapshot(store: Store, snapshot: HeadscaleSnapshot, options: ApplyOptions): Promise<ImportReport> {
  if (options.policy !== null) {
    try {
      parsePolicy(options.policy.text, { file: options.policy.source });
    } catch (err) {
      if (err instanceof PolicyError) throw importError(ImportErrors.invalidPolicy, `${options.policy.source}: ${err.message}`, err);
      throw err;
    }
  }
  try {
    return await store.transaction(async (tx) => {
      const report = await new Importer(tx, snapshot, options).run();
      if (options.dryRun) throw new DryRunDone(report);
      return report;
    });
  } catch (err) {
    if (err instanceof DryRunDone) return err.report;
    throw err;
  }
}

class Importer {
  readonly #tx: StoreTx;
  readonly #snapshot: HeadscaleSnapshot;
  readonly #options: ApplyOptions;
  readonly #report: ImportReport;
  readonly #userIds = new Map<number, UserId>();
  readonly #keyIds = new Map<number, PreAuthKeyId>();

  constructor(tx: StoreTx, snapshot: HeadscaleSnapshot, options: ApplyOptions) {
    this.#tx = tx;
    this.#snapshot = snapshot;
    this.#options = options;
    this.#report = {
      source: snapshot.where,
      headscaleRelease: snapshot.release,
      tailnet: options.tailnet,
      dryRun: options.dryRun,
      users: { created: [], alreadyPresent: [] },
      nodes: { created: [], alreadyPresent: [], renamed: [] },
      preAuthKeys: { carried: 0, alreadyPresent: 0 },
      policy: 'none',
      notCarried: [],
    };
  }

  async run(): Promise<ImportReport> {
    const tailnet = (await this.#tx.tailnets.getByName(this.#options.tailnet)) ?? (await this.#tx.tailnets.create(this.#options.tailnet));
    const userNames = this.#userNames();
    const existingUsers = await this.#tx.users.list(tailnet.id);
    const existingNodes = await this.#tx.nodes.list(tailnet.id);
    this.#refuseForeignData(existingUsers, existingNodes, new Set(userNames.values()));

    for (const user of this.#snapshot.users) await this.#importUser(tailnet.id, user, userNames.get(user.id)!, existingUsers);
    for (const key of this.#snapshot.preAuthKeys) await this.#importPreAuthKey(tailnet.id, key);
    for (const node of this.#snapshot.nodes) await this.#importNode(tailnet.id, node);
    await this.#importPolicy(tailnet.id);
    if (this.#snapshot.apiKeyCount > 0) {
      this.#report.notCarried.push({
        what: `${this.#snapshot.apiKeyCount} API key${this.#snapshot.apiKeyCount === 1 ? '' : 's'}`,
        reason: 'headscale stores only a bcrypt hash of API keys; create new ones with `headway apikeys create`',
      });
    }
    await this.#tx.audit.record({
      tailnetId: tailnet.id,
      actor: this.#options.actor,
      action: 'import.headscale',
      target: this.#snapshot.where,
      details: {
        release: this.#snapshot.release,
        usersCreated: this.#report.users.created.length,
        nodesCreated: this.#report.nodes.created.length,
        preAuthKeysCarried: this.#report.preAuthKeys.carried,
        policy: this.#report.policy,
      },
    });
    return this.#report;
  }

  /**
   * headscale lets an OIDC user share a name with a local one; Headway names are unique per
   * tailnet, so later namesakes get `-<headscale id>` (stable, so a rerun finds them again).
   */
  #userNames(): Map<number, string> {
    const names = new Map<number, string>();
    const taken = new Set<string>();
    for (const user of this.#snapshot.users) {
      const name = taken.has(user.name) ? `${user.name}-${user.id}` : user.name;
      taken.add(name);
      names.set(user.id, name);
    }
    return names;
  }

  #refuseForeignData(users: readonly User[], nodes: readonly Node[], importedNames: ReadonlySet<string>): void {
    if (this.#options.merge) return;
    const sourceNodeKeys = new Set(this.#snapshot.nodes.map((n) => n.nodeKey));
    const foreignUsers = users.filter((u) => !importedNames.has(u.name));
    const foreignNodes = nodes.filter((n) => !sourceNodeKeys.has(n.nodeKey));
    if (foreignUsers.length === 0 && foreignNodes.length === 0) return;
    const sample = [...foreignUsers.map((u) => `user "${u.name}"`), ...foreignNodes.map((n) => `node "${n.givenName}"`)].slice(0, 3).join(', ');
    throw importError(
      ImportErrors.tailnetNotEmpty,
      `tailnet "${this.#options.tailnet}" already has ${foreignUsers.length} user(s) and ${foreignNodes.length} node(s) that are not in ${this.#snapshot.where} (${sample}); pass --merge to import next to them`,
    );
  }

  async #importUser(tailnetId: TailnetId, user: HeadscaleUser, name: string, existing: readonly User[]): Promise<void> {
    const present = existing.find((u) => u.name === name);
    if (present !== undefined) {
      this.#userIds.set(user.id, present.id);
      this.#report.users.alreadyPresent.push(name);
      return;
    }
    const created = await this.#tx.users.create({ tailnetId, name, displayName: user.displayName, email: user.email });
    this.#userIds.set(user.id, created.id);
    this.#report.users.created.push(name);
  }

  async #importPreAuthKey(tailnetId: TailnetId, key: HeadscalePreAuthKey): Promise<void> {
    const what = `pre-auth key ${key.id}${key.prefix !== null ? ` (${key.prefix})` : ''}`;
    const skip = (reason: string) => this.#report.notCarried.push({ what, reason });
    if (key.secret === null) return void skip("headscale keeps only a bcrypt hash of it; create a new key with `headway preauthkeys create`");
    const prefix = headscaleLegacyKeyPrefix(key.secret);
    if (prefix === undefined) return void skip('its text is not a headscale key of 48 hex digits');
    if (key.expiration !== null && key.expiration.getTime() <= Date.now()) return void skip('it has expired');
    if (key.used && !key.reusable) return void skip('it was single-use and has been used');
    const userId = key.userId === null ? null : this.#userIds.get(key.userId) ?? null;
    if (userId === null && key.tags.length === 0) return void skip('it belongs to no user and carries no tags');
    const present = await this.#tx.preAuthKeys.getByPrefix(prefix);
    if (present !== undefined) {
      this.#keyIds.set(key.id, present.id);
      this.#report.preAuthKeys.alreadyPresent += 1;
      return;
    }
    const created = await this.#tx.preAuthKeys.createImported({
      tailnetId,
      userId,
      reusable: key.reusable,
      ephemeral: key.ephemeral,
      tags: [...new Set(key.tags)].sort(),
      expiresAt: key.expiration,
      secret: key.secret,
      usedCount: key.used ? 1 : 0,
      createdAt: key.createdAt,
    });
    this.#keyIds.set(key.id, created.id);
    this.#report.preAuthKeys.carried += 1;
  }

  #checkInsidePrefixes(node: HeadscaleNode): void {
    for (const [address, prefix, setting] of [[node.ipv4, this.#options.prefixes.v4, 'prefixes.v4'], [node.ipv6, this.#options.prefixes.v6, 'prefixes.v6']] as const) {
      if (address === null) continue;
      if (prefix === null || !prefixContains(parsePrefix(prefix), tryParseIP(address)!)) {
        throw importError(
          ImportErrors.addressOutsidePrefixes,
          `${this.#snapshot.where}: node ${node.id} ("${node.givenName}") has ${address}, outside Headway's ${setting} (${prefix ?? 'not set'})`,
        );
      }
    }
  }

  async #importNode(tailnetId: TailnetId, node: HeadscaleNode): Promise<void> {
    const label = `node ${node.id} ("${node.givenName}")`;
    const known = await this.#tx.nodes.getByNodeKey(node.nodeKey);
    if (known !== undefined) {
      if (known.tailnetId !== tailnetId || known.machineKey !== node.machineKey) {
        throw importError(ImportErrors.conflict, `${this.#snapshot.where}: ${label}: its node key is already used by Headway node ${known.id} ("${known.givenName}") of another machine or tailnet`);
      }
      this.#report.nodes.alreadyPresent.push(known.givenName);
      return;
    }
    this.#checkInsidePrefixes(node);
    for (const other of await this.#tx.nodes.list(tailnetId)) {
      const clash = (node.ipv4 !== null && other.ipv4 === node.ipv4) ? node.ipv4 : (node.ipv6 !== null && other.ipv6 === node.ipv6) ? node.ipv6 : null;
      if (clash !== null) {
        throw importError(ImportErrors.conflict, `${this.#snapshot.where}: ${label}: address ${clash} is already used by Headway node ${other.id} ("${other.givenName}")`);
      }
    }
    const userId = node.userId === null ? null : this.#userIds.get(node.userId);
    if (userId === undefined) throw importError(ImportErrors.badSourceRow, `${this.#snapshot.where}: ${label}: its user ${String(node.userId)} does not exist (deleted?)`);
    if (userId === null && node.tags.length === 0) throw importError(ImportErrors.badSourceRow, `${this.#snapshot.where}: ${label}: it has neither a user nor tags`);
    let givenName = node.givenName;
    if (await this.#tx.nodes.givenNameTaken(tailnetId, givenName)) {
      givenName = `${node.givenName}-hs${node.id}`;
      this.#report.nodes.renamed.push({ from: node.givenName, to: givenName });
    }
    const authKey = node.authKeyId === null ? undefined : this.#snapshot.preAuthKeys.find((k) => k.id === node.authKeyId);
    try {
      const created = await this.#tx.nodes.create({
        tailnetId,
        machineKey: node.machineKey,
        nodeKey: node.nodeKey,
        discoKey: node.discoKey,
        ipv4: node.ipv4,
        ipv6: node.ipv6,
        hostname: node.hostname || node.givenName,
        givenName,
        userId,
        tags: node.tags,
        advertisedRoutes: node.advertisedRoutes,
        approvedRoutes: node.approvedRoutes,
        endpoints: node.endpoints,
        hostinfo: node.hostinfo,
        keyExpiry: node.expiry,
        ephemeral: authKey?.ephemeral ?? false,
        registerMethod: REGISTER_METHODS[node.registerMethod] ?? 'cli',
        preAuthKeyId: node.authKeyId === null ? null : this.#keyIds.get(node.authKeyId) ?? null,
      });
      if (node.lastSeen !== null) {
        await this.#tx.nodes.updateLive([{ id: created.id, endpoints: node.endpoints, discoKey: node.discoKey, hostinfo: node.hostinfo, lastSeen: node.lastSeen }]);
      }
    } catch (err) {
      if (err instanceof HeadwayError && err.status === 409) throw importError(ImportErrors.conflict, `${this.#snapshot.where}: ${label}: ${err.message}`, err);
      throw err;
    }
    this.#report.nodes.created.push(givenName);
  }

  async #importPolicy(tailnetId: TailnetId): Promise<void> {
    const policy = this.#options.policy;
    if (policy === null) return;
    const latest = await this.#tx.policies.latest(tailnetId);
    if (latest?.text === policy.text) {
      this.#report.policy = 'unchanged';
      return;
    }
    await this.#tx.policies.save(tailnetId, policy.text, this.#options.actor);
    this.#report.policy = 'stored';
  }
}
