// Views: what a node is told about itself (selfView: addresses, primary routes, tags, self
// capabilities) and about each peer (peerView: the addresses and routes that peer carries for
// this viewer), the keys that name equal views, and the per-class node attributes (nodeAttrs)
// those views carry.
//
// What it reads from the rest of the index is ViewsHost: the compiled policy, the settings and
// display name, selection resolution, and from the route table which router carries a prefix
// for a viewer, who may use an exit node and a router's primaries. It keeps one list of node
// attributes per identity class (build, then bindClass for each class added later).
import type * as tailcfg from '../../tailcfg/index.js';
import type { CompiledPolicy, Selection } from '../compile.js';
import type { TailnetSettings, UserRole } from '../facts.js';
import type { NodeRec } from './records.js';
import type { Resolved } from './selections.js';
import { ATTR_DISABLE_IPV4, BASE_SELF_CAPS, CAP_IS_ADMIN, CAP_IS_OWNER, FUNNEL_EXTRA_CAPS, PEER_CAP_SUGGEST_EXIT, type PeerView, type SelfView } from './views.js';

/** What the views read from the rest of the index (always the current state). */
export interface ViewsHost {
  readonly compiled: CompiledPolicy;
  readonly settings: TailnetSettings;
  readonly displayName: string;
  resolve(sel: Selection): Resolved;
  /** Which router carries `prefix` for this viewer, if the viewer may use the prefix at all. */
  designatedRouter(viewer: NodeRec, prefix: string): number | null;
  canUseExit(viewer: NodeRec, exitNode: NodeRec): boolean;
  primariesOf(nodeId: number): string[];
}

export class NodeViews {
  readonly #host: ViewsHost;
  /** Per class: the node attributes its nodes carry, in policy order. */
  #classAttrs: string[][] = [];

  constructor(host: ViewsHost) {
    this.#host = host;
  }

  /** Takes over another index's attributes (after a rebuild). */
  adopt(other: NodeViews): void {
    this.#classAttrs = other.#classAttrs;
  }

  /** Computes every class's attributes (at the build). */
  build(classCount: number): void {
    for (let c = 0; c < classCount; c++) this.bindClass(c);
  }

  /** The attributes of the class just added with id `c`. */
  bindClass(c: number): void {
    const list: string[] = [];
    for (const na of this.#host.compiled.nodeAttrs) {
      if (na.attrs.length === 0 || !this.#host.resolve(na.target).identity.has(c)) continue;
      for (const attr of na.attrs) if (!list.includes(attr)) list.push(attr);
    }
    this.#classAttrs[c] = list;
  }

  attrsOf(c: number): readonly string[] | undefined {
    return this.#classAttrs[c];
  }

  /** The node as it sees itself. */
  selfView(node: NodeRec): SelfView {
    const addresses = this.#addresses(node);
    return {
      Addresses: addresses,
      AllowedIPs: [...addresses, ...node.routeTexts, ...node.exitRoutes],
      PrimaryRoutes: this.#host.primariesOf(node.id),
      Tags: [...node.tags],
      CapMap: this.#selfCaps(node),
    };
  }

  /** Whether a node is IPv6-only: the disable-ipv4 attribute, or `disableIPv4` for the tailnet. */
  ipv6Only(node: NodeRec): boolean {
    return this.#host.compiled.policy.disableIPv4 || this.#classAttrs[node.classId]!.includes(ATTR_DISABLE_IPV4);
  }

  /** The node's own prefixes; an IPv6-only node has no IPv4 one. */
  #addresses(node: NodeRec): string[] {
    const out: string[] = [];
    if (node.v4Text !== null && !this.ipv6Only(node)) out.push(`${node.v4Text}/32`);
    if (node.v6Text !== null) out.push(`${node.v6Text}/128`);
    return out;
  }

  #selfCaps(node: NodeRec): tailcfg.NodeCapMap {
    const host = this.#host;
    const caps: tailcfg.NodeCapMap = {};
    for (const c of BASE_SELF_CAPS) caps[c] = null;
    const role: UserRole | null = node.user?.role ?? null;
    if (node.tagged) caps[CAP_IS_OWNER] = null;
    else if (role !== null) {
      if (role === 'owner' || role === 'admin') caps[CAP_IS_ADMIN] = null;
      if (role === 'owner') caps[CAP_IS_OWNER] = null;
    }
    caps['tailnet-display-name'] = [host.displayName];
    if (host.settings.autoUpdate !== undefined) caps['default-auto-update'] = [host.settings.autoUpdate];
    if (host.compiled.policy.randomizeClientPort) caps['randomize-client-port'] = null;
    for (const attr of this.#classAttrs[node.classId]!) {
      caps[attr] = null;
      if (attr === 'funnel') for (const extra of FUNNEL_EXTRA_CAPS) caps[extra] = null;
    }
    return caps;
  }

  /** A peer as `viewer` sees it: addresses, the routes it carries for this viewer, caps. */
  peerView(viewer: NodeRec, peer: NodeRec): PeerView {
    // An IPv6-only (disable-ipv4) node neither has nor sees IPv4 node addresses.
    const allowed = this.ipv6Only(viewer) ? this.#addresses(peer).filter((a) => a.includes(':')) : this.#addresses(peer);
    const primary: string[] = [];
    for (const text of peer.routeTexts) {
      if (this.#host.designatedRouter(viewer, text) === peer.id) {
        allowed.push(text);
        primary.push(text);
      }
    }
    let capMap: tailcfg.NodeCapMap | null = null;
    if (peer.exitRoutes.length > 0) {
      if (this.#host.canUseExit(viewer, peer)) allowed.push(...peer.exitRoutes);
      capMap = { [PEER_CAP_SUGGEST_EXIT]: null };
    }
    return { AllowedIPs: allowed, PrimaryRoutes: primary, Tags: [...peer.tags], CapMap: capMap };
  }

  /** See PolicyIndex.peerViewKey. */
  peerViewKey(viewer: NodeRec, peer: NodeRec): string {
    let key = peer.v4Text !== null && this.ipv6Only(viewer) && !this.ipv6Only(peer) ? '6' : '0';
    for (const prefix of peer.routeTexts) key += this.#host.designatedRouter(viewer, prefix) === peer.id ? '1' : '-';
    if (peer.exitRoutes.length > 0 && this.#host.canUseExit(viewer, peer)) key += 'x';
    return key;
  }

  /**
   * What a peer's view depends on, for a peer without subnet routes: whether the viewer is
   * IPv6-only and, for an exit node, whether the viewer may use it.
   */
  viewKey(viewer: NodeRec, peer: NodeRec): string {
    return `${this.ipv6Only(viewer) ? 6 : 4}${peer.exitRoutes.length > 0 && this.#host.canUseExit(viewer, peer) ? 'x' : ''}`;
  }
}
