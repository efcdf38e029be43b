// What a request handler over the Noise connection receives, the default answers for paths
// nobody handles, and the bounded body reader every handler uses.
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import type { ChallengePublicKey, MachinePublicKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ControlErrors } from './errors.js';
import type { H2DataSplice } from './h2-data-splice.js';

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
  /** Writes long-lived response bodies (map streams) below node:http2; see h2-data-splice.ts. */
  readonly splice: H2DataSplice | null;
}

/**
 * Handles one HTTP/2 request (compatibility API). Runs for every request of every Noise
 * connection; a rejected promise or throw becomes a 500 (or the HeadwayError's status).
 */
export type NoiseRequestHandler = (req: Http2ServerRequest, res: Http2ServerResponse, ctx: NoiseRequestContext) => void | Promise<void>;

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
export function pathOf(req: Http2ServerRequest): string {
  const raw = req.url;
  const q = raw.indexOf('?');
  return q === -1 ? raw : raw.slice(0, q);
}

/**
 * Reads a request body up to `maxBytes` (the connection's limit by default). Over the limit it
 * rejects with HW_CONTROL_BODY_TOO_LARGE and stops reading; the transport answers 413.
 */
export function readRequestBody(req: Http2ServerRequest, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge(pathOf(req), declared, maxBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.length;
      if (total > maxBytes) {
        cleanup();
        req.pause();
        reject(tooLarge(pathOf(req), total, maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, total));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onAborted = (): void => {
      cleanup();
      reject(new Error(`${pathOf(req)}: request aborted by the client`));
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

function tooLarge(path: string, bytes: number, limit: number): HeadwayError {
  return new HeadwayError(ControlErrors.BODY_TOO_LARGE, `${path}: request body of ${bytes}+ bytes exceeds the limit of ${limit} bytes`);
}
