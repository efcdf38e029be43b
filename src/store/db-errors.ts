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
