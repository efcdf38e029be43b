// The HTTP side of browser sessions: the cookie's Secure flag, the sign-in hook the identity
// part calls after OIDC, and turning a sign-in link into a session cookie.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { HeadwayError } from '../util/headway-error.js';
import { sessionCookie, type BrowserIdentity, type WebSessions } from './web-sessions.js';

export const CONSOLE_PATH = '/admin';

/** Where a request came from, for the audit log. */
export function remoteAddress(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/** Secure cookies when the connection is TLS or the public URL is https (TLS ends at a proxy). */
export function isSecureRequest(req: IncomingMessage, serverUrl: string): boolean {
  return (req.socket as Partial<TLSSocket>).encrypted === true || serverUrl.startsWith('https:');
}

function redirect(res: ServerResponse, location: string, cookie?: string): void {
  res.statusCode = 303;
  res.setHeader('Location', location);
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Referrer-Policy', 'no-referrer');
  if (cookie !== undefined) res.setHeader('Set-Cookie', cookie);
  res.end();
}

export type BrowserSignInHook = (who: BrowserIdentity, req: IncomingMessage, res: ServerResponse) => Promise<void>;

/**
 * The hook the identity part (OIDC) calls once it has verified who signed in: starts a console
 * session, sets its cookie and sends the browser to the console.
 */
export function createBrowserSignInHook(sessions: WebSessions, serverUrl: string): BrowserSignInHook {
  return async function onBrowserSignIn(who, req, res) {
    const { token } = await sessions.startSession(who, remoteAddress(req), 'oidc');
    redirect(res, `${CONSOLE_PATH}/`, sessionCookie(token, isSecureRequest(req, serverUrl), sessions.maxAgeMs));
  };
}

/**
 * GET /admin/login?token=...: a sign-in link. A good link becomes a session cookie and a
 * redirect to the console; a bad one a redirect to the sign-in page with the reason.
 */
export async function redeemLoginLinkRequest(sessions: WebSessions, serverUrl: string, req: IncomingMessage, res: ServerResponse, linkToken: string): Promise<void> {
  try {
    const { token } = await sessions.redeemLoginLink(linkToken, remoteAddress(req));
    redirect(res, `${CONSOLE_PATH}/`, sessionCookie(token, isSecureRequest(req, serverUrl), sessions.maxAgeMs));
  } catch (err) {
    if (!(err instanceof HeadwayError)) throw err;
    redirect(res, `${CONSOLE_PATH}/#/signin?error=${encodeURIComponent(err.message)}`);
  }
}
