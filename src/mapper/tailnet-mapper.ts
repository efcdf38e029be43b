// Builds the map messages of one tailnet: the complete netmap a new session starts with, and
// the delta a session's pending summary calls for. The expensive parts are shared: each peer's
// JSON is serialised once per change per (wire variant, view key); a message whose parts are
// all shared is compressed once per flush cycle and the same bytes go to every recipient.
import type { Node, NodeId, UserId } from '../model/index.js';
import type { TailnetState } from '../state/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { CapVer } from '../tailcfg/index.js';
import { sameNumbers } from '../util/index.js';
import { FilterChunker } from './filter-chunks.js';
import { frameMessage, ZstdEncoder } from './frame.js';
import { BlockRenderings, PEER_BLOCK, ProfileLists, type BlockRendering } from './netmap-caches.js';
import { MARK_FULL, MARK_REMOVED, type PendingDelta, type UnmergedPresence } from './pending-delta.js';
import type { FilterForm, PolicyView } from './policy-view.js';
import {
  PatchField, TAGGED_DEVICES_PROFILE, TAGGED_DEVICES_USER_ID, peerChange, peerNode, selfNode, usesSourceCaps, wireUserId,
  type PatchFields, type TailNodeContext, type WireVariant,
} from './tail-node.js';

function filterFormOf(memory: SessionMemory): FilterForm {
  return usesSourceCaps(memory.variant) ? 'caps' : 'ips';
}

const MAX_CACHED_FRAGMENTS = 65_536;

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
  /** The last single-patch frame of this cycle: most recipients of an event ask for the same. */
  #lastPatch: { peer: NodeId; fields: number; variant: WireVariant; frame: Buffer } | null = null;
  /** The last frame of this cycle built from Online marks (and one patch), with those marks. */
  #lastPresence: { marks: UnmergedPresence; variant: WireVariant; frame: Buffer } | null = null;
  /** Compressed fragments shared by full netmaps: peer blocks, DERP map, filters. */
  readonly #fragmentFrames = new Map<string, Buffer>();
  readonly #blocks = new BlockRenderings();
  readonly #profileLists = new ProfileLists();
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
    this.#blocks.dropBlockOf(node);
  }

  /** Forgets the shared UserProfiles lists; call when a user is added, changed or removed. */
  invalidateUsers(): void {
    this.#profileLists.clear();
  }

  /** Forgets every node's serialised forms (policy or DNS changes alter views and names). */
  invalidateAll(): void {
    this.#peerJson.clear();
    this.#patchJson.clear();
    this.#fragmentFrames.clear();
    this.#blocks.clear();
    this.invalidateUsers();
  }

  /** Starts a flush cycle: frames shared by recipients live for one cycle. */
  beginCycle(): void {
    this.#frames.clear();
    this.#lastPatch = null;
    this.#lastPresence = null;
  }

  /**
   * The complete netmap that starts a session. Big parts come from caches of compressed zstd
   * frames that every session shares: the peers in blocks of consecutive node ids (viewers
   * with the same peers in a block share it; a change to one peer rebuilds one block), the
   * DERP map, and the packet filter. A reconnect storm then costs a lookup and a copy per block
   * instead of serialising and compressing every peer for every client.
   */
  fullMap(viewerId: NodeId, memory: SessionMemory): Buffer {
    const viewer = this.#requireNode(viewerId);
    const ctx = this.#ctx();
    const peerIds = ascending(this.#policy.peersOf(viewerId));
    const users = new Set<number>([wireUserId(viewer)]);
    memory.sentUsers.clear();
    const parts: Array<string | Buffer> = [
      `{"Node":${JSON.stringify(this.#selfNode(viewer, memory.variant, ctx))},"DERPMap":`,
      this.#cachedFrame(`D${this.#derp.version}`, () => this.#derpMapJson()),
    ];
    let first = true;
    const members: NodeId[] = [];
    const viewKeys: string[] = [];
    for (let i = 0; i < peerIds.length; ) {
      const block = Math.floor(peerIds[i]! / PEER_BLOCK);
      members.length = 0;
      viewKeys.length = 0;
      for (; i < peerIds.length && Math.floor(peerIds[i]! / PEER_BLOCK) === block; i++) {
        members.push(peerIds[i]!);
        viewKeys.push(this.#policy.peerViewKey(viewerId, peerIds[i]!));
      }
      const rendering = this.#blockRendering(block, viewerId, members, viewKeys, memory.variant, ctx);
      if (rendering.frame === null) continue;
      for (const user of rendering.users) users.add(user);
      parts.push(first ? ',"Peers":[' : ',');
      first = false;
      parts.push(rendering.frame);
    }
    if (!first) parts.push(']');
    parts.push(`,"DNSConfig":${JSON.stringify(this.#dns.configFor(viewer))},"Domain":${JSON.stringify(this.#dns.baseDomain)},`);
    parts.push(...this.#fullFilterParts(viewerId, memory));
    const ssh = this.#policy.sshPolicyFor(viewerId);
    parts.push(',"UserProfiles":', this.#profileListFrame(users, memory));
    parts.push(`,"SSHPolicy":${JSON.stringify(ssh ?? { rules: [] })},` +
      `"CollectServices":false,"ControlTime":${JSON.stringify(new Date(ctx.nowMs).toISOString())},"Debug":{"DisableLogTail":true}}`);
    return this.#encodeParts(parts);
  }

  /**
   * The block's compressed rendering for these members and view keys, built on first need.
   * Its frame is null when none of the members is in the state (never in practice: the
   * policy and the state change together).
   */
  #blockRendering(block: number, viewerId: NodeId, members: readonly NodeId[], viewKeys: readonly string[], variant: WireVariant, ctx: TailNodeContext): BlockRendering {
    const cached = this.#blocks.find(block, variant, members, viewKeys);
    if (cached !== undefined) {
      this.stats.frameCacheHits++;
      return cached;
    }
    const users: number[] = [];
    const fragments: string[] = [];
    for (const id of members) {
      const peer = this.#state.node(id);
      if (peer === undefined) continue;
      const user = wireUserId(peer);
      if (!users.includes(user)) users.push(user);
      fragments.push(this.#peerFragment(viewerId, peer, variant, ctx));
    }
    let frame: Buffer | null = null;
    if (fragments.length > 0) {
      this.stats.compressions++;
      frame = this.#encoder.frame(Buffer.from(fragments.join(',')));
    }
    const rendering: BlockRendering = { variant, ids: [...members], viewKeys: [...viewKeys], users, frame };
    this.#blocks.add(block, rendering);
    return rendering;
  }

  /** The compressed UserProfiles list of `userIds`, shared by netmaps listing the same users. */
  #profileListFrame(userIds: ReadonlySet<number>, memory: SessionMemory): Buffer {
    const ids = [...userIds].sort((a, b) => a - b);
    for (const id of ids) memory.sentUsers.add(id);
    const { frame, hit } = this.#profileLists.get(ids, () => {
      this.stats.compressions++;
      return this.#encoder.frame(Buffer.from(this.#profilesJsonOf(ids)));
    });
    if (hit) this.stats.frameCacheHits++;
    return frame;
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
    // Peers coming online or going offline, perhaps with one change riding along: in a storm
    // thousands of sessions hold the same hundreds of marks; compared as given, they share one
    // frame instead of each merging, sorting and serialising its own.
    const presence = pending.onlyPeers ? pending.unmergedPresence() : null;
    if (presence !== null) {
      const shared = this.#sharedPresence(viewerId, presence, memory);
      if (shared !== undefined) {
        pending.clear();
        return shared;
      }
    }
    // The common case, one peer's endpoints or DERP region for many recipients: its frame is
    // built once per cycle, so each recipient costs a visibility check and a lookup.
    if (pending.peerCount === 1 && pending.onlyPeers) {
      const fast = this.#singlePatch(viewerId, pending, memory);
      if (fast !== undefined) return fast;
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
    const online: NodeId[] = [];
    const newUsers = new Set<number>();
    pending.forEachMark((peerId, mark) => {
      const peer = this.#state.node(peerId);
      if (mark === MARK_REMOVED || peer === undefined || !this.#policy.sees(viewerId, peerId)) {
        removed.push(peerId);
      } else if (mark === MARK_FULL) {
        changed.push({ id: peerId, key: this.#policy.peerViewKey(viewerId, peerId), node: peer });
        const user = wireUserId(peer);
        if (!memory.sentUsers.has(user)) newUsers.add(user);
      } else if (mark === PatchField.Online) {
        online.push(peerId);
      } else {
        patches.push({ id: peerId, fields: mark });
      }
    });
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
      // Written directly: an object with numeric keys per recipient was a storm's hot spot.
      // JSON.stringify would list integer keys in ascending order; so does this.
      online.sort((a, b) => a - b);
      let onlineJson = '';
      let seenJson = '';
      for (const id of online) {
        const isOnline = this.#state.presence(id).online;
        onlineJson += `${onlineJson === '' ? '{' : ','}"${id}":${isOnline}`;
        if (!isOnline) seenJson += `${seenJson === '' ? '{' : ','}"${id}":true`;
      }
      onlineJson += '}';
      fields.push({ name: 'OnlineChange', key: `O${onlineJson}`, json: () => onlineJson });
      if (seenJson !== '') {
        seenJson += '}';
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
    let frame = this.#frames.get(signature);
    if (frame !== undefined) {
      this.stats.frameCacheHits++;
    } else {
      frame = this.#encode(`{${fields.map((f) => `"${f.name}":${f.json()}`).join(',')}}`);
      this.#frames.set(signature, frame);
    }
    // Only a viewer that saw every marked peer says what the next viewer of the same marks is owed.
    if (presence !== null && removed.length === 0) this.#lastPresence = { marks: presence, variant: memory.variant, frame };
    return frame;
  }

  /** The frame of the last viewer given the same marks, if this viewer sees every marked peer too. */
  #sharedPresence(viewerId: NodeId, marks: UnmergedPresence, memory: SessionMemory): Buffer | undefined {
    const last = this.#lastPresence;
    if (last === null || last.variant !== memory.variant || last.marks.peer !== marks.peer || last.marks.mark !== marks.mark) return undefined;
    if (!sameNumbers(last.marks.online, marks.online)) return undefined;
    if (marks.peer !== null && !this.#policy.sees(viewerId, marks.peer)) return undefined;
    for (const peer of marks.online) if (!this.#policy.sees(viewerId, peer)) return undefined;
    this.stats.frameCacheHits++;
    return last.frame;
  }

  /** The frame for a single pending patch mark; undefined when the general path must decide. */
  #singlePatch(viewerId: NodeId, pending: PendingDelta, memory: SessionMemory): Buffer | null | undefined {
    const peerId = pending.onlyPeerId;
    if (peerId === null) return undefined;
    const fields = pending.onlyPeerMark;
    if (fields <= 0 || fields === PatchField.Online) return undefined;
    pending.clear();
    return this.patchFrame(viewerId, peerId, fields, memory.variant);
  }

  /**
   * The message for one patch mark (`fields`: patch field bits, not Online alone) of `peerId`
   * for `viewerId`, or null when the viewer does not see the peer (any more). Built once per
   * cycle and shared; the session hub calls it for the marks it holds itself (see SessionHub).
   */
  patchFrame(viewerId: NodeId, peerId: NodeId, fields: PatchFields, variant: WireVariant): Buffer | null {
    if (!this.#policy.sees(viewerId, peerId) || this.#state.node(peerId) === undefined) return null;
    const last = this.#lastPatch;
    if (last !== null && last.peer === peerId && last.fields === fields && last.variant === variant) {
      this.stats.frameCacheHits++;
      return last.frame;
    }
    const signature = `PeersChangedPatch=P${variant}:${peerId}:${fields}`;
    const cached = this.#frames.get(signature);
    if (cached !== undefined) this.stats.frameCacheHits++;
    const frame = cached ?? this.#encode(`{"PeersChangedPatch":[${this.#patchFragment(peerId, fields, variant, this.#ctx())}]}`);
    this.#frames.set(signature, frame);
    this.#lastPatch = { peer: peerId, fields, variant, frame };
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
      const sourceCaps = usesSourceCaps(variant) ? this.#policy.sourceCapsOf(peer.id) : [];
      json = JSON.stringify(peerNode(peer, this.#state.presence(peer.id), view, variant, ctx, sourceCaps));
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

  /** The whole filter for a new netmap (named chunks from capver 81, else one list), cached compressed. */
  #fullFilterParts(viewerId: NodeId, memory: SessionMemory): Array<string | Buffer> {
    const form = filterFormOf(memory);
    const key = this.#policy.filterKey(viewerId, form);
    memory.filterKey = key;
    if (memory.capVersion >= CapVer.PacketFilters) {
      return ['"PacketFilters":', this.#cachedFrame(`F${key}`, () => FilterChunker.fullJson(this.#chunker.chunks(key, () => this.#policy.filterFor(viewerId, form)), false))];
    }
    return ['"PacketFilter":', this.#cachedFrame(`L${key}`, () => JSON.stringify(this.#policy.filterFor(viewerId, form)))];
  }

  /** A compressed frame of `json()`, built once per key and shared by every message. */
  #cachedFrame(key: string, json: () => string): Buffer {
    let frame = this.#fragmentFrames.get(key);
    if (frame === undefined) {
      if (this.#fragmentFrames.size >= MAX_CACHED_FRAGMENTS) this.#fragmentFrames.clear();
      frame = this.#encoder.frame(Buffer.from(json()));
      this.#fragmentFrames.set(key, frame);
      this.stats.compressions++;
    }
    return frame;
  }

  /** Frames a message from strings (compressed together) and precompressed frames. */
  #encodeParts(parts: ReadonlyArray<string | Buffer>): Buffer {
    const frames: Buffer[] = [];
    let text = '';
    for (const part of parts) {
      if (typeof part === 'string') {
        text += part;
        continue;
      }
      if (text !== '') frames.push(this.#encoder.frame(Buffer.from(text)));
      text = '';
      frames.push(part);
    }
    if (text !== '') frames.push(this.#encoder.frame(Buffer.from(text)));
    this.stats.compressions++;
    return frameMessage(frames);
  }

  /**
   * What the client needs to go from the filter it holds to the current one: the changed
   * chunks only (capver 81+), or the whole list. Sessions moving between the same two filters
   * get the same message, built once.
   */
  #filterDelta(viewerId: NodeId, memory: SessionMemory): Field | null {
    const form = filterFormOf(memory);
    const before = memory.filterKey;
    const after = this.#policy.filterKey(viewerId, form);
    if (before === after) return null;
    memory.filterKey = after;
    if (memory.capVersion < CapVer.PacketFilters) {
      return { name: 'PacketFilter', key: `F${after}`, json: () => JSON.stringify(this.#policy.filterFor(viewerId, form)) };
    }
    const previous = before === null ? undefined : this.#chunker.cached(before);
    const next = this.#chunker.chunks(after, () => this.#policy.filterFor(viewerId, form));
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
    const ids = [...userIds].sort((a, b) => a - b);
    for (const id of ids) memory.sentUsers.add(id);
    return this.#profilesJsonOf(ids);
  }

  /** The UserProfiles JSON of `ids`, in that order. */
  #profilesJsonOf(ids: readonly number[]): string {
    const profiles: tailcfg.UserProfile[] = [];
    for (const id of ids) {
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

/** The ids in ascending order: the array itself when it already is (the policy index's are), else a sorted copy. */
function ascending(ids: Iterable<NodeId>): readonly NodeId[] {
  if (Array.isArray(ids)) {
    const list = ids as readonly NodeId[];
    let sorted = true;
    for (let i = 1; i < list.length && sorted; i++) sorted = list[i - 1]! < list[i]!;
    if (sorted) return list;
  }
  return [...ids].sort((a, b) => a - b);
}

const KEEP_ALIVE_FRAME = frameMessage([new ZstdEncoder().frame(Buffer.from('{"KeepAlive":true}'))]);
