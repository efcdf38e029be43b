// One tailnet's DNS: the tailnet's own settings (set in the console or the API) when it has
// them, else the server-wide source built from the config file. The MagicDNS base domain and
// the watched records file stay server-wide.
import type { Node, TailnetDns } from '../model/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import { buildDnsConfig, type DnsConfigSource, type ExtraRecord } from './dns-config.js';

/** What the mapper needs of a DNS source (see mapper's DnsSource). */
export interface TailnetDnsView {
  readonly baseDomain: string;
  configFor(node: Node): tailcfg.DNSConfig;
  configKey(node: Node): string;
}

/** The server-wide part a tailnet's own DNS builds on. */
export interface ServerDnsBase {
  /** dns.base_domain, whether or not MagicDNS is on in the config. */
  readonly baseDomain: string;
  /** Records of the watched records file (dns.extra_records_path); empty without one. */
  fileRecords(): readonly ExtraRecord[];
}

export function serverDnsBase(source: DnsConfigSource): ServerDnsBase {
  return { baseDomain: source.settings.baseDomain, fileRecords: () => source.fileRecords };
}

export class TailnetDnsSource implements TailnetDnsView {
  readonly #server: TailnetDnsView;
  readonly #base: ServerDnsBase | null;
  readonly #own: () => TailnetDns | null;
  #built: { key: string; config: tailcfg.DNSConfig } | null = null;
  #version = 0;

  /**
   * `server` answers while the tailnet has no DNS of its own; `base` is null when the server's
   * source is not built from a config (benchmarks), and then the tailnet's own DNS is ignored.
   */
  constructor(server: TailnetDnsView, base: ServerDnsBase | null, own: () => TailnetDns | null) {
    this.#server = server;
    this.#base = base;
    this.#own = own;
  }

  /** The tailnet's own DNS changed: the next config is rebuilt and carries a new key. */
  changed(): void {
    this.#version++;
    this.#built = null;
  }

  get baseDomain(): string {
    return this.baseDomainWith(this.#own());
  }

  /** The MagicDNS suffix (the netmap's Domain) the tailnet has with `own` as its DNS settings. */
  baseDomainWith(own: TailnetDns | null): string {
    if (own === null || this.#base === null) return this.#server.baseDomain;
    return own.magicDns ? this.#base.baseDomain : '';
  }

  configFor(node: Node): tailcfg.DNSConfig {
    const own = this.#ownDns();
    if (own === null) return this.#server.configFor(node);
    const key = this.configKey(node);
    if (this.#built?.key !== key) {
      const config = buildDnsConfig({
        magicDns: own.magicDns,
        baseDomain: this.#base!.baseDomain,
        overrideLocalDns: own.overrideLocalDns,
        globalNameservers: own.nameservers,
        splitNameservers: own.splitDns,
        searchDomains: own.searchDomains,
        extraRecords: own.extraRecords,
      }, this.#base!.fileRecords());
      this.#built = { key, config };
    }
    return this.#built.config;
  }

  configKey(node: Node): string {
    // The server's key moves with the records file, which the tailnet's own DNS includes too.
    const server = this.#server.configKey(node);
    return this.#ownDns() === null ? server : `t${this.#version}.${server}`;
  }

  #ownDns(): TailnetDns | null {
    return this.#base === null ? null : this.#own();
  }
}
