/**
 * @module scim
 * Owns the SCIM 2.0 endpoint (/scim/v2/Users, /scim/v2/Groups) that identity providers (Okta,
 * Entra ID) use to push users and group memberships: bearer-token authentication, SCIM
 * resources, filters and PatchOp. Writes go through the state part.
 * May import: state, model, config, log, util. Must never: touch the store directly.
 */
export { createScimHandler, type ScimHandler } from './handler.js';
export { ScimErrors } from './errors.js';
