// Serves the built console (dist/console, made by `npm run build`) at /admin on the server's
// own listener, with a strict Content-Security-Policy: only this origin's scripts, styles and
// API, no inline script, no framing. Sign-in links (/admin/login?token=...) become a session
// cookie here. Nothing is fetched from elsewhere at run time.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { CONSOLE_PATH, redeemLoginLinkRequest, type WebSessions } from '../web-session/index.js';

/**
 * The policy of every console response. The page's own style elements (CodeMirror mounts its
 * theme as a <style>) carry a fresh per-response nonce, handed to the app in a meta tag; no
 * inline script is ever allowed.
 */
export function contentSecurityPolicy(styleNonce?: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    styleNonce === undefined ? "style-src 'self'" : `style-src 'self' 'nonce-${styleNonce}'`,
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  ].join('; ');
}

export const CONTENT_SECURITY_POLICY = contentSecurityPolicy();

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** dist/src/console/ -> dist/console/, where vite writes the app. */
export const DEFAULT_CONSOLE_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'console');

export interface ConsoleHandlerDeps {
  sessions: WebSessions;
  serverUrl: string;
  logger: Logger;
  /** Where the built app is; default dist/console. */
  dir?: string;
}

export interface ConsoleHandler {
  /** Handles GET/HEAD under /admin and returns true; false for anything else. */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}

export function createConsoleHandler(deps: ConsoleHandlerDeps): ConsoleHandler {
  const root = deps.dir ?? DEFAULT_CONSOLE_DIR;
  const cache = new Map<string, Buffer>();

  async function file(relative: string): Promise<Buffer | undefined> {
    const path = normalize(join(root, relative));
    if (path !== root && !path.startsWith(root + sep)) return undefined;
    const hit = cache.get(path);
    if (hit !== undefined) return hit;
    try {
      const data = await readFile(path);
      cache.set(path, data);
      return data;
    } catch {
      return undefined;
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    if (path !== CONSOLE_PATH && !path.startsWith(`${CONSOLE_PATH}/`)) return false;
    securityHeaders(res);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' });
      res.end('method not allowed\n');
      return true;
    }
    if (path === CONSOLE_PATH) {
      res.writeHead(308, { Location: `${CONSOLE_PATH}/` });
      res.end();
      return true;
    }
    if (path === `${CONSOLE_PATH}/login`) {
      await redeemLoginLinkRequest(deps.sessions, deps.serverUrl, req, res, url.searchParams.get('token') ?? '');
      return true;
    }
    const relative = decodeURIComponent(path.slice(CONSOLE_PATH.length + 1));
    const isAsset = relative.startsWith('assets/');
    const data = relative !== '' && extname(relative) !== '' ? await file(relative) : await file('index.html');
    if (data === undefined) {
      const missingApp = relative === '' || extname(relative) === '';
      res.writeHead(missingApp ? 503 : 404, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(missingApp ? 'the web console is not built: run `npm run build`\n' : 'not found\n');
      if (missingApp) deps.logger.warn({ dir: root }, 'web console requested but not built');
      return true;
    }
    const page = relative === '' || extname(relative) === '' || relative === 'index.html';
    const type = TYPES[extname(page ? 'index.html' : relative)] ?? 'application/octet-stream';
    let body = data;
    if (page) {
      const nonce = randomBytes(18).toString('base64');
      res.setHeader('Content-Security-Policy', contentSecurityPolicy(nonce));
      body = Buffer.from(data.toString('utf8').replace('<head>', `<head>\n    <meta name="csp-nonce" content="${nonce}" />`));
    }
    res.writeHead(200, {
      'Content-Type': type,
      'Content-Length': body.length,
      // Vite names assets by content hash: they never change. index.html must always be fresh.
      'Cache-Control': isAsset ? 'public, max-age=31536000, immutable' : 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }

  return { handle };
}
