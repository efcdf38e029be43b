// Errors of the SCIM endpoint. SCIM clients get them as SCIM error responses (RFC 7644 §3.12).
import { registerErrors } from '../util/headway-error.js';

export const ScimErrors = registerErrors({
  UNAUTHORIZED: {
    code: 'HW_SCIM_UNAUTHORIZED', status: 401,
    meaning: 'A SCIM request came without the bearer token of scim.token (or with another one).',
    fix: 'Set the SCIM client\'s secret token to scim.token, sent as Authorization: Bearer <token>.',
  },
  INVALID_REQUEST: {
    code: 'HW_SCIM_INVALID_REQUEST', status: 400,
    meaning: 'A SCIM request body, filter or patch operation is malformed or unsupported; the detail names the field.',
    fix: 'Send SCIM 2.0 User and Group resources (RFC 7643) and PatchOp operations (RFC 7644).',
  },
  NOT_FOUND: {
    code: 'HW_SCIM_NOT_FOUND', status: 404,
    meaning: 'The SCIM user or group does not exist.',
    fix: 'List the resources (GET /scim/v2/Users or /Groups) to find the right id.',
  },
  CONFLICT: {
    code: 'HW_SCIM_CONFLICT', status: 409,
    meaning: 'A user with this email, or a group with this name, already exists.',
    fix: 'Let the SCIM client match the existing resource (it filters by userName or displayName first).',
  },
});
