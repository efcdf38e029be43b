// The browser side of sign-in: the device login link (/register/<id>) sends the browser to the
// provider; /oidc/callback completes any sign-in; /oidc/console/login starts a browser sign-in
// for the web console; /oidc/start/<handle> opens a link made by another part (re-auth). The
// state of each sign-in is bound to the browser that started it by a cookie. Every refusal is
// a page that says why.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '../log/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { IdentityErrors } from './errors.js';
import type { SignInService } from './sign-in.js';

const COOKIE_PREFIX = 'hw_oidc_';
const REGISTRATION_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

export interface IdentityHttpHandler {
  /** True when the request was one of ours (and is answered). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

export function createIdentityHttpHandler(deps: { signIn: SignInService; serverUrl: string; logger: Logger }): IdentityHttpHandler {
  const { signIn, logger } = deps;
  const secure = deps.serverUrl.startsWith('https:');

  const redirectToProvider = (res: ServerResponse, started: { url: URL; state: string }) => {
    res.writeHead(302, {
      location: started.url.href,
      // One cookie per sign-in (named by a prefix of its state), so two logins in one browser do not collide.
      'set-cookie': `${COOKIE_PREFIX}${started.state.slice(0, 16)}=${started.state}; Path=/oidc/callback; Max-Age=600; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`,
      'cache-control': 'no-store',
    });
    res.end();
  };

  const refuse = (res: ServerResponse, err: unknown, what: string) => {
    if (!(err instanceof HeadwayError)) throw err;
    logger.warn({ code: err.code, err: err.message }, `${what} refused`);
    sendPage(res, err.status, 'Sign-in failed', `<p>${escapeHtml(err.message)}.</p><p><small>${escapeHtml(err.code)}</small></p><p>Nothing was registered. Close this window and start again from the device or the console.</p>`);
  };

  return {
    async handle(req, res) {
      if (req.method !== 'GET') return false;
      const url = new URL(req.url ?? '/', 'http://localhost');
      const path = url.pathname;
      if (path.startsWith('/register/')) {
        const id = path.slice('/register/'.length);
        if (!REGISTRATION_ID_RE.test(id)) return false;
        try {
          redirectToProvider(res, await signIn.startDevice(id));
        } catch (err) {
          refuse(res, err, 'device sign-in');
        }
        return true;
      }
      if (path.startsWith('/oidc/start/')) {
        try {
          redirectToProvider(res, await signIn.openHandle(path.slice('/oidc/start/'.length)));
        } catch (err) {
          refuse(res, err, 'sign-in');
        }
        return true;
      }
      if (path === '/oidc/console/login') {
        if (signIn.browserHook === null) {
          const err = new HeadwayError(IdentityErrors.NO_BROWSER_SESSIONS, 'this server has no web console sessions to sign in to; use an API key');
          sendPage(res, err.status, 'Not available', `<p>${escapeHtml(err.message)}.</p>`);
          return true;
        }
        try {
          redirectToProvider(res, await signIn.startBrowser(url.searchParams.get('next') ?? '/'));
        } catch (err) {
          refuse(res, err, 'console sign-in');
        }
        return true;
      }
      if (path === '/oidc/callback') {
        const state = url.searchParams.get('state') ?? '';
        const cookie = cookies(req)[`${COOKIE_PREFIX}${state.slice(0, 16)}`];
        const clear = `${COOKIE_PREFIX}${state.slice(0, 16)}=; Path=/oidc/callback; Max-Age=0; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
        res.setHeader('set-cookie', clear);
        res.setHeader('cache-control', 'no-store');
        let outcome;
        try {
          outcome = await signIn.complete(new URL(url.pathname + url.search, signIn.provider.redirectUri), cookie);
        } catch (err) {
          refuse(res, err, 'sign-in');
          return true;
        }
        const who = escapeHtml(outcome.user.email || outcome.user.name);
        switch (outcome.kind) {
          case 'device':
            sendPage(res, 200, 'Signed in', `<p>Signed in as <b>${who}</b>. The device <b>${escapeHtml(outcome.node.givenName)}</b> is registered${outcome.node.approved ? '' : ' and waits for an administrator\'s approval'}.</p><p>You can close this window.</p>`);
            break;
          case 'reauth':
            sendPage(res, 200, 'Signed in', `<p>Signed in again as <b>${who}</b>. You can close this window.</p>`);
            break;
          case 'browser': {
            const hook = signIn.browserHook;
            if (hook === null) {
              sendPage(res, 501, 'Not available', '<p>This server has no web console sessions to sign in to.</p>');
              break;
            }
            await hook({ tailnetId: outcome.user.tailnetId, userId: outcome.user.id, role: outcome.user.role }, req, res);
            if (!res.headersSent) {
              res.writeHead(303, { location: outcome.next });
              res.end();
            }
            break;
          }
        }
        return true;
      }
      return false;
    },
  };
}

function cookies(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function sendPage(res: ServerResponse, status: number, title: string, body: string): void {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Headway: ${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}</style>
</head><body><h1>${title}</h1>${body}</body></html>`);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
