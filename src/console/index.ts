/**
 * @module console
 * Owns serving the web admin console (the app in /console, built into dist/console by
 * `npm run build`) at /admin on the server's own listener: static files, the strict
 * Content-Security-Policy and other security headers, and the sign-in link endpoint
 * /admin/login. The app talks only to the documented admin API under /api/v1.
 * May import: web-session, config, log, util.
 * Must never: expose an endpoint the app needs beyond /api/v1 (extend the API instead).
 */
export { CONTENT_SECURITY_POLICY, DEFAULT_CONSOLE_DIR, contentSecurityPolicy, createConsoleHandler, type ConsoleHandler, type ConsoleHandlerDeps } from './console-handler.js';
