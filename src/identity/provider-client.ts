// The OpenID Connect provider as Headway uses it, through openid-client: discovery (at start, in
// the background, retried with backoff while the provider is down), the authorization URL with
// state, nonce and PKCE, and the code exchange with every check the library makes (signature
// against the provider's JWKS, which it refetches when the signing key rotates; issuer,
// audience, lifetime, nonce), then userinfo. No OAuth is written here by hand.
import * as oidc from 'openid-client';
import type { OidcConfig } from '../config/index.js';
import type { Logger } from '../log/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { IdentityErrors, identityError } from './errors.js';

/** What the provider says about the person who signed in. */
export interface SignedInClaims {
  readonly issuer: string;
  readonly subject: string;
  readonly email: string;
  /** False when the provider does not say it is verified. */
  readonly emailVerified: boolean;
  readonly name: string;
  readonly preferredUsername: string;
  readonly picture: string;
  /** The groups claim as sent (strings only). */
  readonly groups: readonly string[];
  /** When the ID token expires. */
  readonly tokenExpiry: Date | null;
}

/** What a sign-in in flight must remember between the redirect and the callback. */
export interface AuthorizationChecks {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string | null;
}

const BACKOFF_START_MS = 1_000;
const BACKOFF_MAX_MS = 5 * 60_000;
const REQUEST_TIMEOUT_S = 10;

export class ProviderClient {
  readonly #config: OidcConfig;
  readonly #redirectUri: string;
  readonly #logger: Logger;
  #configuration: oidc.Configuration | null = null;
  #discovering: Promise<oidc.Configuration> | null = null;
  #retryTimer: NodeJS.Timeout | null = null;
  #backoffMs = BACKOFF_START_MS;
  #closed = false;

  constructor(config: OidcConfig, redirectUri: string, logger: Logger) {
    this.#config = config;
    this.#redirectUri = redirectUri;
    this.#logger = logger;
  }

  get redirectUri(): string {
    return this.#redirectUri;
  }

  /** True once discovery has succeeded. */
  get ready(): boolean {
    return this.#configuration !== null;
  }

  /**
   * Starts discovery in the background; while the provider is down it is retried with
   * exponential backoff (1 s doubling to 5 min), and the server keeps serving meanwhile.
   */
  start(): void {
    void this.#discover().catch(() => undefined);
  }

  close(): void {
    this.#closed = true;
    if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
    this.#retryTimer = null;
  }

  /** The discovered configuration, discovering now if needed; throws PROVIDER_UNREACHABLE. */
  async configuration(): Promise<oidc.Configuration> {
    return this.#configuration ?? this.#discover();
  }

  #discover(): Promise<oidc.Configuration> {
    this.#discovering ??= (async () => {
      try {
        const issuer = new URL(this.#config.issuer);
        const configuration = await oidc.discovery(
          issuer,
          this.#config.clientId,
          { redirect_uris: [this.#redirectUri], response_types: ['code'] },
          oidc.ClientSecretBasic(this.#config.clientSecret),
          {
            timeout: REQUEST_TIMEOUT_S,
            // ID token signatures are checked against the provider's JWKS (refetched when the
            // signing key rotates), not only trusted because they came over TLS; plain http is
            // accepted only for a provider on a loopback address (the config checks it).
            execute: [oidc.enableNonRepudiationChecks, ...(issuer.protocol === 'http:' ? [oidc.allowInsecureRequests] : [])],
          },
        );
        this.#configuration = configuration;
        this.#backoffMs = BACKOFF_START_MS;
        if (this.#retryTimer !== null) clearTimeout(this.#retryTimer);
        this.#retryTimer = null;
        this.#logger.info({ issuer: this.#config.issuer }, 'OpenID Connect provider discovered');
        return configuration;
      } catch (err) {
        this.#logger.warn({ err: describe(err), issuer: this.#config.issuer, retry_in_ms: this.#backoffMs }, 'OpenID Connect discovery failed; retrying with backoff');
        this.#scheduleRetry();
        throw identityError(IdentityErrors.PROVIDER_UNREACHABLE, `the sign-in provider ${this.#config.issuer} cannot be reached: ${describe(err)}`, err);
      } finally {
        this.#discovering = null;
      }
    })();
    return this.#discovering;
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#retryTimer !== null) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, BACKOFF_MAX_MS);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      if (!this.#closed && this.#configuration === null) void this.#discover().catch(() => undefined);
    }, delay);
    this.#retryTimer.unref();
  }

  /** The URL the browser is sent to, and what the callback must check. */
  async authorizationUrl(): Promise<{ url: URL; checks: AuthorizationChecks }> {
    const configuration = await this.configuration();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const codeVerifier = this.#config.pkce.enabled ? oidc.randomPKCECodeVerifier() : null;
    const parameters: Record<string, string> = {
      ...this.#config.extraParams,
      redirect_uri: this.#redirectUri,
      scope: this.#config.scope.join(' '),
      state,
      nonce,
    };
    if (codeVerifier !== null) {
      parameters['code_challenge'] = await oidc.calculatePKCECodeChallenge(codeVerifier);
      parameters['code_challenge_method'] = 'S256';
    }
    return { url: oidc.buildAuthorizationUrl(configuration, parameters), checks: { state, nonce, codeVerifier } };
  }

  /**
   * Exchanges the code of a callback for tokens, validates the ID token, and reads userinfo.
   * Throws TOKEN_REJECTED, PROVIDER_ERROR or PROVIDER_UNREACHABLE.
   */
  async complete(callbackUrl: URL, checks: AuthorizationChecks): Promise<SignedInClaims> {
    const configuration = await this.configuration();
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(configuration, callbackUrl, {
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
        ...(checks.codeVerifier !== null ? { pkceCodeVerifier: checks.codeVerifier } : {}),
      });
    } catch (err) {
      throw classify(err, 'exchanging the code');
    }
    const idClaims = tokens.claims();
    if (idClaims === undefined) throw identityError(IdentityErrors.TOKEN_REJECTED, 'the provider returned no ID token');
    let info: Record<string, unknown> = {};
    if (configuration.serverMetadata().userinfo_endpoint !== undefined) {
      try {
        info = { ...(await oidc.fetchUserInfo(configuration, tokens.access_token, idClaims.sub)) };
      } catch (err) {
        throw classify(err, 'reading userinfo');
      }
    }
    const claim = (name: string): unknown => info[name] ?? (idClaims as Record<string, unknown>)[name];
    const text = (name: string): string => (typeof claim(name) === 'string' ? (claim(name) as string) : '');
    const rawGroups = claim(this.#config.groupsClaim);
    const groups = Array.isArray(rawGroups) ? rawGroups.filter((g): g is string => typeof g === 'string') : typeof rawGroups === 'string' ? [rawGroups] : [];
    const verified = claim('email_verified');
    return {
      issuer: idClaims.iss,
      subject: idClaims.sub,
      email: text('email').trim().toLowerCase(),
      emailVerified: verified === true || verified === 'true',
      name: text('name'),
      preferredUsername: text('preferred_username'),
      picture: text('picture'),
      groups,
      tokenExpiry: typeof idClaims.exp === 'number' ? new Date(idClaims.exp * 1000) : null,
    };
  }
}

/** A failed provider exchange as one of our refusals. */
function classify(err: unknown, what: string): HeadwayError {
  if (err instanceof HeadwayError) return err;
  if (err instanceof oidc.AuthorizationResponseError) {
    return identityError(IdentityErrors.PROVIDER_ERROR, `the provider answered ${err.error}${err.error_description ? `: ${err.error_description}` : ''}`, err);
  }
  if (err instanceof oidc.ResponseBodyError) {
    if (err.status >= 500) return identityError(IdentityErrors.PROVIDER_UNREACHABLE, `${what}: the provider failed (HTTP ${err.status})`, err);
    return identityError(IdentityErrors.TOKEN_REJECTED, `${what}: the provider refused: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}`, err);
  }
  if (isNetworkFailure(err)) return identityError(IdentityErrors.PROVIDER_UNREACHABLE, `${what}: the provider cannot be reached: ${describe(err)}`, err);
  return identityError(IdentityErrors.TOKEN_REJECTED, `${what}: ${describe(err)}`, err);
}

function isNetworkFailure(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return true;
    if (e instanceof TypeError && /fetch failed/i.test(e.message)) return true;
    if ('code' in e && typeof e.code === 'string' && /^(ECONNREFUSED|ECONNRESET|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|UND_ERR_)/.test(e.code)) return true;
  }
  return false;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
