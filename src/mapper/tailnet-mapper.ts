// Builds the map messages of one tailnet: the complete netmap a new session starts with, and
// the delta a session's pending summary calls for. The expensive parts are shared: each peer's
// JSON is serialised once per change per (wire variant, view key); a message whose parts are
// all shared is compressed once per flush cycle and the same bytes go to every recipient.
import type { Node, NodeId, UserId } from '../model/index.js';
import type { TailnetState } from '../state/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { CapVer } from '../tailcfg/index.js';
import { FilterChunker } from './filter-chunks.js';
import { frameMessage, ZstdEncoder } from './frame.js';
import type { PendingDelta } from './pending-delta.js';
import type { PolicyView } from './policy-view.js';
import {
  PatchField, TAGGED_DEVICES_PROFILE, TAGGED_DEVICES_USER_ID, peerChange, peerNode, selfNode, wireUserId,
  type PatchFields, type TailNodeContext, type WireVariant,
} from './tail-node.js';

export interface DnsSource {
  /** MagicDNS suffix, e.g. `headway.internal`; also the netmap's `Domain`. */
  readonly baseDomain: string;
  configFor(node: Node): tailcfg.DNSConfig;
  /** Equal keys promise equal configs. */
  configKey(node: Node): string;
}

export interface DerpSource {
  current(): tailcfg.DERPMap;
  /** Changes whenever current() does. */
  readonly version: number;
}

/** What the mapper remembers per session between messages. */
export interface SessionMemory {
  readonly capVersion: number;
  readonly variant: WireVariant;
  /** User profiles this session's client already holds. */
  readonly sentUsers: Set<number>;
  /** The filter key of the packet filter this session's client holds; null before the first. */
  filterKey: string | null;
}

interface Field {
  readonly name: string;
  /** Names the field's content; equal keys promise equal JSON. */
  readonly key: string;
  json(): string;
}

export interface MapperStats {
  peerSerialisations: number;
  patchSerialisations: number;
  compressions: number;
  frameCacheHits: number;
}

export class TailnetMapper {
  readonly #state: TailnetState;
  readonly #policy: PolicyView;
  readonly #dns: DnsSource;
  readonly #derp: DerpSource;
  readonly #now: () => number;
  readonly #encoder = new ZstdEncoder();
  readonly #peerJson = new Map<NodeId, Map<string, string>>();
  readonly #patchJson = new Map<NodeId, Map<number, string>>();
  readonly #frames = new Map<string, Buffer>();
  readonly #chunker = new FilterChunker();
  #derpJson: { version: number; json: string } | null = null;
  readonly stats: MapperStats = { peerSerialisations: 0, patchSerialisations: 0, compressions: 0, frameCacheHits: 0 };

  constructor(deps: { state: TailnetState; policy: PolicyView; dns: DnsSource; derp: DerpSource; now?: () => number }) {
    this.#state = deps.state;
    this.#policy = deps.policy;
    this.#dns = deps.dns;
    this.#derp = deps.derp;
    this.#now = deps.now ?? Date.now;
  }

  /** Forgets a node's serialised forms; call after any change to the node or its presence. */
  invalidate(node: NodeId): void {
    this.#peerJson.delete(node);
    this.#patchJson.delete(node);
  }

  /** Forgets every node's serialised forms (policy or DNS changes alter views and names). */
  invalidateAll(): void {
    this.#peerJson.clear();
    this.#patchJson.clear();
  }

  /** Starts a flush cycle: frames shared by recipients live for one cycle. */
  beginCycle(): void {
    this.#frames.clear();
  }

  /** The complete netmap that starts a session. */
  fullMap(viewerId: NodeId, memory: SessionMemory): Buffer {
    const viewer = this.#requireNode(viewerId);
    const ctx = this.#ctx();
    const peerIds = [...this.#policy.peersOf(viewerId)].sort((a, b) => a - b);
    const peerJson: string[] = [];
    const users = new Set<number>([wireUserId(viewer)]);
    for (const id of peerIds) {
      const peer = this.#state.node(id);
      if (peer === undefined) continue;
      peerJson.push(this.#peerFragment(viewerId, peer, memory.variant, ctx));
      users.add(wireUserId(peer));
    }
    memory.sentUsers.clear();
    const fields: string[] = [
      `"Node":${JSON.stringify(this.#selfNode(viewer, memory.variant, ctx))}`,
      `"DERPMap":${this.#derpMapJson()}`,
    ];
    if (peerJson.length > 0) fields.push(`"Peers":[${peerJson.join(',')}]`);
    fields.push(`"DNSConfig":${JSON.stringify(this.#dns.configFor(viewer))}`);
    fields.push(`"Domain":${JSON.stringify(this.#dns.baseDomain)}`);
    fields.push(this.#fullFilterField(viewerId, memory));
    fields.push(`"UserProfiles":${this.#profilesJson(users, memory)}`);
    const ssh = this.#policy.sshPolicyFor(viewerId);
    fields.push(`"SSHPolicy":${JSON.stringify(ssh ?? { rules: [] })}`);
    fields.push('"CollectServices":false');
    fields.push(`"ControlTime":${JSON.stringify(new Date(ctx.nowMs).toISOString())}`);
    fields.push('"Debug":{"DisableLogTail":true}');
    return this.#encode(`{${fields.join(',')}}`);
  }

  /**
   * The message a session's pending summary calls for, or null when nothing is left to say
   * (e.g. a patch for a peer the viewer no longer sees). Clears `pending`.
   */
  delta(viewerId: NodeId, pending: PendingDelta, memory: SessionMemory): Buffer | null {
    if (pending.resync) {
      pending.clear();
      return this.fullMap(viewerId, memory);
    }
    const viewer = this.#requireNode(viewerId);
    const ctx = this.#ctx();
    const fields: Field[] = [];
    if (pending.selfChanged) {
      fields.push(this.#onceField('Node', `N${viewerId}`, JSON.stringify(this.#selfNode(viewer, memory.variant, ctx))));
    }
    if (pending.derpMapChanged) {
      fields.push({ name: 'DERPMap', key: `D${this.#derp.version}`, json: () => this.#derpMapJson() });
    }

    const removed: NodeId[] = [];
    const changed: Array<{ id: NodeId; key: string; node: Node }> = [];
    const patches: Array<{ id: NodeId; fields: PatchFields }> = [];
    const online: Array<{ id: NodeId; online: boolean }> = [];
    const newUsers = new Set<number>();
    for (const [peerId, mark] of pending.peers()) {
      const peer = this.#state.node(peerId);
      if (mark.kind === 'removed' || peer === undefined || !this.#policy.sees(viewerId, peerId)) {
        removed.push(peerId);
        continue;
      }
      if (mark.kind === 'full') {
        changed.push({ id: peerId, key: this.#policy.peerViewKey(viewerId, peerId), node: peer });
        const user = wireUserId(peer);
        if (!memory.sentUsers.has(user)) newUsers.add(user);
      } else if (mark.fields === PatchField.Online) {
        online.push({ id: peerId, online: this.#state.presence(peerId).online });
      } else {
        patches.push({ id: peerId, fields: mark.fields });
      }
    }
    if (removed.length > 0) {
      removed.sort((a, b) => a - b);
      const json = `[${removed.join(',')}]`;
      fields.push({ name: 'PeersRemoved', key: `R${json}`, json: () => json });
    }
    if (changed.length > 0) {
      changed.sort((a, b) => a.id - b.id);
      const key = changed.map((c) => `${c.id}:${c.key}`).join(',');
      fields.push({
        name: 'PeersChanged',
        key: `C${memory.variant}:${key}`,
        json: () => `[${changed.map((c) => this.#peerFragment(viewerId, c.node, memory.variant, ctx)).join(',')}]`,
      });
    }
    if (patches.length > 0) {
      patches.sort((a, b) => a.id - b.id);
      const key = patches.map((p) => `${p.id}:${p.fields}`).join(',');
      fields.push({
        name: 'PeersChangedPatch',
        key: `P${memory.variant}:${key}`,
        json: () => `[${patches.map((p) => this.#patchFragment(p.id, p.fields, memory.variant, ctx)).join(',')}]`,
      });
    }
    if (online.length > 0) {
      const onlineChange: Record<string, boolean> = {};
      const seenChange: Record<string, boolean> = {};
      for (const o of online) {
        onlineChange[o.id] = o.online;
        if (!o.online) seenChange[o.id] = true;
      }
      const onlineJson = JSON.stringify(onlineChange);
      fields.push({ name: 'OnlineChange', key: `O${onlineJson}`, json: () => onlineJson });
      if (Object.keys(seenChange).length > 0) {
        const seenJson = JSON.stringify(seenChange);
        fields.push({ name: 'PeerSeenChange', key: `S${seenJson}`, json: () => seenJson });
      }
    }
    if (pending.dnsChanged) {
      fields.push({ name: 'DNSConfig', key: `d${this.#dns.configKey(viewer)}`, json: () => JSON.stringify(this.#dns.configFor(viewer)) });
    }
    if (pending.filterChanged) {
      const field = this.#filterDelta(viewerId, memory);
      if (field !== null) fields.push(field);
    }
    if (newUsers.size > 0) {
      const ids = [...newUsers].sort((a, b) => a - b);
      fields.push({ name: 'UserProfiles', key: `U${ids.join(',')}`, json: () => this.#profilesJson(newUsers, memory) });
      for (const id of ids) memory.sentUsers.add(id);
    }
    if (pending.sshChanged) {
      const ssh = this.#policy.sshPolicyFor(viewerId);
      const json = JSON.stringify(ssh ?? { rules: [] });
      fields.push({ name: 'SSHPolicy', key: `H${json.length}:${json}`, json: () => json });
    }
    pending.clear();
    if (fields.length === 0) return null;

    const signature = fields.map((f) => `${f.name}=${f.key}`).join('|');
    const cached = this.#frames.get(signature);
    if (cached !== undefined) {
      this.stats.frameCacheHits++;
      return cached;
    }
    const frame = this.#encode(`{${fields.map((f) => `"${f.name}":${f.json()}`).join(',')}}`);
    this.#frames.set(signature, frame);
    return frame;
  }

  /** `{"KeepAlive":true}`, framed; the same bytes for everyone. */
  keepAlive(): Buffer {
    return KEEP_ALIVE_FRAME;
  }

  // --- pieces --------------------------------------------------------------------------------

  #ctx(): TailNodeContext {
    return { baseDomain: this.#dns.baseDomain, nowMs: this.#now() };
  }

  #requireNode(id: NodeId): Node {
    const node = this.#state.node(id);
    if (node === undefined) throw new Error(`mapper: node ${id} is not in tailnet "${this.#state.name}"`);
    return node;
  }

  #selfNode(node: Node, variant: WireVariant, ctx: TailNodeContext): tailcfg.Node {
    return selfNode(node, this.#state.presence(node.id), this.#policy.selfView(node.id), variant, ctx);
  }

  #peerFragment(viewerId: NodeId, peer: Node, variant: WireVariant, ctx: TailNodeContext): string {
    const viewKey = this.#policy.peerViewKey(viewerId, peer.id);
    let forms = this.#peerJson.get(peer.id);
    if (forms === undefined) this.#peerJson.set(peer.id, (forms = new Map()));
    const cacheKey = `${variant}|${viewKey}`;
    let json = forms.get(cacheKey);
    if (json === undefined) {
      const view = this.#policy.peerView(viewerId, peer.id);
      json = JSON.stringify(peerNode(peer, this.#state.presence(peer.id), view, variant, ctx));
      forms.set(cacheKey, json);
      this.stats.peerSerialisations++;
    }
    return json;
  }

  #patchFragment(peerId: NodeId, fields: PatchFields, variant: WireVariant, ctx: TailNodeContext): string {
    const peer = this.#requireNode(peerId);
    let forms = this.#patchJson.get(peerId);
    if (forms === undefined) this.#patchJson.set(peerId, (forms = new Map()));
    const cacheKey = fields * 4 + variant;
    let json = forms.get(cacheKey);
    if (json === undefined) {
      json = JSON.stringify(peerChange(peer, this.#state.presence(peerId), fields, variant, ctx.nowMs));
      forms.set(cacheKey, json);
      this.stats.patchSerialisations++;
    }
    return json;
  }

  /** The whole filter for a new netmap: named chunks from capver 81, else one list. */
  #fullFilterField(viewerId: NodeId, memory: SessionMemory): string {
    const key = this.#policy.filterKey(viewerId);
    memory.filterKey = key;
    if (memory.capVersion >= CapVer.PacketFilters) {
      const set = this.#chunker.chunks(key, () => this.#policy.filterFor(viewerId));
      return `"PacketFilters":${FilterChunker.fullJson(set, false)}`;
    }
    return `"PacketFilter":${JSON.stringify(this.#policy.filterFor(viewerId))}`;
  }

  /**
   * What the client needs to go from the filter it holds to the current one: the changed
   * chunks only (capver 81+), or the whole list. Sessions moving between the same two filters
   * get the same message, built once.
   */
  #filterDelta(viewerId: NodeId, memory: SessionMemory): Field | null {
    const before = memory.filterKey;
    const after = this.#policy.filterKey(viewerId);
    if (before === after) return null;
    memory.filterKey = after;
    if (memory.capVersion < CapVer.PacketFilters) {
      return { name: 'PacketFilter', key: `F${after}`, json: () => JSON.stringify(this.#policy.filterFor(viewerId)) };
    }
    const previous = before === null ? undefined : this.#chunker.cached(before);
    const next = this.#chunker.chunks(after, () => this.#policy.filterFor(viewerId));
    if (previous === undefined) {
      return { name: 'PacketFilters', key: `F!${after}`, json: () => FilterChunker.fullJson(next, true) };
    }
    return { name: 'PacketFilters', key: `F${before}>${after}`, json: () => FilterChunker.deltaJson(previous, next) };
  }

  #derpMapJson(): string {
    const version = this.#derp.version;
    if (this.#derpJson === null || this.#derpJson.version !== version) {
      this.#derpJson = { version, json: JSON.stringify(this.#derp.current()) };
    }
    return this.#derpJson.json;
  }

  #profilesJson(userIds: Iterable<number>, memory: SessionMemory): string {
    const profiles: tailcfg.UserProfile[] = [];
    for (const id of [...userIds].sort((a, b) => a - b)) {
      memory.sentUsers.add(id);
      if (id === TAGGED_DEVICES_USER_ID) {
        profiles.push(TAGGED_DEVICES_PROFILE);
        continue;
      }
      const user = this.#state.user(id as UserId);
      if (user === undefined) continue;
      profiles.push({ ID: user.id, LoginName: user.email !== '' ? user.email : user.name, DisplayName: user.displayName !== '' ? user.displayName : user.name });
    }
    return JSON.stringify(profiles);
  }

  #onceField(name: string, key: string, json: string): Field {
    return { name, key: `${key}:${json}`, json: () => json };
  }

  #encode(json: string): Buffer {
    this.stats.compressions++;
    return frameMessage([this.#encoder.frame(Buffer.from(json))]);
  }
}

const KEEP_ALIVE_FRAME = frameMessage([new ZstdEncoder().frame(Buffer.from('{"KeepAlive":true}'))]);
