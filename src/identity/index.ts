/**
 * @module identity
 * Owns sign-in through an OpenID Connect provider (openid-client): discovery with backoff, the
 * code flow with state, nonce and PKCE, user provisioning keyed by issuer + subject (profile,
 * synced groups and role refreshed at every sign-in, linking by email only when allowed), the
 * refusal pages, device registration by sign-in, browser sign-in for the console (through a
 * hook), and re-authentication of a known user for other parts. Sign-ins in flight are kept in a
 * ledger the composition root gives (memory, or with HA the database).
 * May import: state, model, config, log, util. Must never: touch the store or the policy index.
 */
export { IdentityErrors } from './errors.js';
export { ProviderClient, type SignedInClaims } from './provider-client.js';
export {
  SignInService, SIGN_IN_TTL_MS,
  type BrowserSignIn, type BrowserSignInHook, type SignInOutcome, type SignInPurpose,
} from './sign-in.js';
export { MemorySignInLedger, type SignInLedger, type SignInRecordKind } from './sign-in-ledger.js';
export { createIdentityHttpHandler, type IdentityHttpHandler } from './http.js';
