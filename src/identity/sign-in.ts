// Sign-in through the provider, for three purposes: a device's interactive login (the node is
// registered to the signed-in user), a browser session for the web console (a hook of the
// composition root gives it), and the re-authentication of a known user (SSH check mode and
// the like). Each sign-in in flight is remembered by its state, single use, for ten minutes, in
// a ledger: this process's memory, or with high availability the database, so that a link
// opened and a callback received by any instance completes it (docs/ha.md).
// Users are provisioned keyed by issuer + subject; profile, groups and role are refreshed at
// every sign-in. A refusal creates nothing and leaves a waiting device waiting.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config, OidcConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { Node, TailnetId, User, UserId, UserRole } from '../model/index.js';
import { syncedGroupNames, syncedGroupsOf } from '../model/index.js';
import { HeadwayError, errorTables } from '../util/headway-error.js';
import type { Actor, ServerState, TailnetState } from '../state/index.js';
import { IdentityErrors, identityError } from './errors.js';
import type { AuthorizationChecks, ProviderClient, SignedInClaims } from './provider-client.js';
import { MemorySignInLedger, type SignInLedger } from './sign-in-ledger.js';

/** Who signed in to the browser, handed to the composition root's hook. */
export interface BrowserSignIn {
  readonly tailnetId: TailnetId;
  readonly userId: UserId;
  readonly role: UserRole;
}

/**
 * Gives a signed-in person a web console session (cookies, CSRF: src/web-session). It may write
 * the response; if it does not, the browser is sent on to the `next` path it asked for.
 */
export type BrowserSignInHook = (who: BrowserSignIn, req: IncomingMessage, res: ServerResponse) => Promise<void>;

export type SignInPurpose =
  | { readonly kind: 'device'; readonly registrationId: string }
  | { readonly kind: 'browser'; readonly next: string }
  | { readonly kind: 'reauth'; readonly tailnetId: TailnetId; readonly userId: UserId };

export type SignInOutcome =
  | { readonly kind: 'device'; readonly user: User; readonly node: Node }
  | { readonly kind: 'browser'; readonly user: User; readonly next: string }
  | { readonly kind: 'reauth'; readonly user: User };

type Settle = (result: { ok: true; user: User } | { ok: false; error: Error }) => void;

/** A sign-in link not opened yet (the provider URL is made when a browser opens it). */
interface HandleRecord {
  readonly purpose: SignInPurpose;
  /** The re-authentication waiting for this sign-in, on the instance that started it. */
  readonly waiter: string | null;
}

/** A sign-in at the provider, by its state: what its callback must check. */
interface FlightRecord extends HandleRecord {
  readonly checks: AuthorizationChecks;
}

/** How a re-authentication ended, for a waiter on another instance. */
type OutcomeRecord =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: string | null; readonly message: string };

/** A caller of startReauthentication, held in memory where it started. */
interface Waiter {
  readonly tailnetId: TailnetId;
  readonly userId: UserId;
  readonly settle: Settle;
  readonly expiresAt: number;
}

export const SIGN_IN_TTL_MS = 10 * 60_000;
/** How soon outcomes are looked for again after the ledger could not be read. */
const OUTCOME_RETRY_MS = 1_000;

/** Roles by rank, for a user in several role_groups: the highest wins. */
const ROLE_RANK: readonly UserRole[] = ['member', 'auditor', 'billing-admin', 'network-admin', 'it-admin', 'admin'];

export class SignInService {
  readonly #state: ServerState;
  readonly #config: Config;
  readonly #oidc: OidcConfig;
  readonly #provider: ProviderClient;
  readonly #logger: Logger;
  readonly #serverUrl: string;
  readonly #ledger: SignInLedger;
  readonly #waiters = new Map<string, Waiter>();
  readonly browserHook: BrowserSignInHook | null;

  constructor(deps: {
    state: ServerState; config: Config & { oidc: OidcConfig }; provider: ProviderClient; logger: Logger; serverUrl: string; onBrowserSignIn?: BrowserSignInHook;
    /** Where sign-ins in flight are kept; default this process's memory. */
    ledger?: SignInLedger;
  }) {
    this.#state = deps.state;
    this.#config = deps.config;
    this.#oidc = deps.config.oidc;
    this.#provider = deps.provider;
    this.#logger = deps.logger;
    this.#serverUrl = deps.serverUrl.replace(/\/+$/, '');
    this.browserHook = deps.onBrowserSignIn ?? null;
    this.#ledger = deps.ledger ?? new MemorySignInLedger();
    this.#ledger.onOutcome(() => void this.#collectOutcomes());
  }

  get provider(): ProviderClient {
    return this.#provider;
  }

  /** The tailnet signed-in users belong to. */
  tailnet(): TailnetState {
    return this.#state.requireTailnet(this.#oidc.tailnet);
  }

  /**
   * Starts the re-authentication of an existing user: returns the URL to show them and a
   * promise of the outcome (the user, refreshed, when the same identity signed in again; a
   * HeadwayError when refused, wherever the callback arrived, or after twenty minutes).
   */
  async startReauthentication(tailnetId: TailnetId, userId: UserId): Promise<{ url: string; result: Promise<User> }> {
    let settle!: Settle;
    const result = new Promise<User>((resolve, reject) => {
      settle = (outcome) => (outcome.ok ? resolve(outcome.user) : reject(outcome.error));
    });
    // A refusal must not be an unhandled rejection when the caller awaits the result later.
    result.catch(() => undefined);
    this.#prune();
    const waiter = randomToken();
    // The link may wait ten minutes to be opened, and the sign-in ten more to complete.
    this.#waiters.set(waiter, { tailnetId, userId, settle, expiresAt: Date.now() + 2 * SIGN_IN_TTL_MS });
    try {
      return { url: await this.#newHandle({ kind: 'reauth', tailnetId, userId }, waiter), result };
    } catch (err) {
      this.#waiters.delete(waiter);
      throw err;
    }
  }

  /** A sign-in link for a browser (the console's login button points at one). */
  browserLink(next: string): Promise<string> {
    return this.#newHandle({ kind: 'browser', next: safeNext(next) }, null);
  }

  async #newHandle(purpose: SignInPurpose, waiter: string | null): Promise<string> {
    const id = randomToken();
    const record: HandleRecord = { purpose, waiter };
    await this.#ledger.put('handle', id, JSON.stringify(record), SIGN_IN_TTL_MS);
    return `${this.#serverUrl}/oidc/start/${id}`;
  }

  /** Opens a link made by browserLink/startReauthentication: the provider URL and its state. */
  async openHandle(id: string): Promise<{ url: URL; state: string }> {
    const body = await this.#ledger.take('handle', id);
    if (body === undefined) {
      throw identityError(IdentityErrors.STATE_MISMATCH, 'this sign-in link is unknown or expired; start again');
    }
    const handle = JSON.parse(body) as HandleRecord;
    return this.#begin(handle.purpose, handle.waiter);
  }

  /** Starts a device's sign-in for a waiting interactive login. */
  async startDevice(registrationId: string): Promise<{ url: URL; state: string }> {
    if (await this.#state.pending.lookup(registrationId) === undefined) {
      throw identityError(IdentityErrors.LOGIN_EXPIRED, 'this login is not waiting any more (it was completed, or it expired); run tailscale up again');
    }
    return this.#begin({ kind: 'device', registrationId }, null);
  }

  /** Starts a browser sign-in directly (the console's /oidc/console/login). */
  startBrowser(next: string): Promise<{ url: URL; state: string }> {
    return this.#begin({ kind: 'browser', next: safeNext(next) }, null);
  }

  async #begin(purpose: SignInPurpose, waiter: string | null): Promise<{ url: URL; state: string }> {
    this.#prune();
    const { url, checks } = await this.#provider.authorizationUrl();
    const record: FlightRecord = { purpose, checks, waiter };
    await this.#ledger.put('flight', checks.state, JSON.stringify(record), SIGN_IN_TTL_MS);
    return { url, state: checks.state };
  }

  /**
   * Completes a sign-in from the provider's callback. `browserState` is the state the browser's
   * cookie says it started; it must equal the callback's. The state is used up either way.
   */
  async complete(callbackUrl: URL, browserState: string | undefined): Promise<SignInOutcome> {
    const state = callbackUrl.searchParams.get('state') ?? '';
    const body = state === '' ? undefined : await this.#ledger.take('flight', state);
    if (body === undefined) {
      throw identityError(IdentityErrors.STATE_MISMATCH, 'the sign-in state is unknown, expired or already used; start again');
    }
    const flight = JSON.parse(body) as FlightRecord;
    try {
      if (browserState !== state) {
        throw identityError(IdentityErrors.STATE_MISMATCH, 'the sign-in was not started in this browser (state mismatch); start again');
      }
      if (flight.purpose.kind === 'device' && await this.#state.pending.lookup(flight.purpose.registrationId) === undefined) {
        throw identityError(IdentityErrors.LOGIN_EXPIRED, 'the device login is not waiting any more; run tailscale up again');
      }
      const claims = await this.#provider.complete(callbackUrl, flight.checks);
      const outcome = await this.#finish(flight.purpose, claims);
      await this.#settle(flight.waiter, { ok: true, user: outcome.user });
      return outcome;
    } catch (err) {
      await this.#settle(flight.waiter, { ok: false, error: err as Error });
      throw err;
    }
  }

  /**
   * Hands a re-authentication's outcome to its waiter: at once when it waits here, else through
   * the ledger to the instance where it waits. The sign-in's own answer stands either way.
   */
  async #settle(waiterId: string | null, result: Parameters<Settle>[0]): Promise<void> {
    if (waiterId === null) return;
    const waiter = this.#waiters.get(waiterId);
    if (waiter !== undefined) {
      this.#waiters.delete(waiterId);
      waiter.settle(result);
      return;
    }
    const record: OutcomeRecord = result.ok
      ? { ok: true }
      : { ok: false, code: result.error instanceof HeadwayError ? result.error.code : null, message: result.error.message };
    await this.#ledger.put('outcome', waiterId, JSON.stringify(record), SIGN_IN_TTL_MS)
      .catch((err: unknown) => this.#logger.warn({ err }, 'handing a re-authentication\'s outcome to the instance where it waits failed; it will time out'));
  }

  /** Takes the outcomes other instances put for the re-authentications waiting here. */
  async #collectOutcomes(): Promise<void> {
    for (const [id, waiter] of [...this.#waiters]) {
      let body: string | undefined;
      try {
        body = await this.#ledger.take('outcome', id);
      } catch (err) {
        // No further notification may come for this outcome: look again shortly.
        this.#logger.warn({ err }, 'reading re-authentication outcomes failed; retrying');
        setTimeout(() => void this.#collectOutcomes(), OUTCOME_RETRY_MS).unref();
        return;
      }
      if (body === undefined || !this.#waiters.delete(id)) continue;
      const outcome = JSON.parse(body) as OutcomeRecord;
      const user = this.#state.tailnet(waiter.tailnetId)?.user(waiter.userId);
      if (outcome.ok && user !== undefined) waiter.settle({ ok: true, user });
      else if (outcome.ok) waiter.settle({ ok: false, error: identityError(IdentityErrors.REAUTH_MISMATCH, 'the user who had to re-authenticate no longer exists') });
      else waiter.settle({ ok: false, error: rebuiltError(outcome.code, outcome.message) });
    }
  }

  async #finish(purpose: SignInPurpose, claims: SignedInClaims): Promise<SignInOutcome> {
    const tailnet = this.tailnet();
    if (purpose.kind === 'reauth') {
      const user = tailnet.id === purpose.tailnetId ? tailnet.user(purpose.userId) : undefined;
      if (user === undefined || user.oidc === null || user.oidc.issuer !== claims.issuer || user.oidc.subject !== claims.subject) {
        throw identityError(IdentityErrors.REAUTH_MISMATCH, `signed in as ${claims.email || claims.subject}, not as the user who had to re-authenticate`);
      }
    }
    const user = await this.provision(tailnet, claims);
    switch (purpose.kind) {
      case 'device': {
        const registration = await this.#state.pending.lookup(purpose.registrationId);
        if (registration === undefined) throw identityError(IdentityErrors.LOGIN_EXPIRED, 'the device login is not waiting any more; run tailscale up again');
        const node = await this.#state.approvePending(purpose.registrationId, tailnet, {
          userId: user.id,
          keyExpiry: this.#keyExpiry(claims, registration.requestedExpiry, tailnet.nodeExpiryMs(this.#config.nodeExpiryMs)),
          registerMethod: 'oidc',
        }, actorOf(claims));
        this.#logger.info({ user: user.name, node: node.givenName, node_id: node.id }, 'device registered by sign-in');
        return { kind: 'device', user, node };
      }
      case 'browser':
        return { kind: 'browser', user, next: purpose.next };
      case 'reauth':
        return { kind: 'reauth', user };
    }
  }

  /**
   * With use_expiry_from_token the ID token's expiry; else oidc.expiry or the tailnet's default
   * key expiry (`defaultMs`: its own setting, else node_expiry; 0 = never).
   */
  #keyExpiry(claims: SignedInClaims, requested: Date | null, defaultMs: number): Date | null {
    const now = Date.now();
    let expiry: Date | null;
    if (this.#oidc.useExpiryFromToken) expiry = claims.tokenExpiry;
    else {
      const ms = this.#oidc.expiryMs ?? defaultMs;
      expiry = ms > 0 ? new Date(now + ms) : null;
    }
    if (requested !== null && requested.getTime() > now && (expiry === null || requested.getTime() < expiry.getTime())) return requested;
    return expiry;
  }

  /**
   * Finds or creates the user of an identity and refreshes their profile, groups and role.
   * Refuses (creating nothing) what the configuration does not allow.
   */
  async provision(tailnet: TailnetState, claims: SignedInClaims): Promise<User> {
    this.#checkAllowed(claims);
    const actor = actorOf(claims);
    const groups = syncedGroupNames(claims.groups, claims.email);
    let user = [...tailnet.users()].find((u) => u.oidc !== null && u.oidc.issuer === claims.issuer && u.oidc.subject === claims.subject);
    if (user !== undefined && !user.active) {
      throw identityError(IdentityErrors.USER_INACTIVE, `${claims.email || claims.subject} was deactivated and may not sign in`);
    }
    // An existing user without an identity, with the same email, is linked only when allowed.
    let link = false;
    if (user === undefined && claims.email !== '') {
      const sameEmail = [...tailnet.users()].find((u) => u.oidc === null && u.email.toLowerCase() === claims.email);
      if (sameEmail !== undefined) {
        // A user SCIM provisioned comes from this provider: linked like link_by_email allows.
        const fromScim = sameEmail.scimExternalId !== null;
        if (!(this.#oidc.linkByEmail || fromScim) || !claims.emailVerified) {
          throw identityError(IdentityErrors.LINK_REFUSED, `a user "${sameEmail.name}" with the email ${claims.email} already exists and is not linked to this sign-in${this.#oidc.linkByEmail ? ' (the email is not verified)' : ' (oidc.link_by_email is off)'}; ask an administrator`);
        }
        if (!sameEmail.active) throw identityError(IdentityErrors.USER_INACTIVE, `${claims.email} was deactivated and may not sign in`);
        user = sameEmail;
        link = true;
      }
    }
    const role = this.#roleFor(claims, user?.role ?? 'member');
    // What the provider does not send (no name, no email scope) keeps its current value.
    const profile = {
      displayName: claims.name !== '' ? claims.name : (user?.displayName ?? ''),
      email: claims.email !== '' ? claims.email : (user?.email ?? ''),
      pictureUrl: claims.picture,
      oidcGroups: groups,
      role,
    };
    if (user === undefined) {
      return tailnet.createUser({
        name: uniqueUserName(tailnet, claims),
        ...profile,
        oidc: { issuer: claims.issuer, subject: claims.subject },
      }, actor);
    }
    if (link) {
      // The identity and the fresh profile in one write.
      this.#logger.info({ user: user.name, email: claims.email }, 'existing user linked to the sign-in identity by email');
      return tailnet.updateUser(user.id, { ...profile, oidc: { issuer: claims.issuer, subject: claims.subject } }, actor, { action: 'user.link' });
    }
    const changed = user.displayName !== profile.displayName || user.email !== profile.email || user.pictureUrl !== profile.pictureUrl
      || user.role !== profile.role || user.oidcGroups.join('\n') !== groups.join('\n');
    if (!changed) return user;
    this.#logger.info({ user: user.name, groups_before: syncedGroupsOf(user), groups: groups, role }, 'user profile refreshed at sign-in');
    return tailnet.updateUser(user.id, profile, actor, { action: 'user.signin' });
  }

  #checkAllowed(claims: SignedInClaims): void {
    const who = claims.email || claims.subject;
    if (this.#oidc.emailVerifiedRequired && !claims.emailVerified) {
      throw identityError(IdentityErrors.EMAIL_UNVERIFIED, `the provider does not say the email of ${who} is verified`);
    }
    if (this.#oidc.allowedDomains.length > 0) {
      const domain = claims.email.slice(claims.email.lastIndexOf('@') + 1);
      if (!claims.email.includes('@') || !this.#oidc.allowedDomains.includes(domain)) {
        throw identityError(IdentityErrors.DOMAIN_NOT_ALLOWED, `${who}: the email domain is not one of the allowed domains`);
      }
    }
    if (this.#oidc.allowedUsers.length > 0 && !this.#oidc.allowedUsers.includes(claims.email)) {
      throw identityError(IdentityErrors.USER_NOT_ALLOWED, `${who} is not one of the allowed users`);
    }
    if (this.#oidc.allowedGroups.length > 0 && !claims.groups.some((g) => this.#oidc.allowedGroups.includes(g) || this.#oidc.allowedGroups.includes(g.replace(/^\/+/, '')))) {
      throw identityError(IdentityErrors.GROUP_NOT_ALLOWED, `${who} is in none of the allowed groups`);
    }
  }

  /** With role_groups the provider decides the role (no matching group: member); owners stay owners. */
  #roleFor(claims: SignedInClaims, current: UserRole): UserRole {
    if (current === 'owner') return current;
    const mapping = this.#oidc.roleGroups;
    if (Object.keys(mapping).length === 0) return current;
    let best: UserRole = 'member';
    for (const group of claims.groups) {
      const role = mapping[group] ?? mapping[group.replace(/^\/+/, '')];
      if (role !== undefined && ROLE_RANK.indexOf(role) > ROLE_RANK.indexOf(best)) best = role;
    }
    return best;
  }

  #prune(): void {
    const now = Date.now();
    for (const [id, waiter] of this.#waiters) {
      if (waiter.expiresAt > now) continue;
      this.#waiters.delete(id);
      waiter.settle({ ok: false, error: identityError(IdentityErrors.STATE_MISMATCH, 'the sign-in was not completed in time') });
    }
  }
}

/** A refusal made on another instance, with its code when it had one of ours. */
function rebuiltError(code: string | null, message: string): Error {
  for (const table of errorTables) {
    for (const spec of Object.values(table)) if (spec.code === code) return new HeadwayError(spec, message);
  }
  return new Error(message);
}

function actorOf(claims: SignedInClaims): Actor {
  return { name: `oidc:${claims.email || claims.subject}` };
}

/** A login name for a new user: the email's local part (or preferred_username), made unique. */
function uniqueUserName(tailnet: TailnetState, claims: SignedInClaims): string {
  const source = claims.email.includes('@') ? claims.email.slice(0, claims.email.lastIndexOf('@')) : claims.preferredUsername || claims.subject;
  const base = source.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[-.]+|[-.]+$/g, '').slice(0, 48) || 'user';
  if (tailnet.userByName(base) === undefined) return base;
  for (let i = 2; ; i++) if (tailnet.userByName(`${base}-${i}`) === undefined) return `${base}-${i}`;
}

/** Only local paths: a sign-in never sends the browser to another site. */
function safeNext(next: string): string {
  return next.startsWith('/') && !next.startsWith('//') && !next.includes('\\') ? next : '/';
}

function randomToken(): string {
  return randomBytes(24).toString('base64url');
}
