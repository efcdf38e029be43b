// The DNS configuration every node receives: MagicDNS (`<given name>.<base domain>`), global
// and split nameservers, search domains and extra records. One config per tailnet today, so it
// is built once per change and shared; `version` changes whenever the content does.
import { readFile, watch } from 'node:fs/promises';
import type * as tailcfg from '../tailcfg/index.js';
import { tryParseIP } from '../util/ip.js';

export interface ExtraRecord {
  readonly name: string;
  /** `A` or `AAAA`; empty = decided by the value. */
  readonly type: string;
  readonly value: string;
}

export interface DnsSettings {
  readonly magicDns: boolean;
  /** MagicDNS suffix without leading or trailing dots, e.g. `headway.internal`. */
  readonly baseDomain: string;
  /** When true, clients use the global nameservers instead of their own. */
  readonly overrideLocalDns: boolean;
  readonly globalNameservers: readonly string[];
  /** Domain -> nameservers (split DNS). */
  readonly splitNameservers: Readonly<Record<string, readonly string[]>>;
  readonly searchDomains: readonly string[];
  readonly extraRecords: readonly ExtraRecord[];
  /** A JSON file of extra records (a list of {name, type, value}), watched for changes. */
  readonly extraRecordsPath?: string;
}

export class DnsConfigError extends Error {
  override name = 'DnsConfigError';
}

/** Builds the tailcfg.DNSConfig for a tailnet from its settings (and file-backed records). */
export function buildDnsConfig(settings: DnsSettings, fileRecords: readonly ExtraRecord[] = []): tailcfg.DNSConfig {
  const config: tailcfg.DNSConfig = {};
  const resolvers = settings.globalNameservers.map((addr) => ({ Addr: addr }));
  if (resolvers.length > 0) {
    if (settings.overrideLocalDns) config.Resolvers = resolvers;
    else config.FallbackResolvers = resolvers;
  }
  const routes: Record<string, tailcfg.DNSResolver[] | null> = {};
  for (const [domain, servers] of Object.entries(settings.splitNameservers)) {
    routes[trimDots(domain)] = servers.map((addr) => ({ Addr: addr }));
  }
  const domains: string[] = [];
  if (settings.magicDns && settings.baseDomain !== '') {
    domains.push(settings.baseDomain);
    // An empty route sends the suffix to the client's own resolver (quad-100), which answers
    // from the netmap, even when the OS resolver is not overridden.
    routes[settings.baseDomain] = [];
  }
  for (const domain of settings.searchDomains) {
    const d = trimDots(domain);
    if (!domains.includes(d)) domains.push(d);
  }
  if (Object.keys(routes).length > 0) config.Routes = routes;
  if (domains.length > 0) config.Domains = domains;
  config.Proxied = settings.magicDns;
  const records = [...settings.extraRecords, ...fileRecords];
  if (records.length > 0) {
    config.ExtraRecords = records.map((r) => ({ Name: trimDots(r.name), Type: r.type, Value: r.value }));
    // Records outside any routed suffix would never reach quad-100 without a route.
    for (const r of records) {
      const suffix = trimDots(r.name).split('.').slice(1).join('.');
      if (suffix !== '' && config.Routes?.[suffix] === undefined && !isUnder(trimDots(r.name), settings.baseDomain)) {
        config.Routes = { ...(config.Routes ?? {}), [suffix]: [] };
      }
    }
  }
  return config;
}

function isUnder(name: string, domain: string): boolean {
  return domain !== '' && (name === domain || name.endsWith(`.${domain}`));
}

function trimDots(domain: string): string {
  return domain.replace(/^\.+|\.+$/g, '');
}

/** Parses an extra-records file: a JSON list of {name, type, value}. Errors name the file and index. */
export function parseExtraRecords(text: string, source: string): ExtraRecord[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new DnsConfigError(`${source}: not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(data)) throw new DnsConfigError(`${source}: want a JSON list of {"name","type","value"} records`);
  return data.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null) throw new DnsConfigError(`${source}: [${i}]: want an object`);
    const r = item as Record<string, unknown>;
    if (typeof r.name !== 'string' || r.name === '') throw new DnsConfigError(`${source}: [${i}].name: want a non-empty string`);
    if (typeof r.value !== 'string' || tryParseIP(r.value) === null) throw new DnsConfigError(`${source}: [${i}].value: ${JSON.stringify(r.value)} is not an IP address`);
    const type = r.type === undefined ? '' : r.type;
    if (type !== '' && type !== 'A' && type !== 'AAAA') throw new DnsConfigError(`${source}: [${i}].type: want "A" or "AAAA", got ${JSON.stringify(type)}`);
    return { name: r.name, type, value: r.value };
  });
}

export type DnsChangeListener = () => void;

/** The DNS config source of a running server: settings plus the watched records file. */
export class DnsConfigSource {
  readonly settings: DnsSettings;
  #fileRecords: readonly ExtraRecord[] = [];
  #config: tailcfg.DNSConfig;
  #version = 1;
  readonly #listeners = new Set<DnsChangeListener>();
  #watcher: AbortController | null = null;

  constructor(settings: DnsSettings) {
    this.settings = settings;
    this.#config = buildDnsConfig(settings);
  }

  get baseDomain(): string {
    return this.settings.magicDns ? this.settings.baseDomain : '';
  }

  get version(): number {
    return this.#version;
  }

  /** The records of the watched file (empty without one). */
  get fileRecords(): readonly ExtraRecord[] {
    return this.#fileRecords;
  }

  current(): tailcfg.DNSConfig {
    return this.#config;
  }

  /** The config a node receives (the same for every node of the tailnet today). */
  configFor(_node: unknown): tailcfg.DNSConfig {
    return this.#config;
  }

  /** Equal keys promise equal configs. */
  configKey(_node: unknown): string {
    return String(this.#version);
  }

  onChange(listener: DnsChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Loads the records file (if configured) and watches it; a bad edit keeps the last good records. */
  async start(onError: (err: Error) => void): Promise<void> {
    const path = this.settings.extraRecordsPath;
    if (path === undefined) return;
    await this.reloadRecords().catch((err: Error) => onError(err));
    this.#watcher = new AbortController();
    const watcher = watch(path, { signal: this.#watcher.signal });
    void (async () => {
      try {
        for await (const _ of watcher) await this.reloadRecords().catch((err: Error) => onError(err));
      } catch (err) {
        if ((err as { name?: string }).name !== 'AbortError') onError(err as Error);
      }
    })();
  }

  async reloadRecords(): Promise<void> {
    const path = this.settings.extraRecordsPath;
    if (path === undefined) return;
    const records = parseExtraRecords(await readFile(path, 'utf8'), path);
    this.#replace(records);
  }

  stop(): void {
    this.#watcher?.abort();
    this.#watcher = null;
  }

  #replace(fileRecords: readonly ExtraRecord[]): void {
    const next = buildDnsConfig(this.settings, fileRecords);
    if (JSON.stringify(next) === JSON.stringify(this.#config)) return;
    this.#fileRecords = fileRecords;
    this.#config = next;
    this.#version++;
    for (const listener of this.#listeners) listener();
  }
}
