// The CLI's only way to the server: the admin API, over the unix socket named in the config
// (no key; the socket's permissions decide who may administer) or over HTTP(S) with an API key.
// Nothing here knows what a user or a node is: it sends a request and hands back JSON.
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { HeadwayError } from '../util/headway-error.js';
import { CliErrors, ServerError } from './errors.js';

export type ClientTarget =
  | { readonly kind: 'unix'; readonly socketPath: string }
  | { readonly kind: 'tcp'; readonly url: URL; readonly apiKey: string };

export interface CallOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** '/api/v2' for Tailscale's API (webhooks); default /api/v1. */
  apiPrefix?: string;
}

const API_PREFIX = '/api/v1';
const TIMEOUT_MS = 60_000;

/** `on the unix socket /x/headway.sock` or `at https://vpn.example.com`. */
export function describeTarget(target: ClientTarget): string {
  return target.kind === 'unix' ? `on the unix socket ${target.socketPath}` : `at ${target.url.origin}${target.url.pathname.replace(/\/$/, '')}`;
}

export class AdminClient {
  readonly target: ClientTarget;

  constructor(target: ClientTarget) {
    this.target = target;
  }

  /** Sends one request; resolves with the parsed JSON body, rejects with ServerError or HeadwayError. */
  async call<T>(method: string, path: string, options: CallOptions = {}): Promise<T> {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) search.set(name, value);
    const query = search.size > 0 ? `?${search.toString()}` : '';
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': 'headway-cli' };
    let payload: string | undefined;
    if (options.body !== undefined) {
      payload = JSON.stringify(options.body);
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(payload));
    }
    let requestOptions: RequestOptions;
    let send = httpRequest;
    if (this.target.kind === 'unix') {
      requestOptions = { socketPath: this.target.socketPath, path: `${options.apiPrefix ?? API_PREFIX}${path}${query}` };
    } else {
      const { url, apiKey } = this.target;
      headers['authorization'] = `Bearer ${apiKey}`;
      const base = url.pathname.replace(/\/+$/, '');
      requestOptions = { protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, path: `${base}${options.apiPrefix ?? API_PREFIX}${path}${query}` };
      if (url.protocol === 'https:') send = httpsRequest as typeof httpRequest;
    }
    const response = await new Promise<{ res: IncomingMessage; text: string }>((resolve, reject) => {
      const req = send({ ...requestOptions, method, headers, timeout: TIMEOUT_MS }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ res, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', (err) => reject(this.#unreachable(err)));
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error('no answer within 60 s'), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(this.#unreachable(err)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
    return this.#decode<T>(response.res, response.text);
  }

  #decode<T>(res: IncomingMessage, text: string): T {
    const status = res.statusCode ?? 0;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (status >= 200 && status < 300 && json !== undefined) return json as T;
    if (status >= 200 && status < 300 && text === '') return {} as T;
    // /api/v2 answers Tailscale's {"message"}, with our code in a header.
    const v2Message = typeof json === 'object' && json !== null ? (json as { message?: unknown }).message : undefined;
    if (status >= 400 && typeof v2Message === 'string') {
      throw new ServerError(status, String(res.headers['x-headway-error'] ?? `HTTP_${status}`), v2Message, undefined);
    }
    const error = typeof json === 'object' && json !== null ? (json as { error?: unknown }).error : undefined;
    if (typeof error === 'object' && error !== null && typeof (error as { code?: unknown }).code === 'string') {
      const e = error as { code: string; message?: unknown; field?: unknown };
      throw new ServerError(status, e.code, String(e.message ?? ''), typeof e.field === 'string' ? e.field : undefined);
    }
    const type = res.headers['content-type'] ?? 'no content type';
    throw new HeadwayError(CliErrors.badResponse, `the server ${describeTarget(this.target)} answered HTTP ${status} (${type}), not the Headway admin API`);
  }

  #unreachable(err: Error): HeadwayError {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const where = describeTarget(this.target);
    const unix = this.target.kind === 'unix';
    const reasons: Record<string, string> = {
      ENOENT: 'no such socket file; is `headway serve` running with this config?',
      ECONNREFUSED: unix ? 'connection refused (the socket file exists but no server listens on it; is `headway serve` running?)' : 'connection refused (is the server running and the URL right?)',
      EACCES: 'permission denied (run as the server user, or as a member of the socket\'s group)',
      ENOTFOUND: 'unknown host',
      ETIMEDOUT: 'no answer within 60 s',
      ECONNRESET: 'the connection was reset',
    };
    const reason = reasons[code] ?? err.message;
    const hint = unix ? ' (use --config or HEADWAY_CONFIG to name the server\'s config, or --server and --api-key)' : '';
    return new HeadwayError(CliErrors.unreachable, `cannot reach the Headway server ${where}: ${reason}${hint}`, { cause: err });
  }
}
