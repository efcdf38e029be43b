/**
 * @module api
 * Owns the admin REST API under /api/v1, and Tailscale's API v2 under /api/v2 (api/v2/, on the
 * same listener, for the Terraform provider and tailscale-client-go-v2): one file per resource, each route's request and
 * response schemas declared once (validation, the OpenAPI document and docs/api.md come from
 * them), API-key authentication over TCP, request ids and the access log line, and the JSON
 * shapes the CLI prints. Admin changes go through state commands, which write the audit entry
 * in the change's own transaction.
 * May import: state, policy, model, config, log, util, key, tailcfg.
 * Must never: open listeners (the server mounts the handler), touch the store except through
 * ServerState, or put secrets in logs or error messages. This file is the part's only door.
 */
export {
  API_PREFIX, API_VERSION, apiRoutes, createApiHandler, errorResponse,
  type ApiHandler, type ApiHandlerDeps, type ApiTransport,
} from './handler.js';
export { buildApiV2OpenApiDocument, buildOpenApiDocument, type JsonSchema } from './openapi.js';
export { ApiV2Errors, API_V2_PREFIX } from './v2/index.js';
export { renderApiReference } from './reference.js';
export { ApiErrors, ApiValidationError } from './errors.js';
export { MAX_BODY_BYTES } from './body.js';
export { TOUCH_INTERVAL_MS } from './auth.js';
export { DEFAULT_API_KEY_EXPIRATION } from './api-keys.js';
export { DEFAULT_PRE_AUTH_KEY_EXPIRATION } from './pre-auth-keys.js';
export type { Route, RouteGroup, HttpMethod } from './route.js';
export {
  DURATION_UNITS, durationProblem, parsePositiveDuration,
  type ApiKeyJson, type AuditEntryJson, type ErrorJson, type NewApiKeyJson, type NewPreAuthKeyJson, type NodeJson,
  type NodeRoutesJson, type PreAuthKeyJson, type TailnetJson, type TailnetSettingsJson, type UserJson,
} from './schemas.js';
export type { PolicyCheckJson, PolicyExplainJson, PolicyJson } from './policy.js';
export type { OwnerTransferJson } from './tailnets.js';
