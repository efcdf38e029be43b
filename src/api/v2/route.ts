// Tailscale API v2 routes: Tailscale's paths (`/tailnet/{tailnet}/devices`, `/device/{deviceId}`,
// ...) relative to /api/v2, each with the scope an OAuth token needs and zod schemas for the
// OpenAPI document. Unlike /api/v1, unknown query parameters are ignored (Tailscale's clients send
// `fields=all` and filters) and errors are Tailscale's `{"message": ...}`.
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../../config/index.js';
import type { Actor, ServerState, TailnetState } from '../../state/index.js';

export type V2Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** Tailscale's OAuth scopes; `X:read` is granted by `X`, and everything by `all`. */
export type V2Scope = 'devices:core' | 'devices:routes' | 'auth_keys' | 'oauth_keys' | 'policy_file' | 'dns' | 'users' | 'feature_settings' | 'webhooks';

export interface V2Principal {
  readonly actor: Actor;
  /** The tailnet `-` stands for; an API key (server-wide) means the default tailnet. */
  readonly tailnet: TailnetState | null;
  /** null = every scope (an API key). */
  readonly scopes: readonly string[] | null;
}

export interface V2Context {
  readonly state: ServerState;
  readonly config: Config;
  readonly logger: Logger;
  readonly now: () => number;
  readonly principal: V2Principal;
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body (or the raw text for routes with `rawBody`). */
  readonly body: unknown;
  /** The tailnet of the path's `{tailnet}`, or of the device/key named by the path. */
  tailnet(): TailnetState;
}

export interface V2Reply {
  status?: number;
  body?: unknown;
  /** Sent as-is with this content type instead of JSON. */
  text?: { contentType: string; value: string };
  headers?: Record<string, string>;
}

export interface V2Route {
  readonly operationId: string;
  readonly method: V2Method;
  readonly path: string;
  readonly summary: string;
  readonly scope: V2Scope | null;
  /** The body arrives as text (HuJSON policies); otherwise JSON, validated by `body`. */
  readonly rawBody?: boolean;
  readonly body?: z.ZodType;
  readonly response?: z.ZodType;
  readonly handle: (ctx: V2Context) => Promise<V2Reply | unknown>;
}

export interface CompiledV2Route extends V2Route {
  match(path: string): Record<string, string> | undefined;
}

export function v2Route(route: V2Route): CompiledV2Route {
  const names: string[] = [];
  const pattern = route.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([A-Za-z_]+)\}/g, (_m, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  const matcher = new RegExp(`^${pattern}$`);
  return {
    ...route,
    match(path) {
      const found = matcher.exec(path);
      if (found === null) return undefined;
      return Object.fromEntries(names.map((name, i) => [name, decodeURIComponent(found[i + 1]!)]));
    },
  };
}

/** Marks a handler's result as a full reply (status, headers, text) rather than a JSON body. */
export function reply(value: V2Reply): { [REPLY]: V2Reply } {
  return { [REPLY]: value };
}

export const REPLY = Symbol('v2 reply');

/** Tailscale's time text: RFC 3339 in UTC, seconds precision; Go's zero time for "none". */
export function tsTime(date: Date | null): string {
  return date === null ? '0001-01-01T00:00:00Z' : date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
