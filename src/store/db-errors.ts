// Recognises constraint violations from better-sqlite3 and pg, so repositories can turn them into
// HeadwayErrors that say which value was taken. Everything else passes through unchanged.
import { UNIQUE_CONSTRAINTS, type UniqueConstraint } from './schema.js';

export type DbViolation =
  | { kind: 'unique'; constraint: UniqueConstraint | 'unknown' }
  | { kind: 'foreignKey' };

const bySqliteColumns = new Map<string, UniqueConstraint>(
  (Object.entries(UNIQUE_CONSTRAINTS) as Array<[UniqueConstraint, { table: string; columns: readonly string[] }]>).map(
    ([name, { table, columns }]) => [columns.map((column) => `${table}.${column}`).join(', '), name],
  ),
);

function isUniqueName(name: string): name is UniqueConstraint {
  return Object.hasOwn(UNIQUE_CONSTRAINTS, name);
}

export function classifyDbError(err: unknown): DbViolation | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = 'code' in err ? String(err.code) : '';
  // better-sqlite3: SqliteError with code SQLITE_CONSTRAINT_* and "UNIQUE constraint failed: t.a, t.b".
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    const message = err instanceof Error ? err.message : '';
    const columns = message.replace(/^UNIQUE constraint failed: /, '');
    return { kind: 'unique', constraint: bySqliteColumns.get(columns) ?? 'unknown' };
  }
  if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return { kind: 'foreignKey' };
  // pg: DatabaseError with SQLSTATE 23505 unique_violation / 23503 foreign_key_violation.
  if (code === '23505') {
    const constraint = 'constraint' in err ? String(err.constraint) : '';
    return { kind: 'unique', constraint: isUniqueName(constraint) ? constraint : 'unknown' };
  }
  if (code === '23503') return { kind: 'foreignKey' };
  return undefined;
}

/**
 * A failure of the storage itself rather than of the statement: the disk is full, or the
 * database went away (PostgreSQL stopped, connection cut). Callers turn these into 507 and 503
 * errors that say so, instead of an anonymous 500.
 */
export function classifyStorageFailure(err: unknown): 'diskFull' | 'unavailable' | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = 'code' in err ? String(err.code) : '';
  const message = err instanceof Error ? err.message : '';
  // better-sqlite3: SQLITE_FULL, or an I/O error whose cause is ENOSPC/EFBIG (a size limit).
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EFBIG') return 'diskFull';
  // SQLite rolls a transaction back by itself when a write hits a full disk or an I/O error;
  // kysely's ROLLBACK then fails with this and the original error is gone. Nothing else makes
  // SQLite abandon a transaction on our single connection (no busy timeouts, no interrupts).
  if (code === 'SQLITE_ERROR' && message === 'cannot rollback - no transaction is active') return 'diskFull';
  if (code.startsWith('SQLITE_IOERR')) return /ENOSPC|EFBIG|disk|full/i.test(message) || code === 'SQLITE_IOERR_WRITE' ? 'diskFull' : 'unavailable';
  // pg: SQLSTATE class 53 (insufficient resources, 53100 disk_full), 57P01-03 (shut down),
  // class 08 (connection exception); node errors when the socket is refused or cut.
  if (code === '53100') return 'diskFull';
  if (code === '57P01' || code === '57P02' || code === '57P03' || code.startsWith('08')) return 'unavailable';
  if (code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT') return 'unavailable';
  if (/Connection terminated|connection timeout|Client has encountered a connection error/i.test(message)) return 'unavailable';
  return undefined;
}
