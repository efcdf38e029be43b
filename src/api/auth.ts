// API keys over TCP. Every request reads the key afresh (a revoked key stops working at once,
// on every server sharing the database); the last-use time is written at most once a minute
// per key, so a busy script costs one read per call, not one write.
import type { Logger } from 'pino';
import type { ApiKey } from '../model/index.js';
import type { Actor, ServerState } from '../state/index.js';
import { ApiErrors, apiError } from './errors.js';

export const TOUCH_INTERVAL_MS = 60_000;

export const UNIX_SOCKET_ACTOR: Actor = Object.freeze({ name: 'unix-socket' });

export function apiKeyActor(key: ApiKey): Actor {
  return { name: `api-key:${key.prefix}` };
}

export class ApiKeyAuthenticator {
  readonly #state: ServerState;
  readonly #now: () => number;

  constructor(state: ServerState, now: () => number, _logger: Logger) {
    this.#state = state;
    this.#now = now;
  }

  /** The actor for an `Authorization` header; throws 401 (HW_API_UNAUTHENTICATED) otherwise. */
  async authenticate(authorization: string | undefined): Promise<Actor> {
    if (authorization === undefined || authorization.trim() === '') {
      throw apiError(ApiErrors.unauthenticated, 'missing API key: send Authorization: Bearer <api key>');
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match === null) throw apiError(ApiErrors.unauthenticated, 'malformed Authorization header: want Bearer <api key>');
    const secret = match[1]!;
    const check = await this.#state.authenticateApiKey(secret, this.#now(), TOUCH_INTERVAL_MS);
    if (!check.ok) {
      if (check.problem === 'unknown') throw apiError(ApiErrors.unauthenticated, 'invalid API key');
      if (check.problem === 'revoked') throw apiError(ApiErrors.unauthenticated, `API key hwk_${check.key.prefix} was revoked`);
      throw apiError(ApiErrors.unauthenticated, `API key hwk_${check.key.prefix} expired at ${check.key.expiresAt!.toISOString()}`);
    }
    const key = check.key;
    return apiKeyActor(key);
  }
}
