// What a request handler over the Noise connection receives (our own narrow request and
// response types, served by src/control/h2), the default answers for paths nobody handles, and
// the bounded body reader every handler uses.
import type { ChallengePublicKey, MachinePublicKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ControlErrors } from './errors.js';
import type { ResponseHeaders } from './h2/hpack-encoder.js';

/** An HTTP/2 request as handlers see it. */
export interface NoiseRequest {
  readonly method: string;
  /** The :path pseudo-header, query included. */
  readonly url: string;
  /**
   * Lowercase names, pseudo-headers included (`:authority`, `:scheme`, ...); a repeated field's
   * values joined with ", " (cookie: "; ").
   */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The whole body, once it has all arrived. Rejects with HW_CONTROL_BODY_TOO_LARGE past
   * `maxBytes` (or the connection's limit), and when the client cancels the stream.
   */
  readBody(maxBytes: number): Promise<Buffer>;
}

/** The response of the same stream. */
export interface NoiseResponse {
  /** writeHead was called (or a write or end implied 200). */
  readonly headersSent: boolean;
  /** end() was called. */
  readonly writableEnded: boolean;
  /** The stream is over: the response completed, or it was reset, or the connection went away. */
  readonly closed: boolean;
  /** Closed before the response completed (cancelled, reset, connection lost). */
  readonly destroyed: boolean;
  writeHead(status: number, headers?: ResponseHeaders): this;
  /** Queues body bytes; false when they wait for flow control or the transport ('drain' follows). */
  write(chunk: Buffer | string): boolean;
  end(chunk?: Buffer | string): void;
  /** Ends the stream with RST_STREAM(code), an RFC 9113 §7 error code. */
  reset(code: number): void;
  /** 'close': the stream is over (always once); 'drain': a write that returned false has gone. */
  on(event: 'close' | 'drain', listener: () => void): this;
  once(event: 'close' | 'drain', listener: () => void): this;
  off(event: 'close' | 'drain', listener: () => void): this;
}

/** Facts about the Noise connection a request arrived on; one frozen object per connection. */
export interface NoiseRequestContext {
  /** The client's machine key, authenticated by the Noise handshake. */
  readonly machineKey: MachinePublicKey;
  /** The client's protocol version from the initiation header (its capability version). */
  readonly protocolVersion: number;
  /** Sequence number of the connection in this transport, for logs. */
  readonly connectionId: number;
  readonly remoteAddress: string | undefined;
  readonly via: 'http-upgrade' | 'websocket';
  /** The challenge key sent in the early payload; null on WebSocket (no early payload). */
  readonly nodeKeyChallenge: ChallengePublicKey | null;
  /** Limit for readRequestBody. */
  readonly maxRequestBodyBytes: number;
}

/**
 * Handles one HTTP/2 request. Runs for every request of every Noise
 * connection; a rejected promise or throw becomes a 500 (or the HeadwayError's status).
 */
export type NoiseRequestHandler = (req: NoiseRequest, res: NoiseResponse, ctx: NoiseRequestContext) => void | Promise<void>;

/**
 * Client endpoints of protocol.md §7 that real clients call. Without a handler for them they
 * get 501, which Tailscale clients log and tolerate; any other path is 404.
 */
const KNOWN_CLIENT_PATHS: readonly RegExp[] = [
  /^\/machine\/register$/,
  /^\/machine\/map$/,
  /^\/machine\/set-dns$/,
  /^\/machine\/id-token$/,
  /^\/machine\/audit-log$/,
  /^\/machine\/set-device-attr$/,
  /^\/machine\/feature\/query$/,
  /^\/machine\/webclient\//,
  /^\/machine\/update-health$/,
  /^\/machine\/whoami$/,
  /^\/machine\/tka\//,
  /^\/machine\/ssh\/action\//,
];

export function isKnownClientPath(path: string): boolean {
  return KNOWN_CLIENT_PATHS.some((re) => re.test(path));
}

/** The answer when no handler takes a request: 501 for known client endpoints, else 404. */
export const defaultNoiseHandler: NoiseRequestHandler = (req, res) => {
  const path = pathOf(req);
  const status = isKnownClientPath(path) ? 501 : 404;
  const body = status === 501 ? `${path}: not implemented by this server\n` : `${path}: not found\n`;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
  res.end(body);
};

/** The request path without the query string. */
export function pathOf(req: { readonly url: string }): string {
  const raw = req.url;
  const q = raw.indexOf('?');
  return q === -1 ? raw : raw.slice(0, q);
}

/**
 * Reads a request body up to `maxBytes` (the connection's limit by default). Over the limit it
 * rejects with HW_CONTROL_BODY_TOO_LARGE and stops reading; the transport answers 413.
 */
export function readRequestBody(req: NoiseRequest, maxBytes: number): Promise<Buffer> {
  return req.readBody(maxBytes);
}

export function bodyTooLarge(path: string, bytes: number, limit: number): HeadwayError {
  return new HeadwayError(ControlErrors.BODY_TOO_LARGE, `${path}: request body of ${bytes}+ bytes exceeds the limit of ${limit} bytes`);
}
