// Test support (never imported by production code): a real OpenID Connect provider
// (oidc-provider, certified) on a loopback port, with accounts and groups the test defines, and
// a browser with a cookie jar that follows a sign-in link through the provider's login and
// consent pages back to Headway.
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface TestAccount {
  email: string;
  email_verified?: boolean;
  name?: string;
  picture?: string;
  groups?: string[];
}

export interface TestProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Accounts by login name; edit them between sign-ins (e.g. remove a group). */
  readonly accounts: Map<string, TestAccount>;
  /** Serve this JWKS instead of the signing key's (an unknown signing key); null = the real one. */
  publishJwks(keys: JsonWebKey[] | null): void;
  /** Stops answering (the provider is down) until start(). */
  stop(): Promise<void>;
  /** Listens again on the same port, with a fresh provider and the same keys. */
  start(): Promise<void>;
}

function signingKey(kid: string): JsonWebKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' };
}

export function publicJwk(jwk: JsonWebKey): JsonWebKey {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub;
}

/** Starts a provider whose client redirects to `redirectUri` (Headway's /oidc/callback). */
export async function startTestProvider(options: { redirectUris: () => string[]; accounts?: Record<string, TestAccount> }): Promise<TestProvider & { readonly signingKey: JsonWebKey; newKey(kid: string): JsonWebKey }> {
  const accounts = new Map(Object.entries(options.accounts ?? {}));
  const clientId = 'headway';
  const clientSecret = 'a-client-secret-for-tests-only-0123456789';
  let key = signingKey('k1');
  let published: JsonWebKey[] | null = null;
  let server: Server | null = null;
  let port = 0;
  let issuer = '';

  const build = () => {
    const provider = new Provider(issuer, {
      clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: options.redirectUris(), grant_types: ['authorization_code'], response_types: ['code'] }],
      jwks: { keys: [key as never] },
      cookies: { keys: ['test-cookie-key-0123456789'] },
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'picture', 'preferred_username'], groups: ['groups'] },
      features: { devInteractions: { enabled: true } },
      pkce: { required: () => false },
      async findAccount(_ctx, id) {
        const account = accounts.get(id);
        if (account === undefined) return undefined;
        return {
          accountId: id,
          async claims() {
            const current = accounts.get(id) ?? account;
            return {
              sub: id,
              email: current.email,
              email_verified: current.email_verified ?? true,
              name: current.name ?? id,
              preferred_username: id,
              ...(current.picture !== undefined ? { picture: current.picture } : {}),
              groups: current.groups ?? [],
            };
          },
        };
      },
    });
    // A provider whose JWKS endpoint does not list its signing key.
    provider.use(async (ctx, next) => {
      if (published !== null && ctx.path === '/jwks') {
        ctx.type = 'application/jwk-set+json';
        ctx.body = { keys: published };
        return;
      }
      await next();
    });
    return provider;
  };

  const listen = async () => {
    server = createServer();
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    issuer = `http://127.0.0.1:${port}`;
    const provider = build();
    server.on('request', provider.callback());
  };
  await listen();

  return {
    get issuer() { return issuer; },
    clientId,
    clientSecret,
    accounts,
    get signingKey() { return key; },
    newKey(kid) { key = signingKey(kid); return key; },
    publishJwks(keys) { published = keys; },
    async stop() {
      const s = server;
      server = null;
      if (s === null) return;
      await new Promise<void>((resolve) => { s.close(() => resolve()); s.closeAllConnections(); });
    },
    async start() {
      if (server === null) await listen();
    },
  };
}

export interface BrowserPage {
  readonly status: number;
  readonly url: string;
  readonly body: string;
}

/**
 * A browser: a cookie jar per host (ports share cookies, as in browsers) and manual redirects.
 * `signIn` follows a link through the provider's login page (logging in as `login`) and consent
 * page, and returns the page Headway answers at the end.
 */
export class TestBrowser {
  readonly #jar = new Map<string, Map<string, string>>();

  async get(url: string): Promise<{ status: number; location: string | null; body: string; url: string }> {
    return this.#request(url, { method: 'GET' });
  }

  async #request(url: string, init: { method: string; body?: string }): Promise<{ status: number; location: string | null; body: string; url: string }> {
    const target = new URL(url);
    const cookies = this.#jar.get(target.hostname);
    const headers: Record<string, string> = {};
    if (cookies !== undefined && cookies.size > 0) headers['cookie'] = [...cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    if (init.body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(target, { method: init.method, headers, redirect: 'manual', ...(init.body !== undefined ? { body: init.body } : {}) });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      let jar = this.#jar.get(target.hostname);
      if (jar === undefined) this.#jar.set(target.hostname, (jar = new Map()));
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a) || /^\s*expires=thu, 01 jan 1970/i.test(a));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
    const location = res.headers.get('location');
    return { status: res.status, location: location === null ? null : new URL(location, target).href, body: await res.text(), url: target.href };
  }

  /**
   * Follows `startUrl` until a page that is neither a redirect nor one of the provider's forms.
   * `tamper` may rewrite any URL before it is followed (an attacker in the middle).
   */
  async signIn(startUrl: string, login: string, options: { tamper?: (url: URL) => URL | null } = {}): Promise<BrowserPage> {
    let next: { url: string; method: string; body?: string } | null = { url: startUrl, method: 'GET' };
    for (let step = 0; step < 20 && next !== null; step++) {
      let url: URL = new URL(next.url);
      if (options.tamper !== undefined) url = options.tamper(url) ?? url;
      const res = await this.#request(url.href, { method: next.method, ...(next.body !== undefined ? { body: next.body } : {}) });
      if (res.status >= 300 && res.status < 400 && res.location !== null) {
        next = { url: res.location, method: 'GET' };
        continue;
      }
      const form = /<form[^>]*action="([^"]+)"[^>]*method="post"/i.exec(res.body);
      if (form === null || !url.pathname.startsWith('/interaction/')) return { status: res.status, url: res.url, body: res.body };
      const fields = new URLSearchParams();
      for (const input of res.body.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/gi)) fields.set(input[1]!, input[2]!);
      if (fields.get('prompt') === 'login') {
        fields.set('login', login);
        fields.set('password', 'any');
      }
      next = { url: new URL(form[1]!.replace(/&amp;/g, '&'), url).href, method: 'POST', body: fields.toString() };
    }
    throw new Error(`sign-in did not finish: stopped at ${next?.url ?? '?'}`);
  }
}
