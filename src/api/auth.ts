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
  readonly #logger: Logger;

  constructor(state: ServerState, now: () => number, logger: Logger) {
    this.#state = state;
    this.#now = now;
    this.#logger = logger;
  }

  /** The actor for an `Authorization` header; throws 401 (HW_API_UNAUTHENTICATED) otherwise. */
  async authenticate(authorization: string | undefined): Promise<Actor> {
    if (authorization === undefined || authorization.trim() === '') {
      throw apiError(ApiErrors.unauthenticated, 'missing API key: send Authorization: Bearer <api key>');
    }
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match === null) throw apiError(ApiErrors.unauthenticated, 'malformed Authorization header: want Bearer <api key>');
    const secret = match[1]!;
    const key = await this.#state.store.read.apiKeys.findBySecret(secret);
    if (key === undefined) throw apiError(ApiErrors.unauthenticated, 'invalid API key');
    const now = this.#now();
    if (key.revokedAt !== null) throw apiError(ApiErrors.unauthenticated, `API key hwk_${key.prefix} was revoked`);
    if (key.expiresAt !== null && key.expiresAt.getTime() <= now) {
      throw apiError(ApiErrors.unauthenticated, `API key hwk_${key.prefix} expired at ${key.expiresAt.toISOString()}`);
    }
    if (key.lastUsedAt === null || now - key.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS) {
      try {
        await this.#state.store.read.apiKeys.touch(key.id, new Date(now));
      } catch (err) {
        // Losing a last-use time is no reason to refuse an authenticated request.
        this.#logger.warn({ err, api_key: key.prefix }, 'recording API key use failed');
      }
    }
    return apiKeyActor(key);
  }
}
