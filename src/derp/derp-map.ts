/**
 * @module derp/derp-map
 * The DERP map clients receive: the embedded region (from server_url and derp.server.*),
 * regions from files (`derp.paths`, YAML or JSON) and from URLs (`derp.urls`, JSON, refreshed
 * every `derp.update_frequency`), merged like headscale does (hscontrol/derp/derp.go and
 * docs/ref/derp.md @f20f1f12): URLs in order, then files in order, then the embedded region;
 * a later source replaces a region with the same id, and a region set to `null` removes it.
 *
 * Field names are matched case-insensitively, because Go's encoding/json does so and
 * headscale's YAML files spell fields in lower case (`regionid`, `hostname`, `stunport`).
 * Unknown fields are ignored, as Go ignores them. A failed refresh of one source keeps that
 * source's last good contents; `change` fires only when the merged map really changed.
 */
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { silentLogger } from '../log/index.js';
import type * as tailcfg from '../tailcfg/index.js';
import type { HeadwayError } from '../util/headway-error.js';
import { tryParseIP } from '../util/ip.js';
import { derpError } from './errors.js';

/** One source's contribution: regions to set, and region ids set to null (removed). */
export interface DerpMapLayer {
  readonly regions: ReadonlyMap<number, tailcfg.DERPRegion | null>;
  readonly homeParams?: tailcfg.DERPHomeParams;
  readonly omitDefaultRegions?: boolean;
}

// --- parsing and validation -----------------------------------------------------------------

type Json = Record<string, unknown>;

class FieldReader {
  readonly #object: Json;
  readonly #where: string;
  readonly #source: string;

  constructor(object: Json, where: string, source: string) {
    this.#object = object;
    this.#where = where;
    this.#source = source;
  }

  /** The value of `name`, matched case-insensitively; undefined when absent. */
  raw(name: string): unknown {
    const lower = name.toLowerCase();
    let found: unknown = undefined;
    let foundKey: string | null = null;
    for (const [key, value] of Object.entries(this.#object)) {
      if (key.toLowerCase() !== lower) continue;
      if (foundKey !== null) this.fail(name, `is given twice (as "${foundKey}" and "${key}")`);
      found = value;
      foundKey = key;
    }
    return found;
  }

  fail(name: string, problem: string): never {
    throw derpError('mapInvalid', `${this.#source}: ${this.path(name)}: ${problem}`);
  }

  path(name: string): string {
    return this.#where === '' ? name : `${this.#where}.${name}`;
  }

  string(name: string, options: { required?: boolean } = {}): string | undefined {
    const value = this.raw(name);
    if (value === undefined || value === null) {
      if (options.required === true) this.fail(name, 'is missing (want a non-empty string)');
      return undefined;
    }
    if (typeof value !== 'string') this.fail(name, `${describe(value)} is not a string`);
    if (options.required === true && value.trim() === '') this.fail(name, 'is empty (want a non-empty string)');
    return value;
  }

  boolean(name: string): boolean | undefined {
    const value = this.raw(name);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'boolean') this.fail(name, `${describe(value)} is not true or false`);
    return value;
  }

  number(name: string): number | undefined {
    const value = this.raw(name);
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(name, `${describe(value)} is not a number`);
    return value;
  }

  integer(name: string, min: number, max: number): number | undefined {
    const value = this.number(name);
    if (value === undefined) return undefined;
    if (!Number.isInteger(value) || value < min || value > max) this.fail(name, `${value} is not an integer in ${min}..${max}`);
    return value;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Region ids are positive decimal integers; JSON keys are their decimal strings. */
function parseRegionId(key: string): number | null {
  if (!/^[1-9][0-9]{0,9}$/.test(key)) return null;
  const id = Number(key);
  return id <= 0x7fffffff ? id : null;
}

function parseAddressOverride(reader: FieldReader, name: 'IPv4' | 'IPv6' | 'STUNTestIP'): string | undefined {
  const value = reader.string(name);
  if (value === undefined || value === '') return value === '' ? undefined : value;
  if (name !== 'STUNTestIP' && value === 'none') return value;
  const ip = tryParseIP(value);
  const want = name === 'IPv4' ? 4 : name === 'IPv6' ? 6 : null;
  if (ip === null || (want !== null && ip.family !== want)) {
    const kind = want === 4 ? 'an IPv4 address' : want === 6 ? 'an IPv6 address' : 'an IP address';
    reader.fail(name, `${describe(value)} is not ${kind}${name === 'STUNTestIP' ? '' : ' (or "none")'}`);
  }
  return value;
}

function parseNode(value: unknown, where: string, source: string, regionId: number): tailcfg.DERPNode {
  if (!isObject(value)) throw derpError('mapInvalid', `${source}: ${where}: ${describe(value)} is not an object`);
  const r: FieldReader = new FieldReader(value, where, source);
  const name = r.string('Name', { required: true })!;
  const nodeRegion = r.integer('RegionID', 0, 0x7fffffff);
  if (nodeRegion !== undefined && nodeRegion !== 0 && nodeRegion !== regionId) {
    r.fail('RegionID', `${nodeRegion} differs from its region's id ${regionId}`);
  }
  const node: tailcfg.DERPNode = {
    Name: name,
    RegionID: regionId,
    HostName: r.string('HostName', { required: true })!,
  };
  const certName = r.string('CertName');
  if (certName !== undefined && certName !== '') node.CertName = certName;
  const ipv4 = parseAddressOverride(r, 'IPv4');
  if (ipv4 !== undefined) node.IPv4 = ipv4;
  const ipv6 = parseAddressOverride(r, 'IPv6');
  if (ipv6 !== undefined) node.IPv6 = ipv6;
  const stunPort = r.integer('STUNPort', -1, 65535);
  if (stunPort !== undefined) node.STUNPort = stunPort;
  const stunOnly = r.boolean('STUNOnly');
  if (stunOnly !== undefined) node.STUNOnly = stunOnly;
  const derpPort = r.integer('DERPPort', 0, 65535);
  if (derpPort !== undefined) node.DERPPort = derpPort;
  const insecure = r.boolean('InsecureForTests');
  if (insecure !== undefined) node.InsecureForTests = insecure;
  const stunTestIP = parseAddressOverride(r, 'STUNTestIP');
  if (stunTestIP !== undefined) node.STUNTestIP = stunTestIP;
  const canPort80 = r.boolean('CanPort80');
  if (canPort80 !== undefined) node.CanPort80 = canPort80;
  return node;
}

function parseRegion(value: unknown, where: string, source: string, keyId: number): tailcfg.DERPRegion {
  if (!isObject(value)) throw derpError('mapInvalid', `${source}: ${where}: ${describe(value)} is not an object (or null to remove the region)`);
  const r: FieldReader = new FieldReader(value, where, source);
  const regionId = r.integer('RegionID', 0, 0x7fffffff);
  if (regionId !== undefined && regionId !== 0 && regionId !== keyId) {
    r.fail('RegionID', `${regionId} differs from its key ${keyId}`);
  }
  const region: tailcfg.DERPRegion = {
    RegionID: keyId,
    RegionCode: r.string('RegionCode', { required: true })!,
    RegionName: r.string('RegionName') ?? '',
    Nodes: [],
  };
  const latitude = r.number('Latitude');
  if (latitude !== undefined && latitude !== 0) region.Latitude = latitude;
  const longitude = r.number('Longitude');
  if (longitude !== undefined && longitude !== 0) region.Longitude = longitude;
  const avoid = r.boolean('Avoid');
  if (avoid === true) region.Avoid = true;
  const noMeasureNoHome = r.boolean('NoMeasureNoHome');
  if (noMeasureNoHome === true) region.NoMeasureNoHome = true;
  const nodes = r.raw('Nodes');
  if (!Array.isArray(nodes) || nodes.length === 0) r.fail('Nodes', 'is missing or empty (want a list of at least one node)');
  const names = new Set<string>();
  nodes.forEach((node: unknown, index: number) => {
    const parsed = parseNode(node, `${r.path('Nodes')}[${index}]`, source, keyId);
    if (names.has(parsed.Name)) r.fail(`Nodes[${index}].Name`, `"${parsed.Name}" is used by an earlier node of this region`);
    names.add(parsed.Name);
    region.Nodes.push(parsed);
  });
  return region;
}

/** Validates a parsed YAML/JSON document as a DERPMap; errors name `source` and the key. */
export function derpMapLayerFromValue(document: unknown, source: string): DerpMapLayer {
  if (!isObject(document)) throw derpError('mapParse', `${source}: the document is ${describe(document)}, want an object with "Regions"`);
  const top: FieldReader = new FieldReader(document, '', source);
  const regionsValue = top.raw('Regions');
  if (!isObject(regionsValue)) top.fail('Regions', regionsValue === undefined ? 'is missing' : `${describe(regionsValue)} is not an object of region id -> region`);
  const regions = new Map<number, tailcfg.DERPRegion | null>();
  for (const [key, value] of Object.entries(regionsValue)) {
    const id = parseRegionId(key);
    if (id === null) top.fail(`Regions.${key}`, 'region ids must be positive integers');
    regions.set(id, value === null ? null : parseRegion(value, `Regions.${key}`, source, id));
  }
  const layer: { regions: typeof regions; homeParams?: tailcfg.DERPHomeParams; omitDefaultRegions?: boolean } = { regions };
  const homeParams = top.raw('HomeParams');
  if (homeParams !== undefined && homeParams !== null) {
    if (!isObject(homeParams)) top.fail('HomeParams', `${describe(homeParams)} is not an object`);
    const hp: FieldReader = new FieldReader(homeParams, 'HomeParams', source);
    const scores = hp.raw('RegionScore');
    if (scores !== undefined && scores !== null) {
      if (!isObject(scores)) hp.fail('RegionScore', `${describe(scores)} is not an object of region id -> score`);
      const regionScore: Record<string, number> = {};
      for (const [key, score] of Object.entries(scores)) {
        if (parseRegionId(key) === null) hp.fail(`RegionScore.${key}`, 'region ids must be positive integers');
        if (typeof score !== 'number' || !(score > 0)) hp.fail(`RegionScore.${key}`, `${describe(score)} is not a positive number`);
        regionScore[key] = score;
      }
      layer.homeParams = { RegionScore: regionScore };
    } else {
      layer.homeParams = {};
    }
  }
  const omit = top.boolean('omitDefaultRegions');
  if (omit !== undefined) layer.omitDefaultRegions = omit;
  return layer;
}

/** Parses a DERP map document. `format: 'auto'` reads `.json` names as JSON and anything else as YAML. */
export function parseDerpMapText(text: string, source: string, format: 'json' | 'yaml' | 'auto' = 'auto'): DerpMapLayer {
  const asJson = format === 'json' || (format === 'auto' && /\.json$/i.test(source));
  let document: unknown;
  try {
    document = asJson ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true, logLevel: 'error' });
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos !== undefined ? `:${err.linePos[0].line}:${err.linePos[0].col}` : '';
    throw derpError('mapParse', `${source}${where}: not valid ${asJson ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  return derpMapLayerFromValue(document, source);
}

// --- the embedded region --------------------------------------------------------------------

export interface EmbeddedRegionOptions {
  /** server_url: the node's HostName and DERPPort come from it (443/80 when it has no port). */
  readonly serverUrl: string;
  /** derp.server.region_id (headscale default 999; 900-999 are reserved for self-hosted DERP). */
  readonly regionId: number;
  readonly regionCode: string;
  readonly regionName: string;
  /** The STUN port clients should probe: the bound port of stun_listen_addr; -1 = no STUN. Default 3478. */
  readonly stunPort?: number;
  /** derp.server.ipv4 / ipv6: fixed addresses so clients need no DNS to reach the relay. */
  readonly ipv4?: string;
  readonly ipv6?: string;
  /** The node's name; default the region id (as headscale names it). */
  readonly nodeName?: string;
  /** Set only if /generate_204 is served on port 80 of `ipv4`. Default false. */
  readonly canPort80?: boolean;
}

/**
 * The DERP region of our own relay, validated like any other region. With an http:// server_url
 * the node is marked `InsecureForTests`: clients then skip the certificate check, but still
 * speak TLS to it, so the server must answer TLS on that port too (see src/server).
 */
export function embeddedDerpRegion(options: EmbeddedRegionOptions): tailcfg.DERPRegion {
  let url: URL;
  try {
    url = new URL(options.serverUrl);
  } catch (err) {
    throw derpError('badServerUrl', `server_url: ${JSON.stringify(options.serverUrl)} is not an absolute URL`, { cause: err });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw derpError('badServerUrl', `server_url: ${JSON.stringify(options.serverUrl)}: scheme ${url.protocol} is not http or https`);
  }
  const hostName = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (hostName === '') throw derpError('badServerUrl', `server_url: ${JSON.stringify(options.serverUrl)} has no host`);
  const derpPort = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  const node: Json = {
    Name: options.nodeName ?? String(options.regionId),
    RegionID: options.regionId,
    HostName: hostName,
    DERPPort: derpPort,
    STUNPort: options.stunPort ?? 3478,
  };
  if (options.ipv4 !== undefined && options.ipv4 !== '') node['IPv4'] = options.ipv4;
  if (options.ipv6 !== undefined && options.ipv6 !== '') node['IPv6'] = options.ipv6;
  if (options.canPort80 === true) node['CanPort80'] = true;
  if (url.protocol === 'http:') node['InsecureForTests'] = true;
  const source = 'derp.server (embedded region)';
  if (!Number.isInteger(options.regionId) || options.regionId <= 0) {
    throw derpError('mapInvalid', `${source}: region_id: ${options.regionId} is not a positive integer`);
  }
  return parseRegion(
    { RegionID: options.regionId, RegionCode: options.regionCode, RegionName: options.regionName, Nodes: [node] },
    `Regions.${options.regionId}`,
    source,
    options.regionId,
  );
}

// --- merging --------------------------------------------------------------------------------

export interface NamedLayer {
  /** A file path, a redacted URL, or "derp.server (embedded region)": used in errors. */
  readonly source: string;
  readonly layer: DerpMapLayer;
}

/**
 * Merges layers in order: a later layer replaces a region with the same id (null removes it),
 * the last HomeParams and omitDefaultRegions given win. Node names must be unique across the
 * result (Tailscale treats them as global identifiers).
 */
export function mergeDerpMaps(layers: readonly NamedLayer[]): tailcfg.DERPMap {
  const regions = new Map<number, { region: tailcfg.DERPRegion; source: string }>();
  let homeParams: tailcfg.DERPHomeParams | undefined;
  let omitDefaultRegions: boolean | undefined;
  for (const { source, layer } of layers) {
    for (const [id, region] of layer.regions) {
      if (region === null) regions.delete(id);
      else regions.set(id, { region, source });
    }
    if (layer.homeParams !== undefined) homeParams = layer.homeParams;
    if (layer.omitDefaultRegions !== undefined) omitDefaultRegions = layer.omitDefaultRegions;
  }
  const nameOwners = new Map<string, { id: number; source: string }>();
  const out: tailcfg.DERPMap = { Regions: {} };
  for (const id of [...regions.keys()].sort((a, b) => a - b)) {
    const { region, source } = regions.get(id)!;
    for (const node of region.Nodes) {
      const owner = nameOwners.get(node.Name);
      if (owner !== undefined) {
        throw derpError(
          'mapInvalid',
          `DERP map: node name "${node.Name}" is used by region ${owner.id} (from ${owner.source}) and region ${id} (from ${source}); node names must be unique`,
        );
      }
      nameOwners.set(node.Name, { id, source });
    }
    out.Regions[String(id)] = structuredClone(region);
  }
  if (homeParams !== undefined) {
    const scores = homeParams.RegionScore;
    if (scores !== undefined) {
      const kept = Object.fromEntries(Object.entries(scores).filter(([id]) => regions.has(Number(id))));
      out.HomeParams = { RegionScore: kept };
    } else {
      out.HomeParams = {};
    }
  }
  if (omitDefaultRegions === true) out.omitDefaultRegions = true;
  return out;
}

// --- the live source ------------------------------------------------------------------------

export interface DerpMapSourceOptions {
  /** Our own region (from embeddedDerpRegion); it wins over files and URLs. Absent: none. */
  readonly embeddedRegion?: tailcfg.DERPRegion;
  /** derp.paths: YAML or JSON files, later ones override earlier ones. */
  readonly paths?: readonly string[];
  /** derp.urls: JSON DERP maps, e.g. https://controlplane.tailscale.com/derpmap/default. */
  readonly urls?: readonly string[];
  /** derp.auto_update_enabled. Default true. */
  readonly autoUpdate?: boolean;
  /** derp.update_frequency in ms. Default 24 h (headscale). */
  readonly updateFrequencyMs?: number;
  /** Until a URL has loaded once, it is retried this often. Default 60 s. */
  readonly retryMs?: number;
  /** Per fetch. Default 10 s. */
  readonly fetchTimeoutMs?: number;
  /** Largest body accepted from a URL. Default 4 MiB. */
  readonly maxBodyBytes?: number;
  readonly logger?: Logger;
  readonly metrics?: Registry;
}

interface SourceState {
  readonly kind: 'path' | 'url';
  readonly location: string;
  /** What appears in logs and errors (URLs without credentials or query). */
  readonly label: string;
  layer: DerpMapLayer | null;
  lastError: HeadwayError | null;
}

export interface DerpMapSourceEvents {
  change: [map: tailcfg.DERPMap];
}

/**
 * The merged DERP map, kept current. `current()` is always the last good merge; `change`
 * fires with the new map only when a refresh produced a map that differs from it.
 */
export class DerpMapSource extends EventEmitter<DerpMapSourceEvents> {
  readonly #options: DerpMapSourceOptions;
  readonly #logger: Logger;
  readonly #sources: SourceState[];
  #current: tailcfg.DERPMap = { Regions: {} };
  #currentText = '';
  #refreshing: Promise<boolean> | null = null;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  readonly #counters: { loads: Counter<'kind' | 'result'>; changes: Counter } | null;

  private constructor(options: DerpMapSourceOptions) {
    super();
    this.#options = options;
    this.#logger = (options.logger ?? silentLogger()).child({ part: 'derp', component: 'derp-map' });
    this.#sources = [
      // headscale's order: URLs, then files; the embedded region is applied last.
      ...(options.urls ?? []).map((u): SourceState => ({ kind: 'url', location: u, label: redactUrl(u), layer: null, lastError: null })),
      ...(options.paths ?? []).map((p): SourceState => ({ kind: 'path', location: p, label: p, layer: null, lastError: null })),
    ];
    if (options.metrics !== undefined) {
      const registry = options.metrics;
      this.#counters = {
        loads: new Counter({
          name: 'headway_derp_map_loads_total',
          help: 'DERP map loads from files and URLs, by kind and result.',
          labelNames: ['kind', 'result'],
          registers: [registry],
        }),
        changes: new Counter({ name: 'headway_derp_map_changes_total', help: 'Times the merged DERP map changed.', registers: [registry] }),
      };
      const regionCount = (): number => Object.keys(this.#current.Regions).length;
      new Gauge({
        name: 'headway_derp_map_regions',
        help: 'Regions in the merged DERP map.',
        registers: [registry],
        collect() {
          this.set(regionCount());
        },
      });
    } else {
      this.#counters = null;
    }
  }

  /**
   * Loads every source once. Throws for an unreadable or invalid file (a configuration error)
   * and for a map with no regions at all; a URL that fails is logged and retried.
   */
  static async start(options: DerpMapSourceOptions): Promise<DerpMapSource> {
    const source = new DerpMapSource(options);
    await source.#load(true);
    source.#schedule();
    return source;
  }

  current(): tailcfg.DERPMap {
    return this.#current;
  }

  /** Reloads every file and URL now. Resolves to whether the merged map changed. */
  refresh(): Promise<boolean> {
    this.#refreshing ??= this.#load(false).finally(() => {
      this.#refreshing = null;
    });
    return this.#refreshing;
  }

  /** The last error of each source that failed its latest load (for status pages and tests). */
  failures(): ReadonlyArray<{ readonly source: string; readonly error: HeadwayError }> {
    return this.#sources.filter((s) => s.lastError !== null).map((s) => ({ source: s.label, error: s.lastError! }));
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#closed || this.#options.autoUpdate === false) return;
    const frequency = this.#options.updateFrequencyMs ?? 24 * 3_600_000;
    const neverLoaded = this.#sources.some((s) => s.kind === 'url' && s.layer === null);
    const delay = neverLoaded ? Math.min(frequency > 0 ? frequency : Infinity, this.#options.retryMs ?? 60_000) : frequency;
    if (!(delay > 0) || !Number.isFinite(delay)) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.refresh().then(
        () => this.#schedule(),
        (err: unknown) => {
          this.#logger.error({ err }, 'derp map refresh failed');
          this.#schedule();
        },
      );
    }, delay);
    this.#timer.unref();
  }

  async #load(initial: boolean): Promise<boolean> {
    await Promise.all(this.#sources.map((source) => this.#loadOne(source, initial)));
    if (this.#closed && !initial) return false;
    const layers: NamedLayer[] = this.#sources.filter((s) => s.layer !== null).map((s) => ({ source: s.label, layer: s.layer! }));
    const embedded = this.#options.embeddedRegion;
    if (embedded !== undefined) {
      layers.push({ source: 'derp.server (embedded region)', layer: { regions: new Map([[embedded.RegionID, embedded]]) } });
    }
    let merged: tailcfg.DERPMap;
    try {
      merged = mergeDerpMaps(layers);
    } catch (err) {
      if (initial) throw err;
      this.#logger.error({ err }, 'derp map merge failed; keeping the last good map');
      return false;
    }
    if (Object.keys(merged.Regions).length === 0) {
      const failed = this.#sources.filter((s) => s.lastError !== null);
      const error = derpError(
        'mapEmpty',
        failed.length > 0
          ? `DERP map: no regions (failed: ${failed.map((s) => s.label).join(', ')}); enable derp.server or fix derp.paths / derp.urls`
          : 'DERP map: no regions; enable derp.server or list maps in derp.paths / derp.urls',
      );
      if (initial && failed.length === 0) throw error;
      this.#logger.error({ err: error }, initial ? 'derp map is empty; clients get no relay until a source loads' : 'derp map would be empty; keeping the last good map');
      if (!initial) return false;
    }
    const text = JSON.stringify(merged);
    if (text === this.#currentText) return false;
    this.#current = merged;
    this.#currentText = text;
    if (!initial) {
      this.#counters?.changes.inc();
      this.#logger.info({ regions: Object.keys(merged.Regions).length }, 'derp map changed');
      this.emit('change', merged);
    }
    return true;
  }

  async #loadOne(source: SourceState, initial: boolean): Promise<void> {
    try {
      const text = source.kind === 'path' ? await this.#readPath(source) : await this.#fetchUrl(source);
      source.layer = parseDerpMapText(text, source.label, source.kind === 'url' ? 'json' : 'auto');
      source.lastError = null;
      this.#counters?.loads.inc({ kind: source.kind, result: 'ok' });
    } catch (err) {
      const error = err as HeadwayError;
      source.lastError = error;
      this.#counters?.loads.inc({ kind: source.kind, result: 'error' });
      if (initial && source.kind === 'path') throw error;
      this.#logger.error(
        { err: error, path: source.label },
        source.layer === null ? 'derp map source failed to load' : 'derp map source failed to load; keeping its last good contents',
      );
    }
  }

  async #readPath(source: SourceState): Promise<string> {
    try {
      return await readFile(source.location, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw derpError('mapRead', `derp.paths: ${source.label}: cannot read (${code ?? (err as Error).message})`, { cause: err });
    }
  }

  async #fetchUrl(source: SourceState): Promise<string> {
    const maxBytes = this.#options.maxBodyBytes ?? 4 << 20;
    let response: Response;
    try {
      response = await fetch(source.location, {
        signal: AbortSignal.timeout(this.#options.fetchTimeoutMs ?? 10_000),
        headers: { Accept: 'application/json' },
        redirect: 'follow',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw derpError('mapFetch', `derp.urls: ${source.label}: fetch failed (${cause ?? (err as Error).message})`, { cause: err });
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw derpError('mapFetch', `derp.urls: ${source.label}: HTTP ${response.status}, want 200`);
    }
    const reader = response.body?.getReader();
    if (reader === undefined) return '';
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > maxBytes) {
        await reader.cancel();
        throw derpError('mapFetch', `derp.urls: ${source.label}: body larger than ${maxBytes} bytes`);
      }
      chunks.push(value);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}

/** Every DERP node host name of a map (what `/bootstrap-dns` should answer). */
export function derpMapHostNames(map: tailcfg.DERPMap): string[] {
  const names = new Set<string>();
  for (const region of Object.values(map.Regions)) for (const node of region.Nodes) names.add(node.HostName);
  return [...names];
}

/** A URL fit for logs: no user info, no query or fragment (they may carry tokens). */
export function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    const hidden = url.search !== '' || url.hash !== '' ? '?…' : '';
    return `${url.protocol}//${url.host}${url.pathname}${hidden}`;
  } catch {
    return '(invalid URL)';
  }
}
