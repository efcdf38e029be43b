// Tailscale API v2 (`/api/v2`), mounted by the admin API handler on the same listener. The route
// table, the OAuth client hooks and the OpenAPI document at /api/v2/openapi.json.
import { z } from 'zod';
import { buildApiV2OpenApiDocument } from '../openapi.js';
import { aclRoutes } from './acl.js';
import { deviceRoutes } from './devices.js';
import { dnsSettingsRoutes } from './dns-settings.js';
import { createApiV2Handler, type ApiV2Deps, type ApiV2Handler, type TokenResolver } from './handler.js';
import { keyRoutes, type ClientKeyHooks } from './keys.js';
import { oauthClientHooks, oauthRoutes, oauthTokenResolver } from './oauth.js';
import { webhookRoutes } from './webhooks.js';
import { v2Route, type CompiledV2Route } from './route.js';

export { ApiV2Errors } from './errors.js';
export { API_V2_PREFIX, type ApiV2Handler } from './handler.js';

export type { ClientKeyHooks };

export interface ApiV2Extensions {
  clients: ClientKeyHooks;
  resolveToken: TokenResolver;
  routes: readonly CompiledV2Route[];
  publicRoutes: readonly string[];
}

export function apiV2Routes(extensions: Partial<ApiV2Extensions> = {}, version = '1.0.0'): CompiledV2Route[] {
  const routes: CompiledV2Route[] = [];
  routes.push(
    v2Route({
      operationId: 'v2GetOpenApi', method: 'GET', path: '/openapi.json', summary: 'This OpenAPI document', scope: null,
      response: z.record(z.string(), z.unknown()),
      async handle() {
        return buildApiV2OpenApiDocument(routes, { version });
      },
    }),
    ...deviceRoutes,
    ...keyRoutes(extensions.clients ?? oauthClientHooks),
    ...oauthRoutes,
    ...webhookRoutes,
    ...aclRoutes,
    ...dnsSettingsRoutes,
    ...(extensions.routes ?? []),
  );
  return routes;
}

export function createApiV2(deps: ApiV2Deps, extensions: Partial<ApiV2Extensions> = {}): ApiV2Handler {
  const routes = apiV2Routes(extensions);
  return createApiV2Handler(deps, routes, extensions.resolveToken ?? oauthTokenResolver(deps.state), new Set(['v2GetOpenApi', 'v2OAuthToken', ...(extensions.publicRoutes ?? [])]));
}
