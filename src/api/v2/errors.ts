// Errors of the Tailscale-compatible API. The body is Tailscale's `{"message": "..."}` (with
// `data` for policy test failures), which tailscale-client-go-v2 decodes into its APIError; the
// HW_ code travels in the `X-Headway-Error` header for people reading logs.
import { registerErrors } from '../../util/headway-error.js';

export const ApiV2Errors = registerErrors({
  notFound: {
    code: 'HW_APIV2_NOT_FOUND',
    status: 404,
    meaning: 'The tailnet, device, key, user or webhook named in the /api/v2 path does not exist (or is not visible to the credential).',
    fix: 'Check the id: devices are named by nodeId or numeric id, keys by id, the tailnet by name or `-`.',
  },
  unauthenticated: {
    code: 'HW_APIV2_UNAUTHENTICATED',
    status: 401,
    meaning: 'No credential, or an unknown, expired or revoked API key or OAuth access token.',
    fix: 'Send the API key as Basic auth user name or as a Bearer token, or get an access token from /api/v2/oauth/token.',
  },
  forbidden: {
    code: 'HW_APIV2_FORBIDDEN',
    status: 403,
    meaning: "The OAuth access token lacks the scope the endpoint needs, or names another tailnet.",
    fix: 'Create an OAuth client with the needed scope (e.g. devices:core, auth_keys, policy_file).',
  },
  badRequest: {
    code: 'HW_APIV2_BAD_REQUEST',
    status: 400,
    meaning: 'The /api/v2 request body or parameters are invalid.',
    fix: 'Read the message: it names the field.',
  },
  preconditionFailed: {
    code: 'HW_APIV2_PRECONDITION_FAILED',
    status: 412,
    meaning: 'The policy changed since it was read: If-Match does not match its ETag (or is ts-default while a policy is set).',
    fix: 'Read the policy again (GET .../acl), merge your change, and send it with the new ETag.',
  },
  notSupported: {
    code: 'HW_APIV2_NOT_SUPPORTED',
    status: 501,
    meaning: 'This Tailscale API feature has no counterpart in Headway yet.',
    fix: 'Use the /api/v1 admin API or the configuration file for it; docs/api-v2.md lists what is supported.',
  },
});
