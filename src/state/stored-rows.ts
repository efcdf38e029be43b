// Rows another instance committed (high availability, docs/ha.md): brings one tailnet's memory
// to them and publishes what changed with origin 'remote', exactly as a local write would.
import type { Node, NodeId, Tailnet, User, UserId } from '../model/index.js';
import type { Presence } from './events.js';
import type { TailnetInternals } from './tailnet-internals.js';

export class StoredRows {
  readonly #state: TailnetInternals;

  constructor(state: TailnetInternals) {
    this.#state = state;
  }

  /** Takes the settings another instance committed; publishes them as a local change would. */
  applySettings(row: Tailnet): void {
    const before = this.#state.tailnet().settings;
    this.#state.setTailnet(row);
    if (JSON.stringify(before) !== JSON.stringify(row.settings)) this.#state.publish({ kind: 'settingsChanged', before, after: row.settings }, 'remote');
  }

  /**
   * Brings a node to the row another instance committed (undefined: deleted) and publishes what
   * changed, exactly as a local write would. With `keepLive` (this instance holds the node's map
   * session, so its endpoints, disco key and hostinfo in memory are newer than the row) the live
   * fields stay.
   */
  applyNode(id: NodeId, row: Node | undefined, options: { keepLive: boolean }): Promise<void> {
    const state = this.#state;
    return state.write(async () => {
      const before = state.nodes.get(id);
      if (row === undefined) {
        if (before === undefined) return;
        state.dropNode(before);
        state.hooks.onNodeGone(before);
        state.publish({ kind: 'nodeRemoved', node: before }, 'remote');
        return;
      }
      if (before === undefined) {
        state.putNode(row);
        state.hooks.onNodeKey(row, null);
        state.publish({ kind: 'nodeAdded', node: row }, 'remote');
        return;
      }
      const after: Node = options.keepLive
        ? { ...row, endpoints: before.endpoints, discoKey: before.discoKey, hostinfo: before.hostinfo, hostname: before.hostname, lastSeen: before.lastSeen }
        : row;
      state.replaceNode(before, after, 'remote');
    });
  }

  /** Brings a user to the row another instance committed (undefined: deleted). */
  applyUser(id: UserId, row: User | undefined): Promise<void> {
    const state = this.#state;
    return state.write(async () => {
      const before = state.users.get(id);
      if (row === undefined) {
        if (before === undefined) return;
        state.dropUser(before);
        state.publish({ kind: 'userRemoved', user: before }, 'remote');
        return;
      }
      if (before === undefined) {
        state.putUser(row);
        state.publish({ kind: 'userAdded', user: row }, 'remote');
        return;
      }
      if (before.name === row.name && before.displayName === row.displayName && before.email === row.email && before.role === row.role) return;
      state.replaceUser(before, row);
      state.publish({ kind: 'userChanged', before, after: row }, 'remote');
    });
  }

  /** Takes the policy text another instance stored. */
  applyPolicy(text: string | null): Promise<void> {
    const state = this.#state;
    return state.write(async () => {
      if (text === state.policyText()) return;
      state.setPolicyText(text);
      state.publish({ kind: 'policyChanged', text }, 'remote');
    });
  }

  /**
   * Presence as the instances together see it: online while any live instance holds a map
   * session of the node. Unlike setPresence it records no last-seen time (the instance that held
   * the session writes that).
   */
  applyPresence(id: NodeId, presence: Presence): void {
    const state = this.#state;
    if (!state.nodes.has(id)) return;
    const before = state.presenceOf(id);
    if (before.online === presence.online && before.capVersion === presence.capVersion) return;
    state.presence.set(id, presence);
    state.publish({ kind: 'presenceChanged', nodeId: id, before, after: presence }, 'remote');
  }
}
