// headscale settings that are not Headway keys, sorted by what we do with them, so that a
// headscale config loads with few edits: settings with no effect here are dropped with a warning,
// renamed ones get an error naming the new key, and features Headway lacks get an error saying
// so (ignoring them silently would change what the user asked for).

/** Keys (with their subtrees) that make no difference in Headway: dropped with a warning. */
export const IGNORED_HEADSCALE_KEYS: Readonly<Record<string, string>> = {
  grpc_listen_addr: 'Headway has no gRPC; the CLI uses the unix socket or the HTTP admin API',
  grpc_allow_insecure: 'Headway has no gRPC',
  disable_check_updates: 'Headway never checks for updates',
  node_update_check_interval: 'Headway pushes changes as they happen',
  trusted_proxies: 'Headway does not read forwarding headers yet',
  'database.debug': 'Headway does not log SQL',
  'database.gorm': 'Headway does not use GORM',
  'database.sqlite.wal_autocheckpoint': "SQLite's default checkpointing is used",
  'database.postgres.max_idle_conns': 'the pool closes idle connections itself',
  'database.postgres.conn_max_idle_time_secs': 'the pool closes idle connections itself',
  'node.routes': 'Headway has no HA route probing yet',
  preauth_keys: 'revoked keys are kept',
  tuning: "headscale's tuning knobs do not apply",
  cli: 'use the --server and --api-key options of the headway CLI',
  logtail: 'Headway never enables client log upload',
  taildrop: 'Headway has no Taildrop switch yet',
  auto_update: 'Headway has no auto-update switch yet',
  acme_url: 'Headway has no built-in ACME',
  acme_email: 'Headway has no built-in ACME',
  tls_letsencrypt_cache_dir: 'Headway has no built-in ACME',
  tls_letsencrypt_challenge_type: 'Headway has no built-in ACME',
  tls_letsencrypt_listen: 'Headway has no built-in ACME',
  'oidc.only_start_if_oidc_is_available': 'Headway always starts and retries discovery with backoff; pre-auth keys keep working meanwhile',
  'oidc.strip_email_domain': 'user names are the email local part when free; policies name users by email',
  'oidc.map_legacy_users': 'existing users are linked by email only with oidc.link_by_email',
};

/** Old headscale keys: an error pointing at the Headway key. */
export const RENAMED_HEADSCALE_KEYS: Readonly<Record<string, string>> = {
  ip_prefixes: 'prefixes.v4 and prefixes.v6',
  db_type: 'database.type',
  db_path: 'database.sqlite.path',
  db_host: 'database.postgres.host',
  db_port: 'database.postgres.port',
  db_name: 'database.postgres.name',
  db_user: 'database.postgres.user',
  db_pass: 'database.postgres.pass',
  db_ssl: 'database.postgres.ssl',
  acl_policy_path: 'policy.path',
  dns_config: 'dns (with nameservers -> nameservers.global, restricted_nameservers -> nameservers.split, domains -> search_domains)',
  private_key_path: 'noise.private_key_path',
};

/**
 * headscale features Headway does not have. `when` says whether the given value asks for the
 * feature (an empty hostname asks for nothing and is ignored).
 */
export const UNSUPPORTED_HEADSCALE_KEYS: Readonly<Record<string, { why: string; when: (value: unknown) => boolean }>> = {
  tls_letsencrypt_hostname: {
    why: 'Headway has no built-in ACME; set tls_cert_path and tls_key_path, or terminate TLS in a proxy',
    when: (value) => value !== '' && value !== null,
  },
  randomize_client_port: {
    why: 'set "randomizeClientPort": true in the policy instead, as headscale 0.29 does',
    when: () => true,
  },
  'dns.use_username_in_magic_dns': {
    why: 'MagicDNS names are <given name>.<base_domain>',
    when: () => true,
  },
};
