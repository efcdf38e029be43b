// Browser sessions of the web console. A session is a random 256-bit token in an HttpOnly,
// SameSite=Lax cookie (Secure on https); the database holds only its SHA-256, so a stolen
// database yields no usable session. The CSRF token is derived from the session token (a keyed
// hash the page reads from GET /api/v1/session): a cross-site page can make the browser send
// the cookie but can neither read the token nor compute it. Sessions end on sign-out, after an
// idle period, and at a maximum age, whichever comes first.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConsoleSession, TailnetId, User, UserId, UserRole } from '../model/index.js';
import { auditActor, type Actor, type ServerState } from '../state/index.js';
import { WebSessionErrors, webSessionError } from './errors.js';

export const SESSION_COOKIE = 'headway_console';
export const CSRF_HEADER = 'x-csrf-token';
export const DEFAULT_IDLE_TIMEOUT_MS = 30 * 60_000;
export const DEFAULT_MAX_AGE_MS = 12 * 3_600_000;
export const DEFAULT_LINK_TTL_MS = 5 * 60_000;
/** last_seen_at is written at most this often per session; the idle timeout is never shorter. */
const TOUCH_INTERVAL_MS = 10_000;

/** Roles that may administer a tailnet from the console; everyone else sees only their own devices. */
const ADMIN_ROLES: readonly UserRole[] = ['owner', 'admin', 'it-admin', 'network-admin'];

export function isAdminRole(role: UserRole): boolean {
  return ADMIN_ROLES.includes(role);
}

export interface WebSessionOptions {
  idleTimeoutMs?: number;
  maxAgeMs?: number;
  now?: () => number;
}

/** Who signed in, as the identity provider (or a sign-in link) tells it. */
export interface BrowserIdentity {
  readonly tailnetId: TailnetId;
  /** null: the server's operator (a login link printed without --user). */
  readonly userId: UserId | null;
  readonly role: UserRole;
}

export interface AuthenticatedSession {
  readonly session: ConsoleSession;
  readonly csrfToken: string;
  readonly actor: Actor;
  readonly admin: boolean;
}

const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');
const newToken = (): string => randomBytes(32).toString('base64url');

export function csrfTokenFor(sessionToken: string): string {
  return createHash('sha256').update('headway-console-csrf\0', 'utf8').update(sessionToken, 'utf8').digest('base64url');
}

export function csrfMatches(sessionToken: string, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const want = Buffer.from(csrfTokenFor(sessionToken));
  const got = Buffer.from(presented);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** The value of one cookie in a Cookie header. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq !== -1 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export function sessionCookie(token: string, secure: boolean, maxAgeMs: number): string {
  return `${SESSION_COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${Math.floor(maxAgeMs / 1000)}${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
}

export class WebSessions {
  readonly #state: ServerState;
  readonly #now: () => number;
  readonly idleTimeoutMs: number;
  readonly maxAgeMs: number;

  constructor(state: ServerState, options: WebSessionOptions = {}) {
    this.#state = state;
    this.#now = options.now ?? Date.now;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    this.maxAgeMs = options.maxAgeMs ?? DEFAULT_MAX_AGE_MS;
  }

  #actorName(userId: UserId | null, tailnetId: TailnetId): string {
    if (userId === null) return 'console:operator';
    const user = this.#state.tailnet(tailnetId)?.user(userId);
    return `console:${user?.name ?? `user-${userId}`}`;
  }

  /** A single-use sign-in link token for the operator (no user) or for one user of a tailnet. */
  async createLoginLink(tailnetName: string, userName: string | null, ttlMs: number, actor: Actor): Promise<{ token: string; expiresAt: Date; actor: string }> {
    const tailnet = this.#state.requireTailnet(tailnetName);
    let user: User | null = null;
    if (userName !== null) {
      user = [...tailnet.users()].find((u) => u.name === userName) ?? null;
      if (user === null) throw webSessionError(WebSessionErrors.userUnknown, `user "${userName}" does not exist in tailnet "${tailnet.name}"`);
    }
    const token = newToken();
    const expiresAt = new Date(this.#now() + ttlMs);
    const grant = { tailnetId: tailnet.id, userId: user?.id ?? null, role: user?.role ?? 'admin', actor: this.#actorName(user?.id ?? null, tailnet.id), at: new Date(this.#now()), expiresAt };
    await this.#state.store.transaction(async (tx) => {
      await tx.consoleSessions.createLink(hashToken(token), grant);
      await tx.audit.record({ tailnetId: tailnet.id, ...auditActor(actor), action: 'console.login_link.create', target: grant.actor, details: { expiresAt: expiresAt.toISOString() } });
    });
    return { token, expiresAt, actor: grant.actor };
  }

  /** Exchanges a sign-in link for a new session; the link never works again. */
  async redeemLoginLink(linkToken: string, from: string): Promise<{ token: string; session: ConsoleSession }> {
    const now = new Date(this.#now());
    return this.#state.store.transaction(async (tx) => {
      const link = await tx.consoleSessions.consumeLink(hashToken(linkToken), now);
      if (link === undefined) throw webSessionError(WebSessionErrors.linkInvalid, 'this sign-in link is unknown or was already used; print a new one with `headway admin login-link`');
      if (link.expiresAt.getTime() <= now.getTime()) throw webSessionError(WebSessionErrors.linkInvalid, `this sign-in link expired at ${link.expiresAt.toISOString()}; print a new one with \`headway admin login-link\``);
      const token = newToken();
      const session = await tx.consoleSessions.createSession(hashToken(token), {
        tailnetId: link.tailnetId, userId: link.userId, role: link.role, actor: link.actor, at: now, expiresAt: new Date(now.getTime() + this.maxAgeMs),
      });
      await tx.audit.record({ tailnetId: link.tailnetId, actor: link.actor, from, action: 'console.sign_in', target: link.actor, details: { method: 'login-link', role: link.role } });
      return { token, session };
    });
  }

  /** Starts a session for an identity another part verified (OIDC). */
  async startSession(who: BrowserIdentity, from: string, method: string): Promise<{ token: string; session: ConsoleSession }> {
    const token = newToken();
    const actor = this.#actorName(who.userId, who.tailnetId);
    return this.#state.store.transaction(async (tx) => {
      const session = await tx.consoleSessions.createSession(hashToken(token), {
        tailnetId: who.tailnetId, userId: who.userId, role: who.role, actor, at: new Date(this.#now()), expiresAt: new Date(this.#now() + this.maxAgeMs),
      });
      await tx.audit.record({ tailnetId: who.tailnetId, actor, from, action: 'console.sign_in', target: actor, details: { method, role: who.role } });
      return { token, session };
    });
  }

  /**
   * The session a Cookie header carries, or undefined when it carries none. A cookie that names
   * an ended session throws HW_WEBSESSION_INVALID so the console can say why. `touch: false`
   * checks without counting as activity (an open event stream must not keep a session alive).
   */
  async authenticate(cookieHeader: string | undefined, options: { touch?: boolean } = {}): Promise<(AuthenticatedSession & { token: string }) | undefined> {
    const token = cookieValue(cookieHeader, SESSION_COOKIE);
    if (token === undefined || token === '') return undefined;
    const session = await this.#state.store.read.consoleSessions.findSession(hashToken(token));
    const now = this.#now();
    if (session === undefined || session.revokedAt !== null) throw webSessionError(WebSessionErrors.sessionInvalid, 'your console session has ended; sign in again');
    if (session.expiresAt.getTime() <= now) throw webSessionError(WebSessionErrors.sessionInvalid, 'your console session reached its maximum age; sign in again');
    if (now - session.lastSeenAt.getTime() > this.idleTimeoutMs) {
      throw webSessionError(WebSessionErrors.sessionInvalid, `your console session was idle for more than ${Math.round(this.idleTimeoutMs / 60_000)} minutes; sign in again`);
    }
    if (options.touch !== false && now - session.lastSeenAt.getTime() >= TOUCH_INTERVAL_MS) await this.#state.store.read.consoleSessions.touchSession(session.id, new Date(now));
    // A user's role can change while signed in; the session follows the user's current role.
    const user = session.userId === null ? undefined : this.#state.tailnet(session.tailnetId)?.user(session.userId);
    if (session.userId !== null && user === undefined) throw webSessionError(WebSessionErrors.sessionInvalid, 'the user of this console session no longer exists');
    const role = user?.role ?? session.role;
    return { token, session: { ...session, role }, csrfToken: csrfTokenFor(token), actor: { name: session.actor }, admin: isAdminRole(role) };
  }

  async signOut(session: ConsoleSession, from: string): Promise<void> {
    await this.#state.store.transaction(async (tx) => {
      await tx.consoleSessions.revokeSession(session.id, new Date(this.#now()));
      await tx.audit.record({ tailnetId: session.tailnetId, actor: session.actor, from, action: 'console.sign_out', target: session.actor, details: {} });
    });
  }
}
