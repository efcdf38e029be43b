import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  CONFIG_REFERENCE, ConfigError, configFromObject, configFromText, defaultConfig, loadConfig,
} from './index.js';
import { rawConfigSchema } from './schema.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function problemsOf(fn: () => unknown): { code: string; problems: readonly string[] } {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return { code: err.code, problems: err.problems };
    throw err;
  }
  assert.fail('expected a ConfigError');
}

function fromYaml(text: string) {
  return configFromText(text, { source: 'config.yaml', baseDir: '/etc/headway', cwd: '/srv' });
}

describe('loadConfig', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'headway-config-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('uses the built-in defaults when no file is given', () => {
    const config = loadConfig({ env: {}, cwd: '/srv/headway' });
    assert.equal(config.source, null);
    assert.equal(config.serverUrl, 'http://127.0.0.1:8080');
    assert.deepEqual(config.listenAddr, { host: '127.0.0.1', port: 8080 });
    assert.deepEqual(config.metricsListenAddr, { host: '127.0.0.1', port: 9090 });
    assert.equal(config.dataDir, '/srv/headway/data');
    assert.equal(config.unixSocket, '/srv/headway/data/headway.sock');
    assert.equal(config.unixSocketPermission, 0o770);
    assert.equal(config.noise.privateKeyPath, '/srv/headway/data/noise_private.key');
    assert.deepEqual(config.prefixes, { v4: '100.64.0.0/10', v6: 'fd7a:115c:a1e0::/48', allocation: 'sequential' });
    assert.deepEqual(config.database, { type: 'sqlite', sqlite: { path: '/srv/headway/data/headway.sqlite', writeAheadLog: true } });
    assert.deepEqual(config.policy, { mode: 'database', path: null });
    assert.equal(config.dns.magicDns, true);
    assert.equal(config.dns.baseDomain, 'headway.internal');
    assert.equal(config.dns.overrideLocalDns, false);
    assert.deepEqual(config.derp.server, {
      enabled: true,
      regionId: 999,
      regionCode: 'headway',
      regionName: 'Headway Embedded DERP',
      stunListenAddr: { host: '127.0.0.1', port: 3478 },
      privateKeyPath: '/srv/headway/data/derp_server_private.key',
      verifyClients: true,
      ipv4: null,
      ipv6: null,
      automaticallyAddEmbeddedDerpRegion: true,
    });
    assert.equal(config.derp.updateFrequencyMs, 3 * 3600_000);
    assert.equal(config.nodeExpiryMs, 0);
    assert.equal(config.ephemeralNodeInactivityTimeoutMs, 30 * 60_000);
    assert.deepEqual(config.log, { level: 'info', format: 'auto' });
    assert.equal(config.tls, null);
    assert.deepEqual(config.map, { coalesceWindowMs: 50, keepaliveIntervalMs: 50_000 });
    assert.deepEqual(config.warnings, []);
  });

  it('returns a deeply frozen object', () => {
    const config = defaultConfig({ cwd: '/srv' });
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.derp.server.stunListenAddr));
    assert.ok(Object.isFrozen(config.dns.nameserversGlobal));
    assert.throws(() => { (config.listenAddr as { port: number }).port = 1; }, TypeError);
  });

  it('reads the file named by HEADWAY_CONFIG when no path is given', () => {
    writeFileSync(join(dir, 'env.yaml'), 'listen_addr: 0.0.0.0:9999\n');
    const config = loadConfig({ env: { HEADWAY_CONFIG: 'env.yaml' }, cwd: dir });
    assert.equal(config.source, 'env.yaml');
    assert.deepEqual(config.listenAddr, { host: '0.0.0.0', port: 9999 });
  });

  it('prefers the path argument to HEADWAY_CONFIG', () => {
    writeFileSync(join(dir, 'arg.yaml'), 'listen_addr: 127.0.0.1:7000\n');
    const config = loadConfig({ path: 'arg.yaml', env: { HEADWAY_CONFIG: 'missing.yaml' }, cwd: dir });
    assert.equal(config.listenAddr.port, 7000);
  });

  it('ignores an empty HEADWAY_CONFIG', () => {
    assert.equal(loadConfig({ env: { HEADWAY_CONFIG: '' }, cwd: dir }).source, null);
  });

  it('resolves relative paths in a file against the file\'s directory', () => {
    mkdirSync(join(dir, 'etc'), { recursive: true });
    writeFileSync(join(dir, 'etc', 'config.yaml'), 'data_dir: state\npolicy:\n  mode: file\n  path: policy.hujson\n');
    const config = loadConfig({ path: 'etc/config.yaml', env: {}, cwd: dir });
    assert.equal(config.dataDir, join(dir, 'etc', 'state'));
    assert.equal(config.unixSocket, join(dir, 'etc', 'state', 'headway.sock'));
    assert.deepEqual(config.policy, { mode: 'file', path: join(dir, 'etc', 'policy.hujson') });
  });

  it('treats an empty file as all defaults', () => {
    writeFileSync(join(dir, 'empty.yaml'), '# nothing here\n');
    const config = loadConfig({ path: 'empty.yaml', env: {}, cwd: dir });
    assert.equal(config.source, 'empty.yaml');
    assert.equal(config.dataDir, join(dir, 'data'));
  });

  it('names the file when it cannot be read', () => {
    const { code, problems } = problemsOf(() => loadConfig({ path: 'nope.yaml', env: {}, cwd: dir }));
    assert.equal(code, 'HW_CONFIG_UNREADABLE');
    assert.deepEqual(problems, ['nope.yaml: cannot read the configuration file: no such file']);
    const viaEnv = problemsOf(() => loadConfig({ env: { HEADWAY_CONFIG: dir }, cwd: '/' }));
    assert.deepEqual(viaEnv.problems, [`${dir}: cannot read the configuration file: it is a directory`]);
  });

  it('loads config.example.yaml from the repository root', () => {
    const config = loadConfig({ path: join(REPO_ROOT, 'config.example.yaml'), env: {} });
    assert.deepEqual(config.warnings, []);
    assert.deepEqual(config.metricsListenAddr, { host: '127.0.0.1', port: 9090 });
    assert.deepEqual(config.dns.nameserversGlobal, ['1.1.1.1', '2606:4700:4700::1111']);
    assert.equal(config.dataDir, join(REPO_ROOT, 'data'));
  });

  it('loads a complete file with every section', () => {
    const config = fromYaml(`
server_url: https://hw.example.com/
listen_addr: ":443"
metrics_listen_addr: "[::1]:9090"
data_dir: /var/lib/headway
unix_socket_permission: "0o700"
prefixes:
  v4: 100.64.0.0/16
  v6: ""
  allocation: random
database:
  type: postgres
  postgres:
    host: db.example.com
    name: headway
    user: hw
    pass: s3cret
    ssl: verify-full
    max_open_conns: 25
policy:
  mode: file
  path: /etc/headway/policy.hujson
dns:
  base_domain: Tail.Example.NET
  override_local_dns: true
  nameservers:
    global: [9.9.9.9, "https://dns.nextdns.io/abc123"]
    split:
      corp.example.com: [10.0.0.53]
  search_domains: [corp.example.com]
  extra_records:
    - { name: grafana.tail.example.net, type: A, value: 100.64.0.3 }
    - { name: grafana.tail.example.net, type: AAAA, value: "fd7a:115c:a1e0::3" }
derp:
  server:
    enabled: true
    stun_listen_addr: 0.0.0.0:3478
    ipv4: 198.51.100.1
  urls: [https://controlplane.tailscale.com/derpmap/default]
  update_frequency: 1d
node:
  expiry: 180d
  ephemeral:
    inactivity_timeout: 2m
log:
  level: debug
  format: json
tls_cert_path: tls.crt
tls_key_path: tls.key
map:
  coalesce_window: 100ms
  keepalive_interval: 1m
  splice_data_frames: false
`);
    assert.equal(config.serverUrl, 'https://hw.example.com');
    assert.deepEqual(config.listenAddr, { host: '', port: 443 });
    assert.deepEqual(config.metricsListenAddr, { host: '::1', port: 9090 });
    assert.equal(config.unixSocket, '/var/lib/headway/headway.sock');
    assert.equal(config.unixSocketPermission, 0o700);
    assert.deepEqual(config.prefixes, { v4: '100.64.0.0/16', v6: null, allocation: 'random' });
    assert.deepEqual(config.database, {
      type: 'postgres',
      postgres: { url: null, host: 'db.example.com', port: 5432, name: 'headway', user: 'hw', pass: 's3cret', ssl: 'verify-full', maxOpenConns: 25 },
    });
    assert.equal(config.dns.baseDomain, 'tail.example.net');
    assert.deepEqual(config.dns.nameserversGlobal, ['9.9.9.9', 'https://dns.nextdns.io/abc123']);
    assert.deepEqual(config.dns.nameserversSplit, { 'corp.example.com': ['10.0.0.53'] });
    assert.equal(config.dns.extraRecords.length, 2);
    assert.deepEqual(config.derp.server.stunListenAddr, { host: '0.0.0.0', port: 3478 });
    assert.equal(config.derp.server.ipv4, '198.51.100.1');
    assert.equal(config.derp.updateFrequencyMs, 86_400_000);
    assert.equal(config.nodeExpiryMs, 180 * 86_400_000);
    assert.equal(config.ephemeralNodeInactivityTimeoutMs, 120_000);
    assert.deepEqual(config.log, { level: 'debug', format: 'json' });
    assert.deepEqual(config.tls, { certPath: '/etc/headway/tls.crt', keyPath: '/etc/headway/tls.key' });
    assert.deepEqual(config.map, { coalesceWindowMs: 100, keepaliveIntervalMs: 60_000 });
    // The old switch of the DATA splice is accepted and ignored, with a warning.
    assert.ok(config.warnings.some((w) => w.includes('map.splice_data_frames: ignored (deprecated')), JSON.stringify(config.warnings));
  });

  it('accepts a postgres connection URL', () => {
    const config = fromYaml('database:\n  type: postgres\n  postgres:\n    url: postgres://u:p@h:5433/db\n');
    assert.equal(config.database.type, 'postgres');
    assert.equal(config.database.type === 'postgres' && config.database.postgres.url, 'postgres://u:p@h:5433/db');
  });

  it('keeps database passwords out of JSON output', () => {
    const withUrl = fromYaml('database:\n  type: postgres\n  postgres:\n    url: postgres://hw:sekrit-1@db:5432/hw\n');
    const withPass = fromYaml('database:\n  type: postgres\n  postgres:\n    host: db\n    name: hw\n    pass: sekrit-2\n');
    assert.ok(!JSON.stringify(withUrl).includes('sekrit-1'));
    assert.ok(!JSON.stringify(withPass).includes('sekrit-2'));
    assert.match(JSON.stringify(withPass), /"pass":"\[redacted\]"/);
    assert.equal(withPass.database.type === 'postgres' && withPass.database.postgres.pass, 'sekrit-2');
  });

  it('reads the oidc and scim sections with their defaults, secrets from files and kept out of JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hw-oidc-'));
    try {
      writeFileSync(join(dir, 'secret'), 'from-a-file\n', { mode: 0o600 });
      writeFileSync(join(dir, 'scim'), `${'s'.repeat(40)}\n`, { mode: 0o644 });
      const config = configFromText(
        'oidc:\n  issuer: https://id.example.com/realms/corp\n  client_id: headway\n  client_secret_path: secret\n  role_groups:\n    netops: network-admin\n  only_start_if_oidc_is_available: true\nscim:\n  token_path: scim\n',
        { source: 'config.yaml', baseDir: dir, cwd: dir },
      );
      assert.equal(config.oidc?.issuer, 'https://id.example.com/realms/corp');
      assert.equal(config.oidc?.clientSecret, 'from-a-file');
      assert.deepEqual(config.oidc?.scope, ['openid', 'profile', 'email']);
      assert.deepEqual(config.oidc?.pkce, { enabled: true, method: 'S256' });
      assert.equal(config.oidc?.groupsClaim, 'groups');
      assert.equal(config.oidc?.emailVerifiedRequired, true);
      assert.equal(config.oidc?.linkByEmail, false);
      assert.equal(config.oidc?.expiryMs, null);
      assert.deepEqual(config.oidc?.roleGroups, { netops: 'network-admin' });
      assert.equal(config.scim?.token, 's'.repeat(40));
      const printed = JSON.stringify(config);
      assert.ok(!printed.includes('from-a-file') && !printed.includes('s'.repeat(40)), 'secrets are redacted');
      assert.ok(config.warnings.some((w) => w.includes('oidc.only_start_if_oidc_is_available: ignored')));
      assert.ok(config.warnings.some((w) => w.includes('scim.token_path: scim is readable by other users; chmod 0600 it')), 'a readable secret file is flagged');
      assert.ok(!config.warnings.some((w) => w.includes('oidc.client_secret_path')), 'a 0600 one is not');
      assert.equal(configFromText('log:\n  level: info\n', { source: 'c.yaml', baseDir: dir, cwd: dir }).oidc, null);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an oidc section that cannot sign anyone in, naming each key', () => {
    assert.deepEqual(problemsOf(() => fromYaml('oidc:\n  issuer: https://id.example.com\n  scope: [profile]\n  pkce:\n    method: plain\n  extra_params:\n    state: x\n  role_groups:\n    x: owner\nscim:\n  token: short\n')).problems, [
      'config.yaml: oidc.pkce.method: "plain" is not one of: S256',
      'config.yaml: oidc.role_groups.x: "owner" is not one of: admin, it-admin, network-admin, billing-admin, auditor, member',
    ]);
    assert.deepEqual(problemsOf(() => fromYaml('oidc:\n  issuer: https://id.example.com\n  scope: [profile]\n  extra_params:\n    state: x\nscim:\n  token: short\n')).problems, [
      'config.yaml: oidc.client_id: required with oidc.issuer',
      'config.yaml: oidc.client_secret: required with oidc.issuer (or set oidc.client_secret_path)',
      'config.yaml: oidc.scope: must include "openid"',
      'config.yaml: oidc.extra_params.state: is set by Headway itself and cannot be overridden',
      'config.yaml: scim.token: the token must be at least 32 characters (generate one with: openssl rand -hex 32)',
    ]);
  });

  it('loads a headscale-style file with warnings for the settings Headway ignores', () => {
    const config = fromYaml(`
server_url: https://hs.example.org:443
listen_addr: 0.0.0.0:8080
metrics_listen_addr: 127.0.0.1:9090
grpc_listen_addr: 127.0.0.1:50443
grpc_allow_insecure: false
noise:
  private_key_path: /var/lib/headscale/noise_private.key
prefixes:
  v6: fd7a:115c:a1e0::/48
  v4: 100.64.0.0/10
  allocation: sequential
derp:
  server:
    enabled: false
    region_id: 999
    region_code: "headscale"
    region_name: "Headscale Embedded DERP"
    verify_clients: true
    stun_listen_addr: "0.0.0.0:3478"
    private_key_path: /var/lib/headscale/derp_server_private.key
    automatically_add_embedded_derp_region: true
  urls:
    - https://controlplane.tailscale.com/derpmap/default
  paths: []
  auto_update_enabled: true
  update_frequency: 3h
disable_check_updates: false
node:
  expiry: 0
  ephemeral:
    inactivity_timeout: 30m
database:
  type: sqlite
  debug: false
  gorm:
    prepare_stmt: true
  sqlite:
    path: /var/lib/headscale/db.sqlite
    write_ahead_log: true
    wal_autocheckpoint: 1000
acme_url: https://acme-v02.api.letsencrypt.org/directory
acme_email: ""
tls_letsencrypt_hostname: ""
tls_letsencrypt_cache_dir: /var/lib/headscale/cache
tls_letsencrypt_challenge_type: HTTP-01
tls_letsencrypt_listen: ":http"
tls_cert_path: ""
tls_key_path: ""
log:
  level: info
  format: text
policy:
  mode: file
  path: ""
dns:
  magic_dns: true
  base_domain: example.com
  override_local_dns: true
  nameservers:
    global: [1.1.1.1, 1.0.0.1]
    split: {}
  search_domains: []
  extra_records: []
unix_socket: /var/run/headscale/headscale.sock
unix_socket_permission: "0770"
logtail:
  enabled: false
`);
    assert.deepEqual(config.warnings, [
      'config.yaml: grpc_listen_addr: ignored (Headway has no gRPC; the CLI uses the unix socket or the HTTP admin API)',
      'config.yaml: grpc_allow_insecure: ignored (Headway has no gRPC)',
      'config.yaml: disable_check_updates: ignored (Headway never checks for updates)',
      'config.yaml: database.debug: ignored (Headway does not log SQL)',
      'config.yaml: database.gorm: ignored (Headway does not use GORM)',
      "config.yaml: database.sqlite.wal_autocheckpoint: ignored (SQLite's default checkpointing is used)",
      'config.yaml: logtail: ignored (Headway never enables client log upload)',
      'config.yaml: acme_url: ignored (Headway has no built-in ACME)',
      'config.yaml: acme_email: ignored (Headway has no built-in ACME)',
      'config.yaml: tls_letsencrypt_cache_dir: ignored (Headway has no built-in ACME)',
      'config.yaml: tls_letsencrypt_challenge_type: ignored (Headway has no built-in ACME)',
      'config.yaml: tls_letsencrypt_listen: ignored (Headway has no built-in ACME)',
      'config.yaml: tls_letsencrypt_hostname: ignored (not supported by Headway, and the value asks for nothing)',
    ]);
    assert.equal(config.derp.server.enabled, false);
    assert.deepEqual(config.policy, { mode: 'file', path: null });
    assert.equal(config.log.format, 'pretty');
    assert.equal(config.tls, null);
    assert.equal(config.database.type === 'sqlite' && config.database.sqlite.path, '/var/lib/headscale/db.sqlite');
  });

  const badFiles: Array<{ name: string; yaml: string; code?: string; want: string[] }> = [
    {
      name: 'a prefix length out of range',
      yaml: 'prefixes:\n  v4: 100.64.0.0/33\n',
      want: ['config.yaml: prefixes.v4: "100.64.0.0/33" is not a prefix (length must be 0-32)'],
    },
    {
      name: 'prefixes outside the Tailscale ranges or of the wrong family',
      yaml: 'prefixes:\n  v4: 10.0.0.0/8\n  v6: fd00::/8\n',
      want: [
        'config.yaml: prefixes.v4: "10.0.0.0/8" is outside 100.64.0.0/10 (Tailscale clients only accept addresses there)',
        'config.yaml: prefixes.v6: "fd00::/8" is outside fd7a:115c:a1e0::/48 (Tailscale clients only accept addresses there)',
      ],
    },
    {
      name: 'a prefix with host bits and one of the wrong family',
      yaml: 'prefixes:\n  v4: 100.64.1.0/16\n  v6: 100.64.0.0/10\n  allocation: roundrobin\n',
      want: [
        'config.yaml: prefixes.v4: "100.64.1.0/16" has host bits set (want 100.64.0.0/16)',
        'config.yaml: prefixes.v6: "100.64.0.0/10" is not an IPv6 prefix',
        'config.yaml: prefixes.allocation: "roundrobin" is not one of: sequential, random',
      ],
    },
    {
      name: 'both prefixes switched off',
      yaml: 'prefixes:\n  v4: ""\n  v6:\n',
      want: ['config.yaml: prefixes: at least one of prefixes.v4 and prefixes.v6 must be set'],
    },
    {
      name: 'unknown keys, with suggestions where one is close',
      yaml: 'lisen_addr: 127.0.0.1:1\nbase_domain: example.com\ndns:\n  magicdns: true\nderp:\n  region_id: 5\nfrobnicate: true\n',
      want: [
        'config.yaml: dns.magicdns: unknown key (did you mean dns.magic_dns?)',
        'config.yaml: derp.region_id: unknown key (did you mean derp.server.region_id?)',
        'config.yaml: lisen_addr: unknown key (did you mean listen_addr?)',
        'config.yaml: base_domain: unknown key (did you mean dns.base_domain?)',
        'config.yaml: frobnicate: unknown key',
      ],
    },
    {
      name: 'values of the wrong type',
      yaml: 'listen_addr: 8080\ndata_dir: [a]\ndns:\n  magic_dns: "yes"\n  nameservers:\n    global: 1.1.1.1\nderp:\n  server: true\nlog: info\n',
      want: [
        'config.yaml: listen_addr: want a string, got the number 8080',
        'config.yaml: data_dir: want a string, got a list',
        'config.yaml: dns.magic_dns: want true or false, got "yes"',
        'config.yaml: dns.nameservers.global: want a list, got "1.1.1.1"',
        'config.yaml: derp.server: want a mapping, got true',
        'config.yaml: log: want a mapping, got "info"',
      ],
    },
    {
      name: 'bad addresses, URLs and durations',
      yaml: [
        'server_url: ftp://example.com',
        'listen_addr: localhost',
        'metrics_listen_addr: 127.0.0.1:99999',
        'node_expiry: 30',
        'ephemeral_node_inactivity_timeout: 5 minutes',
        'dns:',
        '  base_domain: example.com.',
        '  nameservers:',
        '    global: [dns.google]',
        '',
      ].join('\n'),
      want: [
        'config.yaml: server_url: "ftp://example.com" must start with http:// or https://',
        'config.yaml: listen_addr: "localhost" is not a listen address (want host:port, e.g. "0.0.0.0:8080", "[::]:8080" or ":8080")',
        'config.yaml: metrics_listen_addr: "127.0.0.1:99999": port must be a number from 0 to 65535',
        'config.yaml: dns.base_domain: "example.com." must not end with a dot',
        'config.yaml: dns.nameservers.global[0]: "dns.google" is neither an IP address nor an https:// (DNS-over-HTTPS) URL',
        'config.yaml: node_expiry: want a duration with a unit such as "30m" or "24h", got the number 30',
        'config.yaml: ephemeral_node_inactivity_timeout: "5 minutes" is not a duration: unexpected "5 minute" (units: ms, s, m, h, d, w)',
      ],
    },
    {
      name: "a base domain that contains the server's host",
      yaml: 'server_url: https://headway.example.com\ndns:\n  base_domain: example.com\n',
      want: [
        'config.yaml: dns.base_domain: "example.com" contains server_url\'s host "headway.example.com"; clients would resolve the control server through MagicDNS and lose it (use a domain that does not contain it)',
      ],
    },
    {
      name: 'contradicting settings, all reported together',
      yaml: [
        'dns:',
        '  override_local_dns: true',
        '  extra_records:',
        '    - { name: db.headway.internal, type: AAAA, value: 100.64.0.9 }',
        '  extra_records_path: records.json',
        'derp:',
        '  server:',
        '    stun_listen_addr: ""',
        'tls_cert_path: cert.pem',
        'node_expiry: 1d',
        'node:',
        '  expiry: 2d',
        'map:',
        '  keepalive_interval: 5m',
        '',
      ].join('\n'),
      want: [
        'config.yaml: dns.override_local_dns: true needs at least one server in dns.nameservers.global',
        'config.yaml: dns.extra_records[0].value: "100.64.0.9" is not an IPv6 address (type AAAA)',
        'config.yaml: derp.server.stun_listen_addr: required while derp.server.enabled is true (clients need STUN to find their public address)',
        'config.yaml: node.expiry: set either node_expiry or node.expiry, not both',
        'config.yaml: tls_key_path: required together with tls_cert_path',
        'config.yaml: map.keepalive_interval: 5m0s is out of range (want 1s to 100s; clients drop a stream silent for 120s)',
      ],
    },
    {
      name: 'no DERP region at all',
      yaml: 'derp:\n  server:\n    enabled: false\n',
      want: ['config.yaml: derp: no DERP region configured; enable derp.server or list derp.urls or derp.paths (Tailscale clients need at least one region)'],
    },
    {
      name: 'an incomplete or doubly specified postgres',
      yaml: 'database:\n  type: postgres\n  postgres:\n    user: hw\n',
      want: [
        'config.yaml: database.postgres.host: required when database.type is postgres (or set database.postgres.url)',
        'config.yaml: database.postgres.name: required when database.type is postgres (or set database.postgres.url)',
      ],
    },
    {
      name: 'a postgres URL next to its parts',
      yaml: 'database:\n  type: postgresql\n  postgres:\n    url: mysql://x\n    host: db\n    ssl: maybe\n',
      want: [
        'config.yaml: database.postgres.ssl: "maybe" is not true, false or a libpq sslmode (disable, allow, prefer, require, verify-ca, verify-full)',
      ],
    },
    {
      name: 'a postgres URL next to its parts (after the ssl mode is fixed)',
      yaml: 'database:\n  type: postgres\n  postgres:\n    url: mysql://x\n    host: db\n',
      want: [
        'config.yaml: database.postgres.url: cannot be used together with database.postgres.host; keep one form',
        'config.yaml: database.postgres.url: must start with postgres:// or postgresql://',
      ],
    },
    {
      name: 'an unquoted socket mode',
      yaml: 'unix_socket_permission: 0770\n',
      want: ['config.yaml: unix_socket_permission: want a quoted octal string such as "0770", got the number 770 (YAML reads an unquoted 0770 as decimal)'],
    },
    {
      name: 'an admin socket every local user could open',
      yaml: 'unix_socket_permission: "0777"\n',
      want: ['config.yaml: unix_socket_permission: "0777" lets every local user administer Headway through the admin socket; use "0700" (owner only) or "0770" (owner and group)'],
    },
    {
      name: 'old headscale keys and features Headway lacks',
      yaml: 'ip_prefixes: [100.64.0.0/10]\ndb_type: sqlite3\ndns_config:\n  magic_dns: true\nrandomize_client_port: true\n',
      want: [
        'config.yaml: ip_prefixes: this headscale key was renamed; use prefixes.v4 and prefixes.v6',
        'config.yaml: db_type: this headscale key was renamed; use database.type',
        'config.yaml: dns_config: this headscale key was renamed; use dns (with nameservers -> nameservers.global, restricted_nameservers -> nameservers.split, domains -> search_domains)',
        'config.yaml: randomize_client_port: not supported by Headway: set "randomizeClientPort": true in the policy instead, as headscale 0.29 does',
      ],
    },
    {
      name: 'a list at the top level',
      yaml: '- server_url: http://x\n',
      want: ['config.yaml: the top level must be a mapping of keys, got a list'],
    },
    {
      name: 'YAML syntax errors, with line and column',
      yaml: 'server_url: http://127.0.0.1:8080\nprefixes:\n  v4: [100.64.0.0/10\nlog:\n  level: info\n',
      code: 'HW_CONFIG_SYNTAX',
      want: ['config.yaml:4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]'],
    },
    {
      name: 'a duplicate key',
      yaml: 'listen_addr: 127.0.0.1:1\nlisten_addr: 127.0.0.1:2\n',
      code: 'HW_CONFIG_SYNTAX',
      want: ['config.yaml:2:1: YAML syntax error: Map keys must be unique'],
    },
    {
      // Found by fuzzing (issue 17): these two threw a TypeError and a ReferenceError.
      name: 'an alias without its anchor',
      yaml: 'log: *nowhere\n',
      code: 'HW_CONFIG_SYNTAX',
      want: ['config.yaml: YAML error: Unresolved alias (the anchor must be set before the alias): nowhere'],
    },
    {
      name: 'a prefix with an empty length',
      yaml: 'prefixes:\n  v4: 100.64.0.0/\n',
      want: ['config.yaml: prefixes.v4: "100.64.0.0/" is not a prefix (length must be 0-32)'],
    },
  ];
  for (const { name, yaml, code, want } of badFiles) {
    it(`reports ${name}`, () => {
      const got = problemsOf(() => fromYaml(yaml));
      assert.equal(got.code, code ?? 'HW_CONFIG_INVALID');
      assert.deepEqual(got.problems, want);
    });
  }

  it('refuses a unix socket path longer than the kernel allows', () => {
    const deep = `/${'d'.repeat(120)}`;
    const got = problemsOf(() => configFromObject({ data_dir: deep }));
    assert.deepEqual(got.problems, [
      `config: unix_socket: "${deep}/headway.sock" is 134 bytes long; unix sockets allow at most 107 (set unix_socket to a shorter path)`,
    ]);
  });

  it('reports a file the server user may not read', { skip: process.getuid?.() === 0 ? 'root reads every file' : false }, () => {
    const file = join(dir, 'secret.yaml');
    writeFileSync(file, 'listen_addr: 127.0.0.1:1\n');
    chmodSync(file, 0o000);
    const got = problemsOf(() => loadConfig({ path: file, env: {} }));
    assert.deepEqual(got.problems, [`${file}: cannot read the configuration file: permission denied`]);
  });
});

describe('CONFIG_REFERENCE', () => {
  /** Leaf key paths of the zod schema, sections flattened. */
  function schemaKeys(schema: z.ZodType, prefix: string): string[] {
    let inner: z.ZodType = schema;
    while (inner instanceof z.ZodOptional || inner instanceof z.ZodNullable) inner = inner.unwrap() as z.ZodType;
    if (inner instanceof z.ZodObject) {
      return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([key, child]) => schemaKeys(child, prefix === '' ? key : `${prefix}.${key}`));
    }
    return [prefix];
  }

  it('lists exactly the keys the schema accepts', () => {
    const fromSchema = schemaKeys(rawConfigSchema, '').sort();
    const fromReference = CONFIG_REFERENCE.map((entry) => entry.key).sort();
    assert.deepEqual(fromReference, fromSchema);
  });

  it('gives every key a type, default, description and headscale note', () => {
    for (const entry of CONFIG_REFERENCE) {
      for (const field of ['type', 'default', 'description', 'headscale'] as const) {
        assert.ok(entry[field].length > 0, `${entry.key}.${field}`);
      }
    }
  });
});
