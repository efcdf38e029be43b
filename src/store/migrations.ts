// Schema migrations, in code so the package needs no migration files on disk. Names sort in
// the order they run; a released migration is never edited, a change is a new migration.
// Each runs in its own transaction on both dialects (kysely's Migrator).
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import type { Dialect } from './types.js';
import { UNIQUE_CONSTRAINTS, type UniqueConstraint } from './schema.js';

export const MIGRATION_TABLE = 'headway_migration';
export const MIGRATION_LOCK_TABLE = 'headway_migration_lock';

// kysely's Migration takes Kysely<any>; the schema builder does not use the type parameter.
type SchemaDb = Kysely<unknown>;

function migration0001Initial(dialect: Dialect): Migration {
  // An integer key that is never reused: SQLite's AUTOINCREMENT, PostgreSQL's identity column.
  const id = (db: SchemaDb, table: string) =>
    db.schema.createTable(table).addColumn('id', 'integer', (col) =>
      dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey().generatedByDefaultAsIdentity());
  const unique = (db: SchemaDb, name: UniqueConstraint) => {
    const { table, columns } = UNIQUE_CONSTRAINTS[name];
    return db.schema.createIndex(name).unique().on(table).columns([...columns]).execute();
  };
  const timestamp = 'bigint';

  return {
    async up(db: SchemaDb): Promise<void> {
      await id(db, 'tailnets')
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('last_ipv4', 'text')
        .addColumn('last_ipv6', 'text')
        .execute();
      await unique(db, 'tailnets_name_key');

      await id(db, 'users')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('name', 'text', (col) => col.notNull())
        .addColumn('display_name', 'text', (col) => col.notNull())
        .addColumn('email', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      await unique(db, 'users_tailnet_name_key');

      await id(db, 'pre_auth_keys')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        // A user's keys go with the user.
        .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('cascade'))
        .addColumn('prefix', 'text', (col) => col.notNull())
        .addColumn('hash', 'text', (col) => col.notNull())
        .addColumn('reusable', 'boolean', (col) => col.notNull())
        .addColumn('ephemeral', 'boolean', (col) => col.notNull())
        .addColumn('tags', 'text', (col) => col.notNull())
        .addColumn('expires_at', timestamp)
        .addColumn('used_count', 'integer', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('revoked_at', timestamp)
        .execute();
      await unique(db, 'pre_auth_keys_prefix_key');
      await db.schema.createIndex('pre_auth_keys_tailnet_user_idx').on('pre_auth_keys').columns(['tailnet_id', 'user_id']).execute();
      await db.schema.createIndex('pre_auth_keys_user_idx').on('pre_auth_keys').column('user_id').execute();

      await id(db, 'nodes')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('stable_id', 'text', (col) => col.notNull())
        .addColumn('machine_key', 'text', (col) => col.notNull())
        .addColumn('node_key', 'text', (col) => col.notNull())
        .addColumn('disco_key', 'text')
        .addColumn('ipv4', 'text')
        .addColumn('ipv6', 'text')
        .addColumn('hostname', 'text', (col) => col.notNull())
        .addColumn('given_name', 'text', (col) => col.notNull())
        // NO ACTION, checked at the end of the statement: deleting a user who still owns nodes
        // fails, while deleting the whole tailnet (which cascades to both) succeeds.
        .addColumn('user_id', 'integer', (col) => col.references('users.id'))
        .addColumn('tags', 'text', (col) => col.notNull())
        .addColumn('advertised_routes', 'text', (col) => col.notNull())
        .addColumn('approved_routes', 'text', (col) => col.notNull())
        .addColumn('endpoints', 'text', (col) => col.notNull())
        .addColumn('hostinfo', 'text', (col) => col.notNull())
        .addColumn('key_expiry', timestamp)
        .addColumn('last_seen', timestamp)
        .addColumn('ephemeral', 'boolean', (col) => col.notNull())
        .addColumn('register_method', 'text', (col) => col.notNull())
        .addColumn('pre_auth_key_id', 'integer', (col) => col.references('pre_auth_keys.id').onDelete('set null'))
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('updated_at', timestamp, (col) => col.notNull())
        .execute();
      await unique(db, 'nodes_node_key_key');
      await unique(db, 'nodes_stable_id_key');
      await unique(db, 'nodes_tailnet_ipv4_key');
      await unique(db, 'nodes_tailnet_ipv6_key');
      await unique(db, 'nodes_tailnet_given_name_key');
      // Listing a tailnet's nodes in id order without a sort.
      await db.schema.createIndex('nodes_tailnet_idx').on('nodes').columns(['tailnet_id', 'id']).execute();
      await db.schema.createIndex('nodes_tailnet_machine_key_idx').on('nodes').columns(['tailnet_id', 'machine_key']).execute();
      // Foreign-key checks and cascades look nodes up by these.
      await db.schema.createIndex('nodes_user_idx').on('nodes').column('user_id').execute();
      await db.schema.createIndex('nodes_pre_auth_key_idx').on('nodes').column('pre_auth_key_id').execute();

      await id(db, 'api_keys')
        .addColumn('prefix', 'text', (col) => col.notNull())
        .addColumn('hash', 'text', (col) => col.notNull())
        .addColumn('expires_at', timestamp)
        .addColumn('last_used_at', timestamp)
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('revoked_at', timestamp)
        .execute();
      await unique(db, 'api_keys_prefix_key');

      await id(db, 'policies')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('text', 'text', (col) => col.notNull())
        .addColumn('author', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('policies_tailnet_idx').on('policies').columns(['tailnet_id', 'id']).execute();

      await db.schema.createTable('audit_log')
        .addColumn('id', dialect === 'sqlite' ? 'integer' : 'bigint', (col) =>
          dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey().generatedByDefaultAsIdentity())
        .addColumn('tailnet_id', 'integer')
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('action', 'text', (col) => col.notNull())
        .addColumn('target', 'text', (col) => col.notNull())
        .addColumn('details', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('audit_log_tailnet_idx').on('audit_log').columns(['tailnet_id', 'id']).execute();

      await sql`insert into tailnets (name, created_at) values (${'default'}, ${Date.now()})`.execute(db);
    },
    async down(db: SchemaDb): Promise<void> {
      for (const table of ['audit_log', 'policies', 'api_keys', 'nodes', 'pre_auth_keys', 'users', 'tailnets']) {
        await db.schema.dropTable(table).execute();
      }
    },
  };
}

/** Users get Tailscale's roles (autogroup:admin and friends); existing users are members. */
function migration0002UserRoles(): Migration {
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('users').addColumn('role', 'text', (col) => col.notNull().defaultTo('member')).execute();
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('users').dropColumn('role').execute();
    },
  };
}

/**
 * Sign-in through an OpenID Connect provider and SCIM provisioning: users get the identity
 * that signs them in (issuer + subject, unique per tailnet), a picture, the groups the provider
 * and SCIM give them, and an active flag (SCIM deactivation); nodes get an approval state
 * (existing nodes are approved); pre-auth keys may skip approval; tailnets get the
 * `device_approval` setting (off); SCIM groups get their own table.
 */
function migration0003Identity(): Migration {
  const timestamp = 'bigint';
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('users').addColumn('oidc_issuer', 'text').execute();
      await db.schema.alterTable('users').addColumn('oidc_subject', 'text').execute();
      await db.schema.alterTable('users').addColumn('picture_url', 'text', (col) => col.notNull().defaultTo('')).execute();
      await db.schema.alterTable('users').addColumn('oidc_groups', 'text', (col) => col.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('users').addColumn('scim_groups', 'text', (col) => col.notNull().defaultTo('[]')).execute();
      await db.schema.alterTable('users').addColumn('active', 'boolean', (col) => col.notNull().defaultTo(true)).execute();
      await db.schema.alterTable('users').addColumn('scim_external_id', 'text').execute();
      const { table, columns } = UNIQUE_CONSTRAINTS.users_tailnet_oidc_key;
      await db.schema.createIndex('users_tailnet_oidc_key').unique().on(table).columns([...columns]).execute();
      await db.schema.alterTable('nodes').addColumn('approved', 'boolean', (col) => col.notNull().defaultTo(true)).execute();
      await db.schema.alterTable('pre_auth_keys').addColumn('pre_approved', 'boolean', (col) => col.notNull().defaultTo(false)).execute();
      await db.schema.alterTable('tailnets').addColumn('device_approval', 'boolean', (col) => col.notNull().defaultTo(false)).execute();
      await db.schema.createTable('scim_groups')
        .addColumn('id', 'text', (col) => col.primaryKey())
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('display_name', 'text', (col) => col.notNull())
        .addColumn('external_id', 'text')
        // JSON array of user ids.
        .addColumn('members', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      const group = UNIQUE_CONSTRAINTS.scim_groups_tailnet_name_key;
      await db.schema.createIndex('scim_groups_tailnet_name_key').unique().on(group.table).columns([...group.columns]).execute();
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.dropTable('scim_groups').execute();
      await db.schema.alterTable('tailnets').dropColumn('device_approval').execute();
      await db.schema.alterTable('pre_auth_keys').dropColumn('pre_approved').execute();
      await db.schema.alterTable('nodes').dropColumn('approved').execute();
      await db.schema.dropIndex('users_tailnet_oidc_key').execute();
      for (const column of ['scim_external_id', 'active', 'scim_groups', 'oidc_groups', 'picture_url', 'oidc_subject', 'oidc_issuer']) {
        await db.schema.alterTable('users').dropColumn(column).execute();
      }
    },
  };
}

/**
 * Tailnet settings as one JSON object per tailnet (model TailnetSettings): a new setting is a
 * new key with a default in code, not a migration. Existing tailnets get every default.
 */
function migration0005TailnetSettings(): Migration {
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('tailnets').addColumn('settings', 'text', (col) => col.notNull().defaultTo('{}')).execute();
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('tailnets').dropColumn('settings').execute();
    },
  };
}

/**
 * Tailscale API v2 and webhooks: OAuth clients and their access tokens (both hashed), webhook
 * endpoints, and the delivery queue, so no event is lost across a restart.
 */
function migration0006ApiV2Webhooks(dialect: Dialect): Migration {
  const id = (db: SchemaDb, table: string) =>
    db.schema.createTable(table).addColumn('id', 'integer', (col) =>
      dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey().generatedByDefaultAsIdentity());
  const timestamp = 'bigint';
  return {
    async up(db: SchemaDb): Promise<void> {
      await id(db, 'oauth_clients')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('client_id', 'text', (col) => col.notNull())
        .addColumn('secret_hash', 'text', (col) => col.notNull())
        .addColumn('scopes', 'text', (col) => col.notNull())
        .addColumn('tags', 'text', (col) => col.notNull())
        .addColumn('description', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('oauth_clients_client_id_key').unique().on('oauth_clients').column('client_id').execute();
      await db.schema.createIndex('oauth_clients_tailnet_idx').on('oauth_clients').columns(['tailnet_id', 'id']).execute();

      await id(db, 'oauth_tokens')
        .addColumn('oauth_client_id', 'integer', (col) => col.notNull().references('oauth_clients.id').onDelete('cascade'))
        .addColumn('token_hash', 'text', (col) => col.notNull())
        .addColumn('scopes', 'text', (col) => col.notNull())
        .addColumn('expires_at', timestamp, (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('oauth_tokens_token_hash_key').unique().on('oauth_tokens').column('token_hash').execute();
      await db.schema.createIndex('oauth_tokens_client_idx').on('oauth_tokens').column('oauth_client_id').execute();

      await id(db, 'webhooks')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('endpoint_id', 'text', (col) => col.notNull())
        .addColumn('url', 'text', (col) => col.notNull())
        .addColumn('provider_type', 'text', (col) => col.notNull())
        .addColumn('subscriptions', 'text', (col) => col.notNull())
        // The signing secret itself: every delivery is signed with it, so a hash would not do.
        .addColumn('secret', 'text', (col) => col.notNull())
        .addColumn('creator', 'text', (col) => col.notNull())
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .addColumn('updated_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('webhooks_endpoint_id_key').unique().on('webhooks').column('endpoint_id').execute();
      await db.schema.createIndex('webhooks_tailnet_idx').on('webhooks').columns(['tailnet_id', 'id']).execute();

      await id(db, 'webhook_deliveries')
        .addColumn('webhook_id', 'integer', (col) => col.notNull().references('webhooks.id').onDelete('cascade'))
        .addColumn('payload', 'text', (col) => col.notNull())
        // Set for events that must be sent once per subject (key expiry warnings).
        .addColumn('dedupe_key', 'text')
        .addColumn('attempts', 'integer', (col) => col.notNull())
        .addColumn('next_attempt_at', timestamp, (col) => col.notNull())
        .addColumn('last_error', 'text')
        .addColumn('delivered_at', timestamp)
        .addColumn('created_at', timestamp, (col) => col.notNull())
        .execute();
      await db.schema.createIndex('webhook_deliveries_dedupe_key').unique().on('webhook_deliveries').column('dedupe_key').execute();
      await db.schema.createIndex('webhook_deliveries_due_idx').on('webhook_deliveries').columns(['delivered_at', 'next_attempt_at']).execute();
      await db.schema.createIndex('webhook_deliveries_webhook_idx').on('webhook_deliveries').columns(['webhook_id', 'id']).execute();

      // Tailscale's auth keys carry a description (the Terraform provider reads it back).
      await db.schema.alterTable('pre_auth_keys').addColumn('description', 'text', (col) => col.notNull().defaultTo('')).execute();
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('pre_auth_keys').dropColumn('description').execute();
      for (const table of ['webhook_deliveries', 'webhooks', 'oauth_tokens', 'oauth_clients']) await db.schema.dropTable(table).execute();
    },
  };
}

/**
 * Browser sessions of the web console and its single-use sign-in links; tokens are stored as
 * their SHA-256 only.
 */
function migration0004ConsoleSessions(dialect: Dialect): Migration {
  const id = (db: SchemaDb, table: string) =>
    db.schema.createTable(table).addColumn('id', 'integer', (col) =>
      dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey().generatedByDefaultAsIdentity());
  const unique = (db: SchemaDb, name: UniqueConstraint) => {
    const { table, columns } = UNIQUE_CONSTRAINTS[name];
    return db.schema.createIndex(name).unique().on(table).columns([...columns]).execute();
  };
  return {
    async up(db: SchemaDb): Promise<void> {
      // A user's sessions and links end with the user; everything ends with the tailnet.
      await id(db, 'console_sessions')
        .addColumn('token_hash', 'text', (col) => col.notNull())
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('cascade'))
        .addColumn('role', 'text', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .addColumn('last_seen_at', 'bigint', (col) => col.notNull())
        .addColumn('expires_at', 'bigint', (col) => col.notNull())
        .addColumn('revoked_at', 'bigint')
        .execute();
      await unique(db, 'console_sessions_token_hash_key');
      await id(db, 'console_login_links')
        .addColumn('token_hash', 'text', (col) => col.notNull())
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('user_id', 'integer', (col) => col.references('users.id').onDelete('cascade'))
        .addColumn('role', 'text', (col) => col.notNull())
        .addColumn('actor', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'bigint', (col) => col.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
      await unique(db, 'console_login_links_token_hash_key');
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.dropTable('console_login_links').execute();
      await db.schema.dropTable('console_sessions').execute();
    },
  };
}

/**
 * High availability (docs/ha.md): the ordered change log every instance applies, instance
 * leases, cross-instance presence and the shared private keys. Created on both dialects so the
 * schema is one; only PostgreSQL deployments with ha.enabled write to them.
 */
function migration0007Ha(dialect: Dialect): Migration {
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.createTable('ha_change_log')
        .addColumn('position', dialect === 'sqlite' ? 'integer' : 'bigserial', (col) => (dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey()))
        .addColumn('instance_id', 'text', (col) => col.notNull())
        .addColumn('changes', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createTable('ha_instances')
        .addColumn('instance_id', 'text', (col) => col.primaryKey())
        .addColumn('advertise_url', 'text', (col) => col.notNull())
        .addColumn('started_at', 'bigint', (col) => col.notNull())
        .addColumn('lease_expires_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createTable('ha_presence')
        .addColumn('node_id', 'integer', (col) => col.notNull().references('nodes.id').onDelete('cascade'))
        .addColumn('instance_id', 'text', (col) => col.notNull())
        .addColumn('cap_version', 'integer', (col) => col.notNull())
        .addColumn('since', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('ha_presence_pkey', ['node_id', 'instance_id'])
        .execute();
      await db.schema.createIndex('ha_presence_instance_idx').on('ha_presence').column('instance_id').execute();
      await db.schema.createTable('ha_keys')
        .addColumn('name', 'text', (col) => col.primaryKey())
        .addColumn('ciphertext', 'text', (col) => col.notNull())
        .addColumn('created_at', 'bigint', (col) => col.notNull())
        .execute();
    },
    async down(db: SchemaDb): Promise<void> {
      for (const table of ['ha_keys', 'ha_presence', 'ha_instances', 'ha_change_log']) await db.schema.dropTable(table).execute();
    },
  };
}

/**
 * What high availability shares besides rows in memory (docs/ha.md): interactive logins waiting
 * for approval (so a client may poll, and an admin approve, through any instance) and SSH check
 * passes (a check completed through one instance is honoured by the others). `seq` names a
 * pending login in the change log, whose ids are numbers.
 */
function migration0008HaShared(dialect: Dialect): Migration {
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.createTable('ha_pending_logins')
        .addColumn('seq', 'integer', (col) => (dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey().generatedByDefaultAsIdentity()))
        .addColumn('id', 'text', (col) => col.notNull().unique())
        .addColumn('registration', 'text', (col) => col.notNull())
        // Set when an admin approved the login: the node it became.
        .addColumn('node_id', 'integer', (col) => col.references('nodes.id').onDelete('set null'))
        .addColumn('expires_at', 'bigint', (col) => col.notNull())
        .execute();
      await db.schema.createTable('ssh_check_passes')
        .addColumn('tailnet_id', 'integer', (col) => col.notNull().references('tailnets.id').onDelete('cascade'))
        .addColumn('user_id', 'integer', (col) => col.notNull().references('users.id').onDelete('cascade'))
        .addColumn('checked_at', 'bigint', (col) => col.notNull())
        .addPrimaryKeyConstraint('ssh_check_passes_pkey', ['tailnet_id', 'user_id'])
        .execute();
    },
    async down(db: SchemaDb): Promise<void> {
      for (const table of ['ssh_check_passes', 'ha_pending_logins']) await db.schema.dropTable(table).execute();
    },
  };
}

/**
 * The audit log's "from where": the client address of an admin change (an IP, `local` for the
 * admin socket), so every entry answers who, what, when and from where.
 */
function migration0009AuditFrom(): Migration {
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('audit_log').addColumn('from_address', 'text').execute();
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.alterTable('audit_log').dropColumn('from_address').execute();
    },
  };
}

/**
 * Sign-ins in flight (docs/ha.md): a link not yet opened, a sign-in at the provider by its state,
 * and a re-authentication's outcome for the instance where its caller waits, so the provider's
 * callback may reach any instance. Single use: a record is taken by DELETE ... RETURNING.
 */
function migration0010HaSignIns(dialect: Dialect): Migration {
  return {
    async up(db: SchemaDb): Promise<void> {
      await db.schema.createTable('ha_sign_ins')
        .addColumn('seq', 'integer', (col) => (dialect === 'sqlite' ? col.primaryKey().autoIncrement() : col.primaryKey().generatedByDefaultAsIdentity()))
        .addColumn('kind', 'text', (col) => col.notNull())
        .addColumn('key', 'text', (col) => col.notNull())
        .addColumn('body', 'text', (col) => col.notNull())
        .addColumn('expires_at', 'bigint', (col) => col.notNull())
        .addUniqueConstraint('ha_sign_ins_kind_key', ['kind', 'key'])
        .execute();
    },
    async down(db: SchemaDb): Promise<void> {
      await db.schema.dropTable('ha_sign_ins').execute();
    },
  };
}

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return {
    async getMigrations(): Promise<Record<string, Migration>> {
      return {
        '0001_initial': migration0001Initial(dialect),
        '0002_user_roles': migration0002UserRoles(),
        '0003_identity': migration0003Identity(),
        '0004_console_sessions': migration0004ConsoleSessions(dialect),
        '0005_tailnet_settings': migration0005TailnetSettings(),
        '0006_api_v2_webhooks': migration0006ApiV2Webhooks(dialect),
        '0007_ha': migration0007Ha(dialect),
        '0008_ha_shared': migration0008HaShared(dialect),
        '0009_audit_from': migration0009AuditFrom(),
        '0010_ha_sign_ins': migration0010HaSignIns(dialect),
      };
    },
  };
}

/** Names of every migration this build knows, in order. */
export async function knownMigrations(dialect: Dialect): Promise<string[]> {
  return Object.keys(await migrationProvider(dialect).getMigrations()).sort();
}
