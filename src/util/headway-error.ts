// The one base class of every error Headway raises on purpose. `code` is stable
// (`HW_<PART>_<WHAT>`), never reused, and documented in docs/errors.md with its meaning, fix and
// HTTP status; callers match on `code`, never on message text.

export interface ErrorSpec {
  /** `HW_<PART>_<WHAT>`. */
  readonly code: string;
  /** HTTP status when the error reaches an API or protocol boundary. */
  readonly status: number;
  /** One line for docs/errors.md: what happened. */
  readonly meaning: string;
  /** One line for docs/errors.md: what the user should do. */
  readonly fix: string;
}

export class HeadwayError extends Error {
  override name = 'HeadwayError';
  readonly code: string;
  readonly status: number;

  constructor(spec: ErrorSpec, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = spec.code;
    this.status = spec.status;
  }
}

/** Declares a part's error table; the `as const` keeps each spec's key for lookups. */
export function defineErrors<T extends Record<string, ErrorSpec>>(table: T): T {
  for (const [key, spec] of Object.entries(table)) {
    if (!/^HW_[A-Z0-9]+_[A-Z0-9_]+$/.test(spec.code)) throw new Error(`error ${key}: bad code ${spec.code}`);
  }
  return table;
}

/** Every table registered by a part, for the documentation test. */
export const errorTables: Array<Record<string, ErrorSpec>> = [];

export function registerErrors<T extends Record<string, ErrorSpec>>(table: T): T {
  errorTables.push(defineErrors(table));
  return table;
}
