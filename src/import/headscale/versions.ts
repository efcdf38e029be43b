// headscale's schema versions, told apart by the gormigrate ids in its `migrations` table. The
// ids and the releases that introduced them come from hscontrol/db/db.go of each release tag
// (v0.23.0 ... v0.29.2). headscale 0.28 squashed the ids before 202501221827 out of its code,
// but databases that lived through them still list them, so both forms are accepted.
//
// What changed in the tables we read, per release:
//   0.23  users(name unique), nodes.forced_tags, routes table, pre_auth_keys.key in the clear,
//         pre_auth_key_acl_tags table, policies table.
//   0.24  pre_auth_keys.tags (JSON) replaces pre_auth_key_acl_tags; users gain display_name,
//         email, provider_identifier.
//   0.26  nodes.approved_routes (JSON) replaces the routes table.
//   0.28  pre_auth_keys.prefix + bcrypt hash for new keys (old ones keep `key`);
//         nodes.forced_tags becomes nodes.tags; tagged nodes lose their user from 0.29.
// The reader looks at which columns and tables exist rather than trusting the release alone, so
// a database between two releases (a beta) reads right too.

/** Every migration id headscale 0.23 to 0.29 writes, in the order it runs them. */
const MIGRATIONS: ReadonlyArray<readonly [id: string, release: string]> = [
  ['202312101416', '0.23'],
  ['202312101430', '0.23'],
  ['202402151347', '0.23'],
  ['2024041121742', '0.23'],
  ['202406021630', '0.23'],
  ['202409271400', '0.24'],
  ['202407191627', '0.24'],
  ['202408181235', '0.24'],
  ['202501221827', '0.24'],
  ['202501311657', '0.24'],
  ['202502070949', '0.24'],
  ['202502131714', '0.26'],
  ['202502171819', '0.26'],
  ['202505091439', '0.26'],
  ['202505141324', '0.26'],
  ['202507021200', '0.27'],
  ['202510311551', '0.27'],
  ['202511101554-drop-old-idx', '0.27'],
  ['202511011637-preauthkey-bcrypt', '0.28'],
  ['202511122344-remove-newline-index', '0.28'],
  ['202511131445-node-forced-tags-to-tags', '0.28'],
  ['202601121700-migrate-hostinfo-request-tags', '0.28'],
  ['202602201200-clear-tagged-node-user-id', '0.29'],
  ['202605221435-clear-zero-time-node-expiry', '0.29'],
  ['202606181200-recover-null-tags-node-user-id', '0.29'],
];

/** The last id of headscale 0.23: a database without it predates what we read. */
const FIRST_SUPPORTED = '202406021630';

export type SchemaVerdict =
  | { ok: true; release: string; lastMigration: string }
  | { ok: false; reason: string };

/** The headscale release whose schema the applied migration ids describe. */
export function schemaVersion(appliedIds: readonly string[]): SchemaVerdict {
  if (appliedIds.length === 0) return { ok: false, reason: 'its migrations table is empty (headscale never finished migrating it)' };
  const order = new Map(MIGRATIONS.map(([id], index) => [id, index]));
  const unknown = appliedIds.filter((id) => !order.has(id)).sort();
  if (unknown.length > 0) {
    return { ok: false, reason: `it names migration${unknown.length === 1 ? '' : 's'} ${unknown.slice(0, 3).join(', ')} that headscale 0.23 to 0.29 do not have (a newer headscale?)` };
  }
  const latest = Math.max(...appliedIds.map((id) => order.get(id)!));
  if (latest < order.get(FIRST_SUPPORTED)!) {
    return { ok: false, reason: `its latest migration is ${MIGRATIONS[latest]![0]}, older than headscale 0.23` };
  }
  const [lastMigration, release] = MIGRATIONS[latest]!;
  return { ok: true, release, lastMigration };
}

/** All ids up to and including the last one of `release`, as that release leaves them. */
export function migrationIdsOf(release: string): string[] {
  const last = MIGRATIONS.map(([, r]) => r).lastIndexOf(release);
  if (last === -1) throw new Error(`unknown headscale release ${release}`);
  return MIGRATIONS.slice(0, last + 1).map(([id]) => id);
}
