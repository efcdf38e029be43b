/**
 * @module store
 * Owns durable state: the schema and its migrations (SQLite and PostgreSQL), the repositories of
 * types.ts over kysely, address allocation, key hashing, and the server's private key files.
 * May import: config (types), model, key, tailcfg (types), util, log.
 * Must never: let rows (schema.ts) leave this folder, log or return secrets other than a newly
 * created key's text, or be imported by production code through anything but this index
 * (testing.ts is for tests only and is not exported here).
 */
export type {
  AddressAllocator, ApiKeyRepo, AuditRepo, ConsoleSessionRepo, NewConsoleGrant, Dialect, ImportedPreAuthKey, NewAuditEntry, NewNode, NewPreAuthKey, NewUser,
  NodeLiveFields, NodePatch, NodeRepo, OAuthRepo, PolicyRepo, WebhookRepo, PreAuthKeyRepo, Store, StoreTx, TailnetRepo, UserRepo,
} from './types.js';
export { openStore, postgresClientConfig, postgresLocation, type StoreConfig, type StoreOptions } from './open-store.js';
export { CHANGE_CHANNEL, type ChangeEntity, type ChangeRecord, type ChangeLogOptions } from './change-log.js';
export type { ChangeLogEntry, HaRepo, InstanceLease, StoredPendingLogin } from './ha-repo.js';
export { loadOrCreatePrivateKey, readPrivateKeyFile, replacePrivateKey } from './key-file.js';
export { StoreErrors } from './errors.js';
export { AddressPool } from './address-pool.js';
export { API_KEY_TAG, PRE_AUTH_KEY_TAG, headscaleLegacyKeyPrefix, normaliseApiKeyPrefix } from './secrets.js';
export { DEFAULT_AUDIT_LIST_LIMIT } from './audit-repo.js';
export { OAUTH_ACCESS_TOKEN_TAG, OAUTH_CLIENT_SECRET_TAG } from './oauth-repo.js';
export { WEBHOOK_SECRET_TAG } from './webhook-repo.js';
export type { SshCheckRepo } from './ssh-check-repo.js';
