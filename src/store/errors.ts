// Errors of the store. Constraint violations of both dialects become the same codes, so the API
// can answer 404/409 without knowing which database runs underneath. Messages never carry SQL
// parameters or secrets.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const StoreErrors = registerErrors({
  unavailable: {
    code: 'HW_STORE_UNAVAILABLE',
    status: 503,
    meaning: 'The database could not be opened or reached.',
    fix: 'Check database.sqlite.path (directory exists and is writable) or the PostgreSQL settings and that the server is up.',
  },
  diskFull: {
    code: 'HW_STORE_DISK_FULL',
    status: 507,
    meaning: 'A write failed because the disk (or a file-size limit) is full, or SQLite hit an I/O error and rolled the transaction back by itself; nothing was half-written.',
    fix: 'Free space on the volume holding the database (or raise the limit); writes succeed again without a restart.',
  },
  migrationFailed: {
    code: 'HW_STORE_MIGRATION_FAILED',
    status: 500,
    meaning: 'A schema migration failed; the database was left at the last migration that succeeded.',
    fix: 'Read the cause in the log, fix it (disk space, permissions), and start again; migrations resume where they stopped.',
  },
  schemaTooNew: {
    code: 'HW_STORE_SCHEMA_TOO_NEW',
    status: 500,
    meaning: 'The database was migrated by a newer Headway than this one.',
    fix: 'Run the newer Headway, or restore a backup taken before the upgrade.',
  },
  closed: {
    code: 'HW_STORE_CLOSED',
    status: 503,
    meaning: 'The store was used after close() (the server is shutting down).',
    fix: 'None needed during shutdown; otherwise a part kept using the store after stopping.',
  },
  nestedTransaction: {
    code: 'HW_STORE_NESTED_TRANSACTION',
    status: 500,
    meaning: 'store.read or store.transaction() was used inside a transaction callback (on SQLite this would deadlock).',
    fix: 'Use the `tx` passed to the callback for every query inside it.',
  },
  needsTransaction: {
    code: 'HW_STORE_NEEDS_TRANSACTION',
    status: 500,
    meaning: 'Addresses were allocated outside a transaction, so two registrations could get the same one.',
    fix: 'Allocate with tx.addresses inside store.transaction(), in the transaction that inserts the node.',
  },
  notFound: {
    code: 'HW_STORE_NOT_FOUND',
    status: 404,
    meaning: 'The tailnet, user, node or key does not exist (or no longer exists).',
    fix: 'List the objects to find the right id or name.',
  },
  referenceMissing: {
    code: 'HW_STORE_REFERENCE_MISSING',
    status: 404,
    meaning: 'A new object refers to a tailnet, user or pre-auth key that does not exist.',
    fix: 'Create the referenced object first, or use an existing id.',
  },
  invalidValue: {
    code: 'HW_STORE_INVALID_VALUE',
    status: 400,
    meaning: 'A value handed to the store is malformed (e.g. an IP address field that is not an address).',
    fix: 'Validate input at the API or protocol boundary; this is a bug in the caller.',
  },
  tailnetExists: {
    code: 'HW_STORE_TAILNET_EXISTS',
    status: 409,
    meaning: 'A tailnet with this name already exists.',
    fix: 'Choose another name.',
  },
  userExists: {
    code: 'HW_STORE_USER_EXISTS',
    status: 409,
    meaning: 'A user with this name already exists in the tailnet.',
    fix: 'Choose another name, or use the existing user.',
  },
  scimGroupExists: {
    code: 'HW_STORE_SCIM_GROUP_EXISTS',
    status: 409,
    meaning: 'A SCIM group with this display name already exists in the tailnet.',
    fix: 'The SCIM client should update the existing group (find it with GET /scim/v2/Groups?filter=displayName eq "...").',
  },
  userHasNodes: {
    code: 'HW_STORE_USER_HAS_NODES',
    status: 409,
    meaning: 'The user still owns nodes, so it cannot be deleted.',
    fix: 'Delete the nodes or move them to another user first.',
  },
  nodeKeyInUse: {
    code: 'HW_STORE_NODE_KEY_IN_USE',
    status: 409,
    meaning: 'Another node already uses this node key.',
    fix: 'A node key identifies one node; re-register the existing node instead of adding a second one.',
  },
  givenNameTaken: {
    code: 'HW_STORE_GIVEN_NAME_TAKEN',
    status: 409,
    meaning: 'Another node in the tailnet already has this name.',
    fix: 'Choose another name; names are unique per tailnet.',
  },
  addressInUse: {
    code: 'HW_STORE_ADDRESS_IN_USE',
    status: 409,
    meaning: 'Another node in the tailnet already has this IP address.',
    fix: 'Let the allocator choose addresses (tx.addresses.allocate) inside the registration transaction.',
  },
  addressesExhausted: {
    code: 'HW_STORE_ADDRESSES_EXHAUSTED',
    status: 503,
    meaning: 'Every usable address of a configured prefix is taken in the tailnet.',
    fix: 'Delete unused nodes, or widen prefixes.v4 / prefixes.v6 (inside 100.64.0.0/10 and fd7a:115c:a1e0::/48).',
  },
  defaultTailnet: {
    code: 'HW_STORE_DEFAULT_TAILNET',
    status: 409,
    meaning: 'The default tailnet cannot be deleted.',
    fix: 'Delete its nodes, users and keys instead if you want it empty.',
  },
  conflict: {
    code: 'HW_STORE_CONFLICT',
    status: 409,
    meaning: 'The change conflicts with existing data (a unique value is taken).',
    fix: 'Retry; if it persists, report it with the log line.',
  },
  keyFileInvalid: {
    code: 'HW_STORE_KEY_FILE_INVALID',
    status: 500,
    meaning: 'A private key file exists but does not hold a key (want privkey: and 64 hex digits).',
    fix: 'Restore the file from a backup, or move it away to have a new key created (clients must then re-trust the server).',
  },
  keyFileUnusable: {
    code: 'HW_STORE_KEY_FILE_UNUSABLE',
    status: 500,
    meaning: 'A private key file could not be read or created.',
    fix: 'Check that the directory exists or can be created, and that the server user may read and write it.',
  },
});

export type StoreErrorSpec = (typeof StoreErrors)[keyof typeof StoreErrors];

export function storeError(spec: StoreErrorSpec, message: string, cause?: unknown): HeadwayError {
  return new HeadwayError(spec, message, cause === undefined ? undefined : { cause });
}
