/**
 * @module web-session
 * Owns browser sessions of the web console: sign-in links (`headway admin login-link`), the
 * session table (migration 0004, tokens stored hashed), the HttpOnly/SameSite=Lax cookie (Secure
 * on https), CSRF tokens, idle timeout and maximum age, sign-out, and `onBrowserSignIn`, the hook
 * the identity part calls after an OIDC sign-in. Every sign-in and sign-out is audited.
 * May import: state, store (types), model, util.
 * Must never: store or log a session token or link token, or decide what a session may do
 * beyond admin/member (the API enforces that).
 */
export {
  CSRF_HEADER, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_LINK_TTL_MS, DEFAULT_MAX_AGE_MS, SESSION_COOKIE, WebSessions,
  clearedSessionCookie, cookieValue, csrfMatches, csrfTokenFor, isAdminRole, sessionCookie,
  type AuthenticatedSession, type BrowserIdentity, type WebSessionOptions,
} from './web-sessions.js';
export {
  CONSOLE_PATH, createBrowserSignInHook, isSecureRequest, redeemLoginLinkRequest, remoteAddress, type BrowserSignInHook,
} from './http.js';
export { WebSessionErrors } from './errors.js';
