// Loading: file -> YAML document -> headscale-key pass -> zod shape -> defaults and cross-key
// rules -> frozen Config. Every stage collects all of its problems before failing, so one run
// reports everything wrong in a file.
import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { $ZodIssue } from 'zod/v4/core';
import { formatDurationMs } from '../util/duration.js';
import { parsePrefix, prefixCovers, tryParseIP } from '../util/ip.js';
import type {
  Config, DatabaseConfig, DnsExtraRecord, HaConfig, LimitsConfig, ListenAddress, OidcConfig, PostgresConfig, ScimConfig,
} from './config.js';
import { ConfigError, ConfigErrors } from './errors.js';
import { IGNORED_HEADSCALE_KEYS, RENAMED_HEADSCALE_KEYS, UNSUPPORTED_HEADSCALE_KEYS } from './headscale-keys.js';
import { CONFIG_REFERENCE } from './reference.js';
import { describeValue, formatPrefix, rawConfigSchema, type RawConfig } from './schema.js';

export const CONFIG_ENV_VAR = 'HEADWAY_CONFIG';

const TAILSCALE_V4_RANGE = parsePrefix('100.64.0.0/10');
const TAILSCALE_V6_RANGE = parsePrefix('fd7a:115c:a1e0::/48');
/** sun_path is 108 bytes on Linux, including the terminating NUL. */
const UNIX_SOCKET_PATH_MAX = 107;

export interface LoadConfigOptions {
  /** The config file; else $HEADWAY_CONFIG; else no file (built-in defaults). */
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** Where relative paths given on the command line and the default data_dir are resolved. */
  cwd?: string;
}

/**
 * Reads, validates and freezes the configuration. Throws ConfigError (HW_CONFIG_UNREADABLE,
 * HW_CONFIG_SYNTAX or HW_CONFIG_INVALID) listing every problem found.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const envPath = env[CONFIG_ENV_VAR];
  const file = options.path ?? (envPath !== undefined && envPath !== '' ? envPath : undefined);
  if (file === undefined) return configFromObject({}, { cwd });

  const absolute = resolve(cwd, file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (err) {
    throw new ConfigError(ConfigErrors.unreadable, [`${file}: cannot read the configuration file: ${readFailure(err)}`], { cause: err });
  }
  return configFromText(text, { source: file, baseDir: dirname(absolute), cwd });
}

function readFailure(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  switch (code) {
    case 'ENOENT': return 'no such file';
    case 'EACCES': return 'permission denied';
    case 'EISDIR': return 'it is a directory';
    default: return err instanceof Error ? err.message : String(err);
  }
}

export interface ConfigFromTextOptions {
  /** Named in messages; also the Config's `source`. */
  source: string;
  /** Relative paths in the text are resolved against this (the file's directory). */
  baseDir: string;
  cwd?: string;
}

/** Parses YAML text as a config file. */
export function configFromText(text: string, options: ConfigFromTextOptions): Config {
  // logLevel 'error': yaml would print its warnings (unknown tags, directives) to stderr itself.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((err) => {
      const pos = err.linePos?.[0];
      const where = pos ? `${options.source}:${pos.line}:${pos.col}` : options.source;
      return `${where}: YAML syntax error: ${yamlReason(err.message)}`;
    });
    throw new ConfigError(ConfigErrors.syntax, problems);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // An alias without its anchor, or an alias bomb past maxAliasCount, surfaces only here.
    if (!(err instanceof Error)) throw err;
    throw new ConfigError(ConfigErrors.syntax, [`${options.source}: YAML error: ${yamlReason(err.message)}`]);
  }
  return configFromObject(value, options);
}

/** yaml's messages end with " at line L, column C:" and a source excerpt; we print the position ourselves. */
function yamlReason(message: string): string {
  const firstLine = message.split('\n')[0] ?? message;
  return firstLine.replace(/ at line \d+, column \d+:?$/, '');
}

export interface ConfigFromObjectOptions {
  /** Named in messages and kept as `Config.source`; null when not from a file. */
  source?: string | null;
  /** Relative paths in the object are resolved against this; default `cwd`. */
  baseDir?: string;
  cwd?: string;
}

/**
 * Validates an already parsed object in the YAML spelling (snake_case keys), e.g. from a test:
 * `configFromObject({ listen_addr: '127.0.0.1:0', data_dir: dir })`.
 */
export function configFromObject(input: unknown, options: ConfigFromObjectOptions = {}): Config {
  const source = options.source ?? null;
  const label = source ?? 'config';
  const cwd = options.cwd ?? process.cwd();
  const baseDir = options.baseDir ?? cwd;
  const problems: string[] = [];
  const warnings: string[] = [];

  if (input === null || input === undefined) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new ConfigError(ConfigErrors.invalid, [`${label}: the top level must be a mapping of keys, got ${describeValue(input)}`]);
  }
  const raw = structuredClone(input) as Record<string, unknown>;
  sortOutHeadscaleKeys(raw, label, problems, warnings);
  dropIgnoredKeys(raw, RETIRED_KEYS, label, warnings);

  const parsed = rawConfigSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(...describeIssue(issue, label));
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(ConfigErrors.invalid, problems);

  const config = resolveConfig(parsed.data, { label, source, cwd, baseDir, problems, warnings });
  if (problems.length > 0) throw new ConfigError(ConfigErrors.invalid, problems);
  return deepFreeze(config);
}

/** The configuration with no file at all: what `npm start` runs with. */
export function defaultConfig(options: { cwd?: string } = {}): Config {
  return configFromObject({}, options);
}

/** Headway keys that no longer do anything: accepted with a warning, then dropped. */
const RETIRED_KEYS: Record<string, string> = {
  'map.splice_data_frames': 'deprecated: since 2026-12-06 the server frames every HTTP/2 stream itself; remove the key',
};

// --- headscale keys ---------------------------------------------------------------------------

/** Takes each of `keys` out of `raw`, with a warning saying why it is ignored. */
function dropIgnoredKeys(raw: Record<string, unknown>, keys: Record<string, string>, label: string, warnings: string[]): void {
  for (const [key, why] of Object.entries(keys)) {
    if (takeKey(raw, key).found) warnings.push(`${label}: ${key}: ignored (${why})`);
  }
}

function sortOutHeadscaleKeys(raw: Record<string, unknown>, label: string, problems: string[], warnings: string[]): void {
  dropIgnoredKeys(raw, IGNORED_HEADSCALE_KEYS, label, warnings);
  for (const [key, replacement] of Object.entries(RENAMED_HEADSCALE_KEYS)) {
    if (takeKey(raw, key).found) problems.push(`${label}: ${key}: this headscale key was renamed; use ${replacement}`);
  }
  for (const [key, { why, when }] of Object.entries(UNSUPPORTED_HEADSCALE_KEYS)) {
    const taken = takeKey(raw, key);
    if (!taken.found) continue;
    if (when(taken.value)) problems.push(`${label}: ${key}: not supported by Headway: ${why}`);
    else warnings.push(`${label}: ${key}: ignored (not supported by Headway, and the value asks for nothing)`);
  }
}

/** Removes a dotted key from a nested plain object, returning what was there. */
function takeKey(root: Record<string, unknown>, dotted: string): { found: boolean; value?: unknown } {
  const segments = dotted.split('.');
  let node: unknown = root;
  for (const segment of segments.slice(0, -1)) {
    if (typeof node !== 'object' || node === null || Array.isArray(node)) return { found: false };
    node = (node as Record<string, unknown>)[segment];
  }
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return { found: false };
  const last = segments[segments.length - 1]!;
  const holder = node as Record<string, unknown>;
  if (!Object.hasOwn(holder, last)) return { found: false };
  const value = holder[last];
  delete holder[last];
  return { found: true, value };
}

// --- zod issues -------------------------------------------------------------------------------

export function formatKeyPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z0-9_-]+$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

function describeIssue(issue: $ZodIssue, label: string): string[] {
  const where = issue.path.length > 0 ? `${label}: ${formatKeyPath(issue.path)}` : label;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => {
        const dotted = formatKeyPath([...issue.path, key]);
        const suggestion = suggestKey(issue.path.filter((s): s is string => typeof s === 'string'), key);
        return `${label}: ${dotted}: unknown key${suggestion ? ` (did you mean ${suggestion}?)` : ''}`;
      });
    case 'invalid_type': {
      const want = issue.expected === 'array' ? 'a list' : issue.expected === 'object' || issue.expected === 'record' ? 'a mapping' : `a ${issue.expected}`;
      return [`${where}: want ${want}, got ${describeValue(issue.input)}`];
    }
    case 'custom':
      return [`${where}: ${issue.message}`];
    default:
      return [`${where}: ${issue.message}`];
  }
}

const KNOWN_KEYS: readonly string[] = CONFIG_REFERENCE.map((entry) => entry.key);

/** The known key a misspelt one most likely meant, or undefined when nothing is close. */
export function suggestKey(parent: readonly string[], key: string): string | undefined {
  const parentText = parent.join('.');
  const normalise = (text: string) => text.toLowerCase().replace(/[_-]/g, '');
  const siblings = new Set<string>();
  for (const known of KNOWN_KEYS) {
    if (parentText !== '' && !known.startsWith(`${parentText}.`)) continue;
    const rest = parentText === '' ? known : known.slice(parentText.length + 1);
    siblings.add(rest.split('.')[0]!);
  }
  let best: { name: string; distance: number } | undefined;
  for (const sibling of siblings) {
    const distance = normalise(sibling) === normalise(key) ? 0 : editDistance(sibling, key);
    if (distance <= Math.max(1, Math.min(2, Math.floor(key.length / 3))) && (best === undefined || distance < best.distance)) {
      best = { name: sibling, distance };
    }
  }
  if (best !== undefined) return parentText === '' ? best.name : `${parentText}.${best.name}`;
  // The right key in the wrong section (`base_domain` at the top instead of `dns.base_domain`).
  const sections = new Set<string>();
  for (const known of KNOWN_KEYS) {
    const segments = known.split('.');
    const at = segments.indexOf(key);
    if (at !== -1) sections.add(segments.slice(0, at + 1).join('.'));
  }
  if (sections.size === 1) return [...sections][0];
  return undefined;
}

function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j]!;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

// --- defaults and cross-key rules -------------------------------------------------------------

interface ResolveContext {
  label: string;
  source: string | null;
  cwd: string;
  baseDir: string;
  problems: string[];
  warnings: string[];
}

/** An absent or empty YAML section: every key undefined. */
type Section<T> = NonNullable<T>;

const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 8080 };
/** headscale's default: metrics stay on the loopback interface unless the operator moves them. */
const DEFAULT_METRICS_LISTEN: ListenAddress = { host: '127.0.0.1', port: 9090 };
const DEFAULT_STUN_PORT = 3478;

function resolveConfig(raw: RawConfig, ctx: ResolveContext): Config {
  const { label, problems } = ctx;
  const problem = (key: string, text: string) => problems.push(`${label}: ${key}: ${text}`);
  const path = (value: string) => resolve(ctx.baseDir, value);
  const optionalPath = (value: string | null | undefined) => (value === undefined || value === null ? null : path(value));

  const dataDir = raw.data_dir === undefined ? resolve(ctx.cwd, 'data') : path(raw.data_dir);
  const listenAddr = raw.listen_addr ?? DEFAULT_LISTEN;
  const serverUrl = raw.server_url ?? 'http://127.0.0.1:8080';
  const metricsListenAddr = raw.metrics_listen_addr === undefined ? DEFAULT_METRICS_LISTEN : raw.metrics_listen_addr;
  if (metricsListenAddr !== null && metricsListenAddr.port !== 0 && metricsListenAddr.port === listenAddr.port && metricsListenAddr.host === listenAddr.host) {
    problem('metrics_listen_addr', 'must differ from listen_addr');
  }

  // The admin socket needs no API key: whoever can open it is an administrator, so it may
  // never be open to every local user.
  const unixSocketPermission = raw.unix_socket_permission ?? 0o770;
  if ((unixSocketPermission & 0o007) !== 0) {
    problem('unix_socket_permission', `"0${unixSocketPermission.toString(8)}" lets every local user administer Headway through the admin socket; use "0700" (owner only) or "0770" (owner and group)`);
  }

  const unixSocket = raw.unix_socket === undefined ? resolve(dataDir, 'headway.sock') : path(raw.unix_socket);
  if (Buffer.byteLength(unixSocket) > UNIX_SOCKET_PATH_MAX) {
    problem('unix_socket', `${JSON.stringify(unixSocket)} is ${Buffer.byteLength(unixSocket)} bytes long; unix sockets allow at most ${UNIX_SOCKET_PATH_MAX} (set unix_socket to a shorter path)`);
  }

  // Prefixes: absent = default, null/"" = that family is off.
  const v4 = raw.prefixes?.v4 === undefined ? TAILSCALE_V4_RANGE : raw.prefixes.v4;
  const v6 = raw.prefixes?.v6 === undefined ? TAILSCALE_V6_RANGE : raw.prefixes.v6;
  if (v4 !== null && !prefixCovers(TAILSCALE_V4_RANGE, v4)) {
    problem('prefixes.v4', `"${formatPrefix(v4)}" is outside 100.64.0.0/10 (Tailscale clients only accept addresses there)`);
  }
  if (v6 !== null && !prefixCovers(TAILSCALE_V6_RANGE, v6)) {
    problem('prefixes.v6', `"${formatPrefix(v6)}" is outside fd7a:115c:a1e0::/48 (Tailscale clients only accept addresses there)`);
  }
  if (v4 === null && v6 === null) problems.push(`${label}: prefixes: at least one of prefixes.v4 and prefixes.v6 must be set`);

  const database = resolveDatabase(raw, dataDir, path, problem);

  const policyMode = raw.policy?.mode ?? 'database';
  const policyPath = optionalPath(raw.policy?.path);
  if (policyMode === 'database' && policyPath !== null) {
    ctx.warnings.push(`${label}: policy.path: ignored because policy.mode is database (set policy.mode: file to use the file)`);
  }

  const dnsRaw = raw.dns ?? ({} as Section<RawConfig['dns']>);
  const magicDns = dnsRaw.magic_dns ?? true;
  const baseDomain = dnsRaw.base_domain ?? 'headway.internal';
  const serverHost = new URL(serverUrl).hostname.toLowerCase();
  if (serverHost === baseDomain || serverHost.endsWith(`.${baseDomain}`)) {
    problem('dns.base_domain', `"${baseDomain}" contains server_url's host "${serverHost}"; clients would resolve the control server through MagicDNS and lose it (use a domain that does not contain it)`);
  }
  const overrideLocalDns = dnsRaw.override_local_dns ?? false;
  const nameserversGlobal = compact(dnsRaw.nameservers?.global ?? []);
  if (overrideLocalDns && nameserversGlobal.length === 0) {
    problem('dns.override_local_dns', 'true needs at least one server in dns.nameservers.global');
  }
  const nameserversSplit: Record<string, readonly string[]> = {};
  for (const [domain, servers] of Object.entries(dnsRaw.nameservers?.split ?? {})) {
    nameserversSplit[domain] = compact(servers);
  }
  const extraRecords: DnsExtraRecord[] = [];
  (dnsRaw.extra_records ?? []).forEach((record, index) => {
    const where = `dns.extra_records[${index}]`;
    if (record.name === undefined || record.type === undefined || record.value === undefined) {
      problem(where, 'needs name, type (A or AAAA) and value');
      return;
    }
    const addr = tryParseIP(record.value.trim());
    const family = record.type === 'A' ? 4 : 6;
    if (addr === null || addr.family !== family) {
      problem(`${where}.value`, `"${record.value}" is not an IPv${family} address (type ${record.type})`);
      return;
    }
    extraRecords.push({ name: record.name, type: record.type, value: record.value.trim() });
  });
  const extraRecordsPath = optionalPath(dnsRaw.extra_records_path);
  if (extraRecordsPath !== null && extraRecords.length > 0) {
    problem('dns.extra_records_path', 'cannot be used together with dns.extra_records; keep one');
  }

  const derpRaw = raw.derp ?? ({} as Section<RawConfig['derp']>);
  const derpServerRaw = derpRaw.server ?? ({} as Section<Section<RawConfig['derp']>['server']>);
  const derpEnabled = derpServerRaw.enabled ?? true;
  const stunListenAddr = derpServerRaw.stun_listen_addr === undefined
    ? { host: listenAddr.host, port: DEFAULT_STUN_PORT }
    : derpServerRaw.stun_listen_addr;
  if (stunListenAddr === null && derpEnabled) {
    problem('derp.server.stun_listen_addr', 'required while derp.server.enabled is true (clients need STUN to find their public address)');
  }
  const automaticallyAdd = derpServerRaw.automatically_add_embedded_derp_region ?? true;
  const derpUrls = compact(derpRaw.urls ?? []);
  const derpPaths = compact(derpRaw.paths ?? []).map(path);
  if (!(derpEnabled && automaticallyAdd) && derpUrls.length === 0 && derpPaths.length === 0) {
    problems.push(`${label}: derp: no DERP region configured; enable derp.server or list derp.urls or derp.paths (Tailscale clients need at least one region)`);
  }
  const autoUpdateEnabled = derpRaw.auto_update_enabled ?? true;
  const updateFrequencyMs = derpRaw.update_frequency ?? 3 * 3_600_000;
  if (autoUpdateEnabled && updateFrequencyMs <= 0) problem('derp.update_frequency', 'must be longer than 0 while derp.auto_update_enabled is true');

  const nodeExpiryMs = pickAlias(raw.node_expiry, raw.node?.expiry, 'node_expiry', 'node.expiry', problems, label) ?? 0;
  const ephemeralMs = pickAlias(
    raw.ephemeral_node_inactivity_timeout, raw.node?.ephemeral?.inactivity_timeout,
    'ephemeral_node_inactivity_timeout', 'node.ephemeral.inactivity_timeout', problems, label,
  ) ?? 30 * 60_000;
  if (ephemeralMs <= 0) problem(raw.node?.ephemeral?.inactivity_timeout !== undefined ? 'node.ephemeral.inactivity_timeout' : 'ephemeral_node_inactivity_timeout', 'must be longer than 0');

  const tlsCert = optionalPath(raw.tls_cert_path);
  const tlsKey = optionalPath(raw.tls_key_path);
  if ((tlsCert === null) !== (tlsKey === null)) {
    problem(tlsCert === null ? 'tls_cert_path' : 'tls_key_path', `required together with ${tlsCert === null ? 'tls_key_path' : 'tls_cert_path'}`);
  }

  const coalesceWindowMs = raw.map?.coalesce_window ?? 50;
  if (coalesceWindowMs > 10_000) problem('map.coalesce_window', `${formatDurationMs(coalesceWindowMs)} is too long (at most 10s; clients would see changes late)`);
  const keepaliveIntervalMs = raw.map?.keepalive_interval ?? 50_000;
  if (keepaliveIntervalMs < 1_000 || keepaliveIntervalMs > 100_000) {
    problem('map.keepalive_interval', `${formatDurationMs(keepaliveIntervalMs)} is out of range (want 1s to 100s; clients drop a stream silent for 120s)`);
  }

  const warn = (key: string, text: string) => ctx.warnings.push(`${label}: ${key}: ${text}`);
  const oidc = resolveOidc(raw, path, problem, warn);
  const scim = resolveScim(raw, path, problem, warn);
  const ha = resolveHa(raw, database.type, problem);
  const offlineGraceMs = raw.node?.offline_grace ?? 10_000;
  const routerFailoverGraceMs = raw.node?.router_failover_grace ?? 1_000;
  if (offlineGraceMs > 600_000) problem('node.offline_grace', `${formatDurationMs(offlineGraceMs)} is too long (at most 10m; peers would keep trying an absent node)`);
  if (routerFailoverGraceMs > offlineGraceMs) {
    problem('node.router_failover_grace', `${formatDurationMs(routerFailoverGraceMs)} is longer than node.offline_grace (${formatDurationMs(offlineGraceMs)}); a router would fail over later than an ordinary node goes offline`);
  }

  const limitsRaw = raw.limits ?? {};
  const limits: LimitsConfig = {
    maxPendingConnectionsPerAddress: limitsRaw.max_pending_connections_per_address ?? 256,
    maxPendingConnections: limitsRaw.max_pending_connections ?? 4096,
    pendingTimeoutMs: limitsRaw.pending_timeout ?? 10_000,
    maxHeaderBytes: limitsRaw.max_header_bytes ?? 16 << 10,
    maxRequestBodyBytes: limitsRaw.max_request_body_bytes ?? 1 << 20,
    registrationsPerMinutePerAddress: limitsRaw.registrations_per_minute_per_address ?? 300,
    registrationsPerMinutePerKey: limitsRaw.registrations_per_minute_per_key ?? 300,
    apiRequestsPerMinutePerKey: limitsRaw.api_requests_per_minute_per_key ?? 1200,
  };
  if (limits.pendingTimeoutMs < 1_000 || limits.pendingTimeoutMs > 300_000) {
    problem('limits.pending_timeout', `${formatDurationMs(limits.pendingTimeoutMs)} is out of range (want 1s to 5m)`);
  }
  if (limits.maxPendingConnectionsPerAddress > limits.maxPendingConnections) {
    problem('limits.max_pending_connections_per_address', `${limits.maxPendingConnectionsPerAddress} is more than limits.max_pending_connections (${limits.maxPendingConnections})`);
  }

  return {
    source: ctx.source,
    serverUrl,
    listenAddr,
    metricsListenAddr,
    dataDir,
    unixSocket,
    unixSocketPermission,
    noise: { privateKeyPath: raw.noise?.private_key_path === undefined ? resolve(dataDir, 'noise_private.key') : path(raw.noise.private_key_path) },
    prefixes: {
      v4: v4 === null ? null : formatPrefix(v4),
      v6: v6 === null ? null : formatPrefix(v6),
      allocation: raw.prefixes?.allocation ?? 'sequential',
    },
    database,
    policy: { mode: policyMode, path: policyMode === 'file' ? policyPath : null },
    dns: {
      magicDns,
      baseDomain,
      overrideLocalDns,
      nameserversGlobal,
      nameserversSplit,
      searchDomains: compact(dnsRaw.search_domains ?? []),
      extraRecords,
      extraRecordsPath,
    },
    derp: {
      server: {
        enabled: derpEnabled,
        regionId: derpServerRaw.region_id ?? 999,
        regionCode: derpServerRaw.region_code ?? 'headway',
        regionName: derpServerRaw.region_name ?? 'Headway Embedded DERP',
        stunListenAddr: stunListenAddr ?? { host: listenAddr.host, port: DEFAULT_STUN_PORT },
        privateKeyPath: derpServerRaw.private_key_path === undefined ? resolve(dataDir, 'derp_server_private.key') : path(derpServerRaw.private_key_path),
        verifyClients: derpServerRaw.verify_clients ?? true,
        ipv4: derpServerRaw.ipv4 ?? null,
        ipv6: derpServerRaw.ipv6 ?? null,
        automaticallyAddEmbeddedDerpRegion: automaticallyAdd,
      },
      urls: derpUrls,
      paths: derpPaths,
      autoUpdateEnabled,
      updateFrequencyMs,
    },
    nodeExpiryMs,
    ephemeralNodeInactivityTimeoutMs: ephemeralMs,
    offlineGraceMs,
    routerFailoverGraceMs,
    log: { level: raw.log?.level ?? 'info', format: raw.log?.format ?? 'auto' },
    tls: tlsCert !== null && tlsKey !== null ? { certPath: tlsCert, keyPath: tlsKey } : null,
    map: { coalesceWindowMs, keepaliveIntervalMs },
    oidc,
    scim,
    ha,
    limits,
    warnings: ctx.warnings,
  };
}

/** A secret given inline or in a file (trailing newline dropped); null when neither is set. */
function readSecret(
  inline: string | null | undefined, filePath: string | null | undefined, keys: { inline: string; file: string },
  path: (value: string) => string, problem: (key: string, text: string) => void, warn: (key: string, text: string) => void,
): string | null {
  if (inline != null && filePath != null) {
    problem(keys.file, `cannot be used together with ${keys.inline}; keep one`);
    return null;
  }
  if (filePath != null) {
    try {
      const text = readFileSync(path(filePath), 'utf8').replace(/\r?\n$/, '');
      // Secrets at rest are for the server's user only.
      if ((statSync(path(filePath)).mode & 0o077) !== 0) warn(keys.file, `${filePath} is readable by other users; chmod 0600 it`);
      if (text.trim() === '') problem(keys.file, `${filePath}: the file is empty`);
      return text;
    } catch (err) {
      problem(keys.file, `${filePath}: cannot read the file: ${readFailure(err)}`);
      return null;
    }
  }
  return inline ?? null;
}

/** Makes JSON.stringify of a config section print `[redacted]` for one secret field. */
function redactOnPrint<T extends object>(value: T, field: keyof T): T {
  Object.defineProperty(value, 'toJSON', { enumerable: false, value: () => ({ ...value, [field]: '[redacted]' }) });
  return value;
}

function resolveOidc(raw: RawConfig, path: (value: string) => string, problem: (key: string, text: string) => void, warn: (key: string, text: string) => void): OidcConfig | null {
  const o = raw.oidc;
  if (o == null || o.issuer == null) {
    if (o != null && (o.client_id !== undefined || o.client_secret !== undefined)) problem('oidc.issuer', 'required when the oidc section sets a client (or remove the section)');
    return null;
  }
  if (o.client_id === undefined) problem('oidc.client_id', 'required with oidc.issuer');
  const issuerUrl = new URL(o.issuer);
  if (issuerUrl.protocol === 'http:' && !['localhost', '127.0.0.1', '[::1]'].includes(issuerUrl.hostname)) {
    problem('oidc.issuer', 'must be an https:// URL (plain http is accepted only for a provider on a loopback address)');
  }
  const secret = readSecret(o.client_secret, o.client_secret_path, { inline: 'oidc.client_secret', file: 'oidc.client_secret_path' }, path, problem, warn);
  if (secret === null && o.client_secret === undefined && o.client_secret_path === undefined) {
    problem('oidc.client_secret', 'required with oidc.issuer (or set oidc.client_secret_path)');
  }
  const scope = compact(o.scope ?? []);
  if (o.scope != null && !scope.includes('openid')) problem('oidc.scope', 'must include "openid"');
  const pkceEnabled = o.pkce?.enabled ?? true;
  const extraParams: Record<string, string> = {};
  for (const [key, value] of Object.entries(o.extra_params ?? {})) if (value !== undefined) extraParams[key] = value;
  for (const reserved of ['state', 'nonce', 'code_challenge', 'code_challenge_method', 'redirect_uri', 'client_id', 'response_type', 'scope']) {
    if (reserved in extraParams) problem(`oidc.extra_params.${reserved}`, 'is set by Headway itself and cannot be overridden');
  }
  const roleGroups: Record<string, OidcConfig['roleGroups'][string]> = {};
  for (const [group, role] of Object.entries(o.role_groups ?? {})) if (role !== undefined) roleGroups[group] = role;
  return redactOnPrint<OidcConfig>({
    issuer: o.issuer,
    clientId: o.client_id ?? '',
    clientSecret: secret ?? '',
    scope: o.scope == null ? ['openid', 'profile', 'email'] : scope,
    extraParams,
    allowedDomains: compact(o.allowed_domains ?? []),
    allowedUsers: compact(o.allowed_users ?? []).map((u) => u.toLowerCase()),
    allowedGroups: compact(o.allowed_groups ?? []),
    pkce: { enabled: pkceEnabled, method: o.pkce?.method ?? 'S256' },
    expiryMs: o.expiry ?? null,
    useExpiryFromToken: o.use_expiry_from_token ?? false,
    groupsClaim: o.groups_claim ?? 'groups',
    roleGroups,
    emailVerifiedRequired: o.email_verified_required ?? true,
    linkByEmail: o.link_by_email ?? false,
    tailnet: o.tailnet ?? 'default',
  }, 'clientSecret');
}

function resolveScim(raw: RawConfig, path: (value: string) => string, problem: (key: string, text: string) => void, warn: (key: string, text: string) => void): ScimConfig | null {
  const s = raw.scim;
  if (s == null) return null;
  const token = readSecret(s.token, s.token_path, { inline: 'scim.token', file: 'scim.token_path' }, path, problem, warn);
  if (token === null) return null;
  if (token.length < 32) problem(s.token_path != null ? 'scim.token_path' : 'scim.token', 'the token must be at least 32 characters (generate one with: openssl rand -hex 32)');
  return redactOnPrint<ScimConfig>({ token, tailnet: s.tailnet ?? 'default' }, 'token');
}

/** The `ha:` section; null unless enabled. HA needs PostgreSQL: SQLite is one process's file. */
function resolveHa(raw: RawConfig, databaseType: DatabaseConfig['type'], problem: (key: string, text: string) => void): HaConfig | null {
  const section = raw.ha ?? ({} as Section<RawConfig['ha']>);
  if (section.enabled !== true) return null;
  if (databaseType !== 'postgres') {
    problem('ha.enabled', 'high availability needs database.type postgres (several instances share one PostgreSQL; SQLite is a single-instance database)');
  }
  const secret = section.secret ?? '';
  if (secret.length < 16) {
    problem('ha.secret', `must be at least 16 characters, the same on every instance (it encrypts the shared private keys), got ${secret.length}`);
  }
  const leaseDurationMs = section.lease_duration ?? 10_000;
  const heartbeatIntervalMs = section.heartbeat_interval ?? 2_000;
  if (leaseDurationMs < 1_000) problem('ha.lease_duration', `${formatDurationMs(leaseDurationMs)} is too short (at least 1s)`);
  if (heartbeatIntervalMs <= 0 || heartbeatIntervalMs * 2 > leaseDurationMs) {
    problem('ha.heartbeat_interval', `${formatDurationMs(heartbeatIntervalMs)} must be above 0 and at most half of ha.lease_duration (${formatDurationMs(leaseDurationMs)})`);
  }
  return {
    instanceId: section.instance_id ?? hostname(),
    advertiseUrl: section.advertise_url ?? null,
    secret,
    leaseDurationMs,
    heartbeatIntervalMs,
  };
}

function resolveDatabase(
  raw: RawConfig,
  dataDir: string,
  path: (value: string) => string,
  problem: (key: string, text: string) => void,
): DatabaseConfig {
  const type = raw.database?.type ?? 'sqlite';
  if (type === 'sqlite') {
    const sqlite = raw.database?.sqlite ?? ({} as Section<Section<RawConfig['database']>['sqlite']>);
    return {
      type,
      sqlite: {
        path: sqlite.path === undefined ? resolve(dataDir, 'headway.sqlite') : sqlite.path === ':memory:' ? ':memory:' : path(sqlite.path),
        writeAheadLog: sqlite.write_ahead_log ?? true,
      },
    };
  }
  const pg = raw.database?.postgres ?? ({} as Section<Section<RawConfig['database']>['postgres']>);
  const url = pg.url ?? null;
  const fieldsSet = (['host', 'port', 'name', 'user', 'pass', 'ssl'] as const).filter((key) => pg[key] !== undefined);
  if (url !== null) {
    if (fieldsSet.length > 0) {
      problem('database.postgres.url', `cannot be used together with database.postgres.${fieldsSet.join(', database.postgres.')}; keep one form`);
    }
    if (!/^postgres(ql)?:\/\//.test(url)) problem('database.postgres.url', 'must start with postgres:// or postgresql://');
  } else {
    if (pg.host === undefined || pg.host === '') problem('database.postgres.host', 'required when database.type is postgres (or set database.postgres.url)');
    if (pg.name === undefined || pg.name === '') problem('database.postgres.name', 'required when database.type is postgres (or set database.postgres.url)');
  }
  const postgres: PostgresConfig = {
    url,
    host: pg.host ?? '',
    port: pg.port ?? 5432,
    name: pg.name ?? '',
    user: pg.user ?? '',
    pass: pg.pass ?? '',
    ssl: pg.ssl ?? 'disable',
    maxOpenConns: pg.max_open_conns ?? 10,
  };
  // Logging or printing the config must not print the password.
  Object.defineProperty(postgres, 'toJSON', {
    enumerable: false,
    value: () => ({ ...postgres, pass: postgres.pass === '' ? '' : '[redacted]', url: url === null ? null : redactUrlPassword(url) }),
  });
  return { type, postgres };
}

function redactUrlPassword(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = 'redacted';
    return url.toString();
  } catch {
    return '[redacted]';
  }
}

/** headscale renamed some keys; both spellings are accepted, but not both at once. */
function pickAlias(
  ours: number | undefined, theirs: number | undefined, oursKey: string, theirsKey: string, problems: string[], label: string,
): number | undefined {
  if (ours !== undefined && theirs !== undefined) {
    problems.push(`${label}: ${theirsKey}: set either ${oursKey} or ${theirsKey}, not both`);
  }
  return ours ?? theirs;
}

function compact<T>(values: readonly (T | undefined)[]): T[] {
  return values.filter((value): value is T => value !== undefined);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
