// Errors the admin API raises itself. Errors of the parts below (state, store, policy) pass
// through with their own code and status; these cover what only the HTTP boundary can get wrong.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const ApiErrors = registerErrors({
  invalidRequest: {
    code: 'HW_API_INVALID_REQUEST',
    status: 400,
    meaning: 'A path parameter, query parameter or body field is missing, of the wrong type or malformed; the message names it.',
    fix: 'Correct the named field; GET /api/v1/openapi.json describes every request.',
  },
  ownerDomain: {
    code: 'HW_API_OWNER_DOMAIN',
    status: 409,
    meaning: 'Ownership cannot move to that user: the policy in force names a domain (`localpart:*@domain`, `user:*@domain`) that would no longer be the tailnet\'s, since the owner\'s email domain is the domain a policy may name.',
    fix: 'Transfer to a user of the same domain, or first change the policy so it no longer names the old domain.',
  },
  invalidJson: {
    code: 'HW_API_INVALID_JSON',
    status: 400,
    meaning: 'The request body is not valid JSON.',
    fix: 'Send a JSON document with Content-Type: application/json.',
  },
  unsupportedMediaType: {
    code: 'HW_API_UNSUPPORTED_MEDIA_TYPE',
    status: 415,
    meaning: 'The request has a body whose Content-Type is not application/json.',
    fix: 'Send the body as JSON with Content-Type: application/json.',
  },
  bodyTooLarge: {
    code: 'HW_API_BODY_TOO_LARGE',
    status: 413,
    meaning: 'The request body is larger than the admin API accepts (1 MiB).',
    fix: 'Send a smaller body; a policy larger than 1 MiB is almost certainly a mistake.',
  },
  bodyTimeout: {
    code: 'HW_API_BODY_TIMEOUT',
    status: 408,
    meaning: 'The request body did not arrive completely within 30 seconds.',
    fix: 'Send the whole body at once; check the network between the client and the server.',
  },
  rateLimited: {
    code: 'HW_API_RATE_LIMITED',
    status: 429,
    meaning: 'The API key (or, without a key, the source address) sent more requests than limits.api_requests_per_minute_per_key allows; Retry-After says when to try again.',
    fix: 'Slow down or batch requests, raise limits.api_requests_per_minute_per_key, or use the unix socket (not limited).',
  },
  unauthenticated: {
    code: 'HW_API_UNAUTHENTICATED',
    status: 401,
    meaning: 'The request over TCP has no API key, or the key is unknown, expired or revoked.',
    fix: 'Send `Authorization: Bearer <api key>` with a valid key (create one with `headway apikeys create`), or use the unix socket.',
  },
  nodeNotVisible: {
    code: 'HW_API_NODE_NOT_VISIBLE',
    status: 404,
    meaning: 'A console member asked for a node that is not one of their own (to them it does not exist).',
    fix: 'Members see only their own untagged devices; ask an admin.',
  },
  routeNotFound: {
    code: 'HW_API_ROUTE_NOT_FOUND',
    status: 404,
    meaning: 'No admin API endpoint has that path.',
    fix: 'Check the path against GET /api/v1/openapi.json or docs/api.md.',
  },
  methodNotAllowed: {
    code: 'HW_API_METHOD_NOT_ALLOWED',
    status: 405,
    meaning: 'The endpoint exists but does not accept that HTTP method; the Allow header lists the methods it accepts.',
    fix: 'Use one of the methods in the Allow header.',
  },
  tagNotOwned: {
    code: 'HW_API_TAG_NOT_DEFINED',
    status: 400,
    meaning: "A tag an admin applies is not defined in the tailnet policy's tagOwners.",
    fix: 'Add the tag to tagOwners in the policy first, or use a tag that is defined there.',
  },
  policyUnusable: {
    code: 'HW_API_POLICY_UNUSABLE',
    status: 409,
    meaning: "The tailnet's current policy does not parse, so a request that must check against it (tags) cannot be decided.",
    fix: 'Fix the policy (policy file, or `headway policy set`) first.',
  },
  policyFileMode: {
    code: 'HW_API_POLICY_FILE_MODE',
    status: 409,
    meaning: 'The policy is managed by a file (policy.mode: file), so it cannot be changed through the API.',
    fix: 'Edit the policy file and reload the server, or switch policy.mode to database.',
  },
  internal: {
    code: 'HW_API_INTERNAL',
    status: 500,
    meaning: 'The server failed while handling the request; the details are in the server log under the request id.',
    fix: 'Look up the request id in the server log; report it if it is a bug.',
  },
});

export type ApiErrorSpec = (typeof ApiErrors)[keyof typeof ApiErrors];

export function apiError(spec: ApiErrorSpec, message: string, cause?: unknown): HeadwayError {
  return new HeadwayError(spec, message, cause === undefined ? undefined : { cause });
}

/** A validation error that names the offending fields (`body.expiration`, `query.limit`). */
export class ApiValidationError extends HeadwayError {
  override name = 'ApiValidationError';
  /** The first offending field: `params.node`, `query.limit`, `body.tags[1]`, or `body`. */
  readonly field: string;

  constructor(problems: ReadonlyArray<{ field: string; problem: string }>) {
    super(ApiErrors.invalidRequest, problems.map((p) => `${p.field}: ${p.problem}`).join('; '));
    this.field = problems[0]?.field ?? 'request';
  }
}
