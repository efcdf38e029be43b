// The validated configuration as the rest of the server sees it: camelCase, every default
// filled in, every path absolute, durations in milliseconds, frozen. The YAML spelling
// (snake_case, headscale's names) lives only in schema.ts and reference.ts.
import type { LogFormat, LogLevel } from '../log/index.js';

/** A TCP or UDP listen address. `host` '' means every interface (Go's `:8080`). */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export type AllocationStrategy = 'sequential' | 'random';

export interface PrefixesConfig {
  /** Canonical IPv4 prefix text inside 100.64.0.0/10, or null when nodes get no IPv4 address. */
  readonly v4: string | null;
  /** Canonical IPv6 prefix text inside fd7a:115c:a1e0::/48, or null when nodes get no IPv6 address. */
  readonly v6: string | null;
  readonly allocation: AllocationStrategy;
}

export interface SqliteConfig {
  /** Absolute path of the database file. */
  readonly path: string;
  readonly writeAheadLog: boolean;
}

/** libpq's sslmode values; `false` in YAML is `disable`, `true` is `require` (headscale's reading). */
export type PostgresSslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface PostgresConfig {
  /** A `postgres://` connection URL; when set, host/port/name/user/pass are unused. */
  readonly url: string | null;
  /** Host name, IP address, or the directory of a unix socket. */
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly user: string;
  readonly pass: string;
  readonly ssl: PostgresSslMode;
  /** Pool size: at most this many connections, hence concurrent transactions. */
  readonly maxOpenConns: number;
}

export type DatabaseConfig =
  | { readonly type: 'sqlite'; readonly sqlite: SqliteConfig }
  | { readonly type: 'postgres'; readonly postgres: PostgresConfig };

export type PolicyMode = 'file' | 'database';

export interface PolicyConfig {
  readonly mode: PolicyMode;
  /** Absolute path of the HuJSON policy file in `file` mode; null = no policy file (allow all). */
  readonly path: string | null;
}

export interface DnsExtraRecord {
  readonly name: string;
  readonly type: 'A' | 'AAAA';
  readonly value: string;
}

export interface DnsConfig {
  readonly magicDns: boolean;
  /** Lower-case FQDN without the trailing dot; never contains server_url's host. */
  readonly baseDomain: string;
  readonly overrideLocalDns: boolean;
  /** IP addresses or DNS-over-HTTPS URLs. */
  readonly nameserversGlobal: readonly string[];
  /** Split DNS: domain -> its nameservers. */
  readonly nameserversSplit: Readonly<Record<string, readonly string[]>>;
  readonly searchDomains: readonly string[];
  readonly extraRecords: readonly DnsExtraRecord[];
  /** Absolute path of a JSON file of extra records, or null. Exclusive with extraRecords. */
  readonly extraRecordsPath: string | null;
}

export interface DerpServerConfig {
  readonly enabled: boolean;
  readonly regionId: number;
  readonly regionCode: string;
  readonly regionName: string;
  /** Where the STUN server listens (UDP). */
  readonly stunListenAddr: ListenAddress;
  readonly privateKeyPath: string;
  /** Only nodes registered with this server may use the relay. */
  readonly verifyClients: boolean;
  /** Public addresses to advertise in the DERP map, or null to let clients resolve the host. */
  readonly ipv4: string | null;
  readonly ipv6: string | null;
  /** Add the embedded region to the DERP map automatically (else describe it in derp.paths). */
  readonly automaticallyAddEmbeddedDerpRegion: boolean;
}

export interface DerpConfig {
  readonly server: DerpServerConfig;
  /** URLs of DERP maps in JSON (e.g. Tailscale's). */
  readonly urls: readonly string[];
  /** Absolute paths of local DERP map files in YAML or JSON. */
  readonly paths: readonly string[];
  readonly autoUpdateEnabled: boolean;
  readonly updateFrequencyMs: number;
}

export interface LogConfig {
  readonly level: LogLevel;
  readonly format: LogFormat;
}

export interface TlsConfig {
  readonly certPath: string;
  readonly keyPath: string;
}

export interface HaConfig {
  /** Unique per instance; names its presence rows, its lease and its change-log rows. */
  readonly instanceId: string;
  /** How the other instances reach this one (the DERP mesh); null = derived from listen_addr. */
  readonly advertiseUrl: string | null;
  /** The same on every instance: encrypts the shared private keys at rest. */
  readonly secret: string;
  /** An instance that has not renewed its lease for this long is dead. */
  readonly leaseDurationMs: number;
  /** How often an instance renews its lease. */
  readonly heartbeatIntervalMs: number;
}

export interface MapConfig {
  /** How long a session gathers deltas before writing one frame. */
  readonly coalesceWindowMs: number;
  /** Interval of keep-alive frames on an idle map stream (client watchdog: 120 s). */
  readonly keepaliveIntervalMs: number;
}

/** Sign-in through an OpenID Connect provider (src/identity). */
export interface OidcConfig {
  /** The provider's issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`. */
  readonly issuer: string;
  readonly clientId: string;
  /** From client_secret or the file at client_secret_path; never printed. */
  readonly clientSecret: string;
  readonly scope: readonly string[];
  /** Added to the authorization URL (e.g. `domain_hint`, `prompt`). */
  readonly extraParams: Readonly<Record<string, string>>;
  /** Lower-case email domains; empty = any. */
  readonly allowedDomains: readonly string[];
  /** Lower-case emails; empty = any. */
  readonly allowedUsers: readonly string[];
  /** Group names as the provider sends them; empty = any. */
  readonly allowedGroups: readonly string[];
  readonly pkce: { readonly enabled: boolean; readonly method: 'S256' };
  /** Key expiry of nodes registered by sign-in; null = node_expiry. */
  readonly expiryMs: number | null;
  /** Nodes expire with the ID token instead. */
  readonly useExpiryFromToken: boolean;
  readonly groupsClaim: string;
  /** Provider group -> Headway role. */
  readonly roleGroups: Readonly<Record<string, 'admin' | 'it-admin' | 'network-admin' | 'billing-admin' | 'auditor' | 'member'>>;
  readonly emailVerifiedRequired: boolean;
  readonly linkByEmail: boolean;
  /** The tailnet signed-in users and their devices join. */
  readonly tailnet: string;
}

/** SCIM 2.0 provisioning (src/scim). */
export interface ScimConfig {
  /** The bearer token SCIM clients send; never printed. */
  readonly token: string;
  readonly tailnet: string;
}

/** Bounds on what strangers and clients may cost (issue 17); see docs/configuration.md. */
export interface LimitsConfig {
  /** Connections not yet past their first request head, from one source address. */
  readonly maxPendingConnectionsPerAddress: number;
  /** Connections not yet past their first request head, in total. */
  readonly maxPendingConnections: number;
  /** A connection silent this long before its first request head is closed. */
  readonly pendingTimeoutMs: number;
  /** Largest HTTP/1.1 request head. */
  readonly maxHeaderBytes: number;
  /** Largest request body over Noise (/machine/*). */
  readonly maxRequestBodyBytes: number;
  /** POST /machine/register per source address per minute (and burst); 0 = unlimited. */
  readonly registrationsPerMinutePerAddress: number;
  /** POST /machine/register per pre-auth key per minute (and burst); 0 = unlimited. */
  readonly registrationsPerMinutePerKey: number;
  /** Admin API requests per API key per minute (and burst); 0 = unlimited. */
  readonly apiRequestsPerMinutePerKey: number;
}

export interface Config {
  /** The file this came from, as given; null when built from defaults or an object. */
  readonly source: string | null;
  /** Normalised: scheme, host and port, no trailing slash. */
  readonly serverUrl: string;
  readonly listenAddr: ListenAddress;
  readonly metricsListenAddr: ListenAddress | null;
  /** Absolute. */
  readonly dataDir: string;
  readonly unixSocket: string;
  /** File mode of the admin socket, e.g. 0o770. */
  readonly unixSocketPermission: number;
  readonly noise: { readonly privateKeyPath: string };
  readonly prefixes: PrefixesConfig;
  readonly database: DatabaseConfig;
  readonly policy: PolicyConfig;
  readonly dns: DnsConfig;
  readonly derp: DerpConfig;
  /** Default key expiry of newly registered untagged nodes; 0 = never. */
  readonly nodeExpiryMs: number;
  /** An ephemeral node offline this long is deleted. */
  readonly ephemeralNodeInactivityTimeoutMs: number;
  /** How long a node whose map stream ended still counts as online (it may reconnect). */
  readonly offlineGraceMs: number;
  /** The same for a subnet router that another online router could replace: short, for failover. */
  readonly routerFailoverGraceMs: number;
  readonly log: LogConfig;
  /** Serve HTTPS with these files; null = plain HTTP (behind a TLS proxy, or for development). */
  readonly tls: TlsConfig | null;
  readonly map: MapConfig;
  /** null = no sign-in through a provider (interactive logins wait for an admin). */
  readonly oidc: OidcConfig | null;
  /** null = no SCIM endpoint. */
  readonly scim: ScimConfig | null;
  /** Several instances on one PostgreSQL (docs/ha.md); null = a single instance. */
  readonly ha: HaConfig | null;
  readonly limits: LimitsConfig;
  /** Settings accepted but without effect (headscale keys Headway ignores); log them at start. */
  readonly warnings: readonly string[];
}
