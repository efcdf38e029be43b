// Who asked for a change, as the audit log records it.

/** Who asked for a change; recorded in the audit log. */
export interface Actor {
  /** `unix-socket`, `api-key:<prefix>`, `node:<id>`, `system`. */
  readonly name: string;
  /**
   * Where the request came from, for the audit log: the client's address, `local` for the admin
   * socket; absent for the server's own changes.
   */
  readonly from?: string;
}

/** The audit entry's actor fields for `actor`. */
export function auditActor(actor: Actor): { actor: string; from: string | null } {
  return { actor: actor.name, from: actor.from ?? null };
}

export const SYSTEM: Actor = { name: 'system' };
