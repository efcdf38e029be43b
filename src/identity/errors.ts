// Errors of sign-in through an OpenID Connect provider. Each refusal has its own code so the
// log and the page the browser gets say exactly why nobody was signed in.
import { HeadwayError, registerErrors } from '../util/headway-error.js';

export const IdentityErrors = registerErrors({
  PROVIDER_UNREACHABLE: {
    code: 'HW_IDENTITY_PROVIDER_UNREACHABLE', status: 503,
    meaning: 'The OpenID Connect provider could not be reached (discovery, token or userinfo request failed).',
    fix: 'Check oidc.issuer and that Headway can reach the provider; discovery is retried with backoff, and pre-auth keys keep working meanwhile.',
  },
  STATE_MISMATCH: {
    code: 'HW_IDENTITY_STATE_MISMATCH', status: 400,
    meaning: 'The sign-in callback carried a state this browser did not start (or one already used or expired).',
    fix: 'Start the sign-in again from the login link; use the same browser for the whole sign-in.',
  },
  TOKEN_REJECTED: {
    code: 'HW_IDENTITY_TOKEN_REJECTED', status: 400,
    meaning: 'The provider\'s answer failed validation: the code was refused (expired or already used), the ID token\'s nonce, signature (unknown signing key), issuer, audience or lifetime was wrong.',
    fix: 'Start the sign-in again; if it keeps failing, check the provider\'s signing keys and clock, and oidc.client_id.',
  },
  PROVIDER_ERROR: {
    code: 'HW_IDENTITY_PROVIDER_ERROR', status: 400,
    meaning: 'The provider sent the browser back with an error (the user cancelled, or the client is misconfigured).',
    fix: 'Read the provider\'s error in the page; check the redirect URI registered at the provider (<server_url>/oidc/callback).',
  },
  EMAIL_UNVERIFIED: {
    code: 'HW_IDENTITY_EMAIL_UNVERIFIED', status: 403,
    meaning: 'The provider does not say the user\'s email is verified, and oidc.email_verified_required is true.',
    fix: 'Verify the email at the provider, or (if the provider never sends email_verified) set oidc.email_verified_required: false.',
  },
  DOMAIN_NOT_ALLOWED: {
    code: 'HW_IDENTITY_DOMAIN_NOT_ALLOWED', status: 403,
    meaning: 'The user\'s email domain is not in oidc.allowed_domains.',
    fix: 'Sign in with an account of an allowed domain, or add the domain to oidc.allowed_domains.',
  },
  USER_NOT_ALLOWED: {
    code: 'HW_IDENTITY_USER_NOT_ALLOWED', status: 403,
    meaning: 'The user\'s email is not in oidc.allowed_users.',
    fix: 'Add the email to oidc.allowed_users.',
  },
  GROUP_NOT_ALLOWED: {
    code: 'HW_IDENTITY_GROUP_NOT_ALLOWED', status: 403,
    meaning: 'The user is in none of oidc.allowed_groups (according to the groups claim).',
    fix: 'Add the user to an allowed group at the provider, or check oidc.groups_claim and that the scope asks for groups.',
  },
  LINK_REFUSED: {
    code: 'HW_IDENTITY_LINK_REFUSED', status: 409,
    meaning: 'A user with the same email exists without this sign-in identity, and linking by email is not allowed (oidc.link_by_email is false or the email is not verified).',
    fix: 'Set oidc.link_by_email: true (the email must be verified), or rename or delete the existing user.',
  },
  USER_INACTIVE: {
    code: 'HW_IDENTITY_USER_INACTIVE', status: 403,
    meaning: 'The user was deactivated (by SCIM) and may not sign in.',
    fix: 'Reactivate the user at the identity provider.',
  },
  LOGIN_EXPIRED: {
    code: 'HW_IDENTITY_LOGIN_EXPIRED', status: 404,
    meaning: 'The device login this sign-in was for is no longer waiting (it expired or was completed).',
    fix: 'Run tailscale up again on the device and open the new link.',
  },
  REAUTH_MISMATCH: {
    code: 'HW_IDENTITY_REAUTH_MISMATCH', status: 403,
    meaning: 'A re-authentication was completed by a different identity than the user who had to re-authenticate.',
    fix: 'Sign in at the provider as the user the check was for.',
  },
  NO_BROWSER_SESSIONS: {
    code: 'HW_IDENTITY_NO_BROWSER_SESSIONS', status: 501,
    meaning: 'Browser sign-in for the web console was asked for, but this server has no console sessions to give.',
    fix: 'Use API keys, or run a build with the web console.',
  },
  NOT_CONFIGURED: {
    code: 'HW_IDENTITY_NOT_CONFIGURED', status: 404,
    meaning: 'An OpenID Connect endpoint was requested on a server without oidc.issuer.',
    fix: 'Configure the oidc section (docs/oidc.md).',
  },
});

export type IdentityErrorSpec = (typeof IdentityErrors)[keyof typeof IdentityErrors];

export function identityError(spec: IdentityErrorSpec, message: string, cause?: unknown): HeadwayError {
  return new HeadwayError(spec, message, cause === undefined ? undefined : { cause });
}
