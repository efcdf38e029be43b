// What the CLI prints. `--output json` prints the API's own objects (lists as bare arrays), so
// scripts see the same field names as API clients; the default is a plain aligned table.
import type { Writable } from 'node:stream';

export type OutputFormat = 'table' | 'json';

export interface Column<T> {
  readonly header: string;
  readonly value: (row: T) => string;
}

export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Columns padded to their widest cell, two spaces apart; the last column is not padded. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => oneLine(c.value(row))))];
  const widths = columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)));
  return cells.map((line) => line.map((cell, i) => (i === line.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

/** One `key: value` line per field, for `show` commands. */
export function renderFields(fields: ReadonlyArray<readonly [string, string]>): string {
  const width = Math.max(...fields.map(([k]) => k.length));
  return fields.map(([k, v]) => `${`${k}:`.padEnd(width + 1)} ${oneLine(v)}`.trimEnd()).join('\n') + '\n';
}

function oneLine(text: string): string {
  return text.replace(/[\r\n\t]+/g, ' ');
}

/** `2026-11-28 09:30:00Z`, or `-` for none. */
export function time(iso: string | null): string {
  if (iso === null) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function list(values: readonly string[]): string {
  return values.length === 0 ? '-' : values.join(',');
}

export function yesNo(value: boolean): string {
  return value ? 'yes' : 'no';
}

export interface CliIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}
