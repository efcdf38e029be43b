// The netmap a client holds, and how each MapResponse changes it, as tailscaled's
// controlclient/map.go applies them (protocol.md §9.4). Written from the client's rules, not
// from the server's code, so a test can see what a real client would see.
import type * as tailcfg from '../tailcfg/index.js';

export class Netmap {
  self: tailcfg.Node | null = null;
  readonly peers = new Map<number, tailcfg.Node>();
  derpMap: tailcfg.DERPMap | null = null;
  dnsConfig: tailcfg.DNSConfig | null = null;
  domain = '';
  /** Named packet-filter chunks; `base` is what a plain PacketFilter sets. */
  readonly filterChunks = new Map<string, tailcfg.FilterRule[]>();
  sshPolicy: tailcfg.SSHPolicy | null = null;
  readonly userProfiles = new Map<number, tailcfg.UserProfile>();
  controlTime: string | null = null;
  /** Messages applied, keep-alives included. */
  messages = 0;
  keepAlives = 0;

  /** The effective packet filter: every chunk's rules, chunks in name order. */
  get packetFilter(): tailcfg.FilterRule[] {
    return [...this.filterChunks.keys()].sort().flatMap((name) => this.filterChunks.get(name)!);
  }

  /**
   * The packet filter with each `cap:<name>` source replaced by the addresses of the peers
   * whose CapMap holds that name: what the client matches (capver 109+ resolves a packet's
   * source to a peer by its single-IP Addresses, then tests the CapMap it holds for the peer).
   */
  get resolvedPacketFilter(): tailcfg.FilterRule[] {
    const holders = new Map<string, string[]>();
    for (const peer of this.peers.values()) {
      for (const cap of Object.keys(peer.CapMap ?? {})) {
        let list = holders.get(cap);
        if (list === undefined) holders.set(cap, (list = []));
        for (const prefix of peer.Addresses) if (prefix.endsWith('/32') || prefix.endsWith('/128')) list.push(prefix.slice(0, prefix.lastIndexOf('/')));
      }
    }
    return this.packetFilter.map((rule) => ({
      ...rule,
      SrcIPs: rule.SrcIPs.flatMap((s) => (s.startsWith('cap:') ? (holders.get(s.slice(4)) ?? []) : [s])),
    }));
  }

  peerByName(label: string): tailcfg.Node | undefined {
    for (const peer of this.peers.values()) if (peer.Name.split('.')[0] === label) return peer;
    return undefined;
  }

  apply(message: tailcfg.MapResponse): void {
    this.messages++;
    if (message.KeepAlive === true) {
      this.keepAlives++;
      return;
    }
    if (message.Node != null) this.self = message.Node;
    if (message.DERPMap != null) {
      this.derpMap = message.DERPMap.Regions == null && this.derpMap !== null ? { ...message.DERPMap, Regions: this.derpMap.Regions } : message.DERPMap;
    }
    if (message.Peers != null && message.Peers.length > 0) {
      // A non-empty Peers is the complete list; the incremental fields are then ignored.
      this.peers.clear();
      for (const peer of message.Peers) this.peers.set(peer.ID, peer);
    } else {
      for (const id of message.PeersRemoved ?? []) this.peers.delete(id);
      for (const peer of message.PeersChanged ?? []) this.peers.set(peer.ID, peer);
      for (const change of message.PeersChangedPatch ?? []) this.#patch(change);
      for (const [id, online] of Object.entries(message.OnlineChange ?? {})) {
        const peer = this.peers.get(Number(id));
        if (peer !== undefined) this.peers.set(peer.ID, { ...peer, Online: online });
      }
      for (const [id, seen] of Object.entries(message.PeerSeenChange ?? {})) {
        const peer = this.peers.get(Number(id));
        if (peer === undefined) continue;
        const next = { ...peer };
        if (seen) next.LastSeen = new Date().toISOString();
        else delete next.LastSeen;
        this.peers.set(peer.ID, next);
      }
    }
    if (message.DNSConfig != null) this.dnsConfig = message.DNSConfig;
    if (message.Domain !== undefined && message.Domain !== '') this.domain = message.Domain;
    if (message.PacketFilter != null) this.filterChunks.set('base', message.PacketFilter);
    if (message.PacketFilters != null) {
      const chunks = message.PacketFilters;
      if ('*' in chunks && chunks['*'] === null) this.filterChunks.clear();
      for (const [name, rules] of Object.entries(chunks)) {
        if (name === '*') continue;
        if (rules === null) this.filterChunks.delete(name);
        else this.filterChunks.set(name, rules);
      }
    }
    for (const profile of message.UserProfiles ?? []) this.userProfiles.set(profile.ID, profile);
    if (message.SSHPolicy != null) this.sshPolicy = message.SSHPolicy;
    if (message.ControlTime !== undefined) this.controlTime = message.ControlTime;
  }

  #patch(change: tailcfg.PeerChange): void {
    const peer = this.peers.get(change.NodeID);
    if (peer === undefined) return; // unknown ids are ignored
    const next: tailcfg.Node = { ...peer };
    if (change.DERPRegion !== undefined) {
      next.HomeDERP = change.DERPRegion;
      next.DERP = change.DERPRegion === 0 ? '' : `127.3.3.40:${change.DERPRegion}`;
    }
    if (change.Cap !== undefined) next.Cap = change.Cap;
    if (change.CapMap !== undefined) next.CapMap = change.CapMap;
    if (change.Endpoints !== undefined) next.Endpoints = change.Endpoints;
    if (change.Key !== undefined) next.Key = change.Key;
    if (change.DiscoKey !== undefined) next.DiscoKey = change.DiscoKey;
    if (change.Online !== undefined) next.Online = change.Online;
    if (change.LastSeen !== undefined) next.LastSeen = change.LastSeen;
    if (change.KeyExpiry !== undefined) next.KeyExpiry = change.KeyExpiry;
    this.peers.set(change.NodeID, next);
  }
}
