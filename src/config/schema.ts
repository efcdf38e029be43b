// The YAML shape, in headscale's spelling. zod checks the structure (mappings, lists, unknown
// keys) and keeps key paths; every leaf is parsed by our own small parsers so each message says
// what was wanted and what was found. Cross-key rules and defaults live in resolve.ts.
import { z } from 'zod';
import { DurationParseError, parseDurationMs } from '../util/duration.js';
import { IPParseError, formatPrefix, parsePrefix, tryParseIP } from '../util/ip.js';
import type { IPPrefix } from '../util/ip.js';
import type { ListenAddress, PostgresSslMode } from './config.js';

/** A problem found in one value; the caller prefixes the key path. */
export class ValueProblem extends Error {
  override name = 'ValueProblem';
}

export function describeValue(value: unknown): string {
  if (value === null) return 'nothing (null)';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${String(value)}`;
  if (typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

type Parse<T> = (value: unknown) => T;

/**
 * A leaf whose absence (or null) means "use the default": yields undefined then.
 * Parse errors become zod issues at the leaf's path.
 */
function leaf<T>(parse: Parse<T>) {
  return z.unknown().transform((value, ctx): T | undefined => {
    if (value === undefined || value === null) return undefined;
    try {
      return parse(value);
    } catch (err) {
      if (!(err instanceof ValueProblem)) throw err;
      ctx.issues.push({ code: 'custom', message: err.message, input: value });
      return z.NEVER;
    }
  }).optional();
}

/** A leaf where an explicit null or "" switches the feature off: yields null then. */
function disableable<T>(parse: Parse<T>) {
  return z.unknown().transform((value, ctx): T | null | undefined => {
    if (value === undefined) return undefined;
    if (value === null || value === '') return null;
    try {
      return parse(value);
    } catch (err) {
      if (!(err instanceof ValueProblem)) throw err;
      ctx.issues.push({ code: 'custom', message: err.message, input: value });
      return z.NEVER;
    }
  }).optional();
}

// --- leaf parsers ---------------------------------------------------------------------------

export const parseString: Parse<string> = (value) => {
  if (typeof value !== 'string') throw new ValueProblem(`want a string, got ${describeValue(value)}`);
  return value;
};

const parseNonEmptyString: Parse<string> = (value) => {
  const text = parseString(value);
  if (text.trim() === '') throw new ValueProblem('must not be empty');
  return text;
};

export const parseBool: Parse<boolean> = (value) => {
  if (typeof value !== 'boolean') throw new ValueProblem(`want true or false, got ${describeValue(value)}`);
  return value;
};

function parseInt(min: number, max: number): Parse<number> {
  return (value) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      throw new ValueProblem(`want an integer from ${min} to ${max}, got ${describeValue(value)}`);
    }
    return value;
  };
}

function parseEnum<const T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}): Parse<T> {
  return (value) => {
    if (typeof value === 'string') {
      if ((values as readonly string[]).includes(value)) return value as T;
      const alias = aliases[value];
      if (alias !== undefined) return alias;
    }
    throw new ValueProblem(`${describeValue(value)} is not one of: ${values.join(', ')}`);
  };
}

/** Go duration syntax plus d and w; a bare 0 is zero. */
export const parseDuration: Parse<number> = (value) => {
  if (value === 0) return 0;
  if (typeof value === 'number') {
    throw new ValueProblem(`want a duration with a unit such as "30m" or "24h", got ${describeValue(value)}`);
  }
  const text = parseString(value);
  try {
    return parseDurationMs(text);
  } catch (err) {
    if (err instanceof DurationParseError) throw new ValueProblem(err.message);
    throw err;
  }
};

function parsePrefixOf(family: 4 | 6): Parse<IPPrefix> {
  return (value) => {
    const text = parseString(value);
    let prefix: IPPrefix;
    try {
      prefix = parsePrefix(text.trim(), { strict: true });
    } catch (err) {
      if (err instanceof IPParseError) throw new ValueProblem(err.message);
      throw err;
    }
    if (prefix.addr.family !== family) {
      throw new ValueProblem(`${JSON.stringify(text)} is not an IPv${family} prefix`);
    }
    return prefix;
  };
}

/** `host:port`, `[v6]:port` or `:port` (every interface). */
export const parseListenAddress: Parse<ListenAddress> = (value) => {
  const text = parseString(value).trim();
  const bad = () => new ValueProblem(`${JSON.stringify(text)} is not a listen address (want host:port, e.g. "0.0.0.0:8080", "[::]:8080" or ":8080")`);
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1 || text[close + 1] !== ':') throw bad();
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    const addr = tryParseIP(host);
    if (addr === null || addr.family !== 6) throw bad();
  } else {
    const colon = text.lastIndexOf(':');
    if (colon === -1 || text.indexOf(':') !== colon) throw bad();
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host !== '' && tryParseIP(host) === null && !isHostname(host)) throw bad();
  }
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    throw new ValueProblem(`${JSON.stringify(text)}: port must be a number from 0 to 65535`);
  }
  return { host, port: Number(portText) };
};

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

export function isHostname(text: string): boolean {
  if (text.length === 0 || text.length > 253) return false;
  return text.split('.').every((label) => HOST_LABEL.test(label));
}

/** A fully qualified domain name without the trailing dot, lower-cased. */
export const parseDomain: Parse<string> = (value) => {
  const text = parseString(value).trim();
  if (text.endsWith('.')) throw new ValueProblem(`${JSON.stringify(text)} must not end with a dot`);
  if (!isHostname(text) || tryParseIP(text) !== null) {
    throw new ValueProblem(`${JSON.stringify(text)} is not a domain name (want e.g. "ts.example.com")`);
  }
  return text.toLowerCase();
};

function parseHttpUrl(what: string): Parse<URL> {
  return (value) => {
    const text = parseString(value).trim();
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw new ValueProblem(`${JSON.stringify(text)} is not a URL (want ${what})`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new ValueProblem(`${JSON.stringify(text)} must start with http:// or https://`);
    }
    return url;
  };
}

/** The URL clients dial: scheme, host, optional port; no path, query or credentials. */
export const parseServerUrl: Parse<string> = (value) => {
  const url = parseHttpUrl('e.g. "https://headway.example.com"')(value);
  const text = String(value).trim();
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new ValueProblem(`${JSON.stringify(text)} must not have a path, query or fragment (Tailscale clients talk to /key and /ts2021 at the root)`);
  }
  if (url.username !== '' || url.password !== '') throw new ValueProblem(`${JSON.stringify(text)} must not carry credentials`);
  return url.origin;
};

export const parseUrl: Parse<string> = (value) => parseHttpUrl('an http:// or https:// URL')(value).href;

/** A nameserver: an IP address or a DNS-over-HTTPS URL. */
export const parseNameserver: Parse<string> = (value) => {
  const text = parseString(value).trim();
  const addr = tryParseIP(text);
  if (addr !== null) return text;
  if (text.startsWith('https://')) {
    try {
      return new URL(text).href;
    } catch {
      // fall through to the message below
    }
  }
  throw new ValueProblem(`${JSON.stringify(text)} is neither an IP address nor an https:// (DNS-over-HTTPS) URL`);
};

function parseIPOf(family: 4 | 6): Parse<string> {
  return (value) => {
    const text = parseString(value).trim();
    const addr = tryParseIP(text);
    if (addr === null || addr.family !== family) throw new ValueProblem(`${JSON.stringify(text)} is not an IPv${family} address`);
    return text;
  };
}

/** File modes are written as octal strings ("0770", "0o770"); a YAML number is ambiguous. */
export const parseFileMode: Parse<number> = (value) => {
  if (typeof value === 'number') {
    throw new ValueProblem(`want a quoted octal string such as "0770", got ${describeValue(value)} (YAML reads an unquoted 0770 as decimal)`);
  }
  const text = parseString(value).trim();
  const match = /^0?o?([0-7]{3,4})$/.exec(text);
  if (match === null) throw new ValueProblem(`${JSON.stringify(text)} is not an octal file mode (want e.g. "0770")`);
  const mode = Number.parseInt(match[1]!, 8);
  if (mode > 0o777) throw new ValueProblem(`${JSON.stringify(text)}: only permission bits (at most 0777) are allowed`);
  return mode;
};

const SSL_MODES: readonly PostgresSslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

export const parseSslMode: Parse<PostgresSslMode> = (value) => {
  if (value === false) return 'disable';
  if (value === true) return 'require';
  if (typeof value === 'string' && (SSL_MODES as readonly string[]).includes(value)) return value as PostgresSslMode;
  if (value === 'true') return 'require';
  if (value === 'false') return 'disable';
  throw new ValueProblem(`${describeValue(value)} is not true, false or a libpq sslmode (${SSL_MODES.join(', ')})`);
};

function listOf<T>(parse: Parse<T>) {
  return z.array(leaf(parse));
}

// --- the shape ------------------------------------------------------------------------------

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const LOG_FORMATS = ['json', 'pretty', 'auto'] as const;

const extraRecordSchema = z.strictObject({
  name: leaf(parseDomain),
  type: leaf(parseEnum(['A', 'AAAA'] as const)),
  value: leaf(parseNonEmptyString),
});

/** Objects may be absent or null (an empty YAML section); both mean "all defaults". */
function section<S extends z.core.$ZodLooseShape>(shape: S) {
  return z.strictObject(shape).nullish();
}

export const rawConfigSchema = z.strictObject({
  server_url: leaf(parseServerUrl),
  listen_addr: leaf(parseListenAddress),
  metrics_listen_addr: disableable(parseListenAddress),
  data_dir: leaf(parseNonEmptyString),
  unix_socket: leaf(parseNonEmptyString),
  unix_socket_permission: leaf(parseFileMode),
  noise: section({
    private_key_path: leaf(parseNonEmptyString),
  }),
  prefixes: section({
    v4: disableable(parsePrefixOf(4)),
    v6: disableable(parsePrefixOf(6)),
    allocation: leaf(parseEnum(['sequential', 'random'] as const)),
  }),
  database: section({
    // headscale writes sqlite3 in older files.
    type: leaf(parseEnum(['sqlite', 'postgres'] as const, { sqlite3: 'sqlite', postgresql: 'postgres' })),
    sqlite: section({
      path: leaf(parseNonEmptyString),
      write_ahead_log: leaf(parseBool),
    }),
    postgres: section({
      url: disableable(parseString),
      host: leaf(parseString),
      port: leaf(parseInt(1, 65535)),
      name: leaf(parseString),
      user: leaf(parseString),
      pass: leaf(parseString),
      ssl: leaf(parseSslMode),
      max_open_conns: leaf(parseInt(1, 1000)),
    }),
  }),
  policy: section({
    mode: leaf(parseEnum(['file', 'database'] as const)),
    path: disableable(parseString),
  }),
  dns: section({
    magic_dns: leaf(parseBool),
    base_domain: leaf(parseDomain),
    override_local_dns: leaf(parseBool),
    nameservers: section({
      global: listOf(parseNameserver).nullish(),
      split: z.record(z.string(), listOf(parseNameserver)).nullish(),
    }),
    search_domains: listOf(parseDomain).nullish(),
    extra_records: z.array(extraRecordSchema).nullish(),
    extra_records_path: disableable(parseString),
  }),
  derp: section({
    server: section({
      enabled: leaf(parseBool),
      region_id: leaf(parseInt(1, 2_147_483_647)),
      region_code: leaf(parseNonEmptyString),
      region_name: leaf(parseNonEmptyString),
      stun_listen_addr: disableable(parseListenAddress),
      private_key_path: leaf(parseNonEmptyString),
      verify_clients: leaf(parseBool),
      ipv4: disableable(parseIPOf(4)),
      ipv6: disableable(parseIPOf(6)),
      automatically_add_embedded_derp_region: leaf(parseBool),
    }),
    urls: listOf(parseUrl).nullish(),
    paths: listOf(parseNonEmptyString).nullish(),
    auto_update_enabled: leaf(parseBool),
    update_frequency: leaf(parseDuration),
  }),
  node_expiry: leaf(parseDuration),
  ephemeral_node_inactivity_timeout: leaf(parseDuration),
  // headscale 0.27+ spells these node.expiry and node.ephemeral.inactivity_timeout.
  node: section({
    expiry: leaf(parseDuration),
    offline_grace: leaf(parseDuration),
    router_failover_grace: leaf(parseDuration),
    ephemeral: section({
      inactivity_timeout: leaf(parseDuration),
    }),
  }),
  log: section({
    level: leaf(parseEnum(LOG_LEVELS, { panic: 'fatal', warning: 'warn' })),
    // headscale's "text" is the human-readable form.
    format: leaf(parseEnum(LOG_FORMATS, { text: 'pretty' })),
  }),
  tls_cert_path: disableable(parseString),
  tls_key_path: disableable(parseString),
  map: section({
    coalesce_window: leaf(parseDuration),
    keepalive_interval: leaf(parseDuration),
  }),
  oidc: section({
    issuer: disableable(parseUrl),
    client_id: leaf(parseNonEmptyString),
    client_secret: leaf(parseNonEmptyString),
    client_secret_path: leaf(parseNonEmptyString),
    scope: listOf(parseNonEmptyString).nullish(),
    extra_params: z.record(z.string(), leaf(parseString)).nullish(),
    allowed_domains: listOf(parseDomain).nullish(),
    allowed_users: listOf(parseNonEmptyString).nullish(),
    allowed_groups: listOf(parseNonEmptyString).nullish(),
    pkce: section({
      enabled: leaf(parseBool),
      method: leaf(parseEnum(['S256'] as const)),
    }),
    expiry: leaf(parseDuration),
    use_expiry_from_token: leaf(parseBool),
    groups_claim: leaf(parseNonEmptyString),
    role_groups: z.record(z.string(), leaf(parseEnum(['admin', 'it-admin', 'network-admin', 'billing-admin', 'auditor', 'member'] as const))).nullish(),
    email_verified_required: leaf(parseBool),
    link_by_email: leaf(parseBool),
    tailnet: leaf(parseNonEmptyString),
  }),
  scim: section({
    token: disableable(parseNonEmptyString),
    token_path: disableable(parseNonEmptyString),
    tailnet: leaf(parseNonEmptyString),
  }),
  ha: section({
    enabled: leaf(parseBool),
    instance_id: leaf(parseNonEmptyString),
    advertise_url: disableable(parseUrl),
    secret: leaf(parseString),
    lease_duration: leaf(parseDuration),
    heartbeat_interval: leaf(parseDuration),
  }),
  limits: section({
    max_pending_connections_per_address: leaf(parseInt(1, 1_000_000)),
    max_pending_connections: leaf(parseInt(1, 1_000_000)),
    pending_timeout: leaf(parseDuration),
    max_header_bytes: leaf(parseInt(1024, 1 << 20)),
    max_request_body_bytes: leaf(parseInt(1024, 64 << 20)),
    registrations_per_minute_per_address: leaf(parseInt(0, 1_000_000)),
    registrations_per_minute_per_key: leaf(parseInt(0, 1_000_000)),
    api_requests_per_minute_per_key: leaf(parseInt(0, 1_000_000)),
  }),
});

export type RawConfig = z.output<typeof rawConfigSchema>;

export { formatPrefix };
