// GET /key?v=<capver> (protocol.md §2): the server's Noise public key, fetched the way
// tailscaled does it (status 200 required, at most 64 KiB read, `publicKey` must be non-zero).
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { CURRENT_CAPVER } from '../tailcfg/index.js';
import { parsePublicKey, type MachinePublicKey } from '../key/index.js';
import { HeadwayError } from '../util/headway-error.js';
import { ClientErrors } from './errors.js';
import { parseServerUrl } from './server-url.js';

const MAX_KEY_RESPONSE_BYTES = 64 << 10;

export interface FetchServerKeyOptions {
  /** Sent as `?v=`; the client's capability version. */
  protocolVersion?: number;
  timeoutMs?: number;
  /** For https URLs with a test certificate. */
  rejectUnauthorized?: boolean;
}

export async function fetchServerKey(serverUrl: string, options: FetchServerKeyOptions = {}): Promise<MachinePublicKey> {
  const address = parseServerUrl(serverUrl);
  const url = `${address.base}/key?v=${options.protocolVersion ?? CURRENT_CAPVER}`;
  const fail = (what: string, cause?: unknown): HeadwayError =>
    new HeadwayError(ClientErrors.KEY_FETCH_FAILED, `client: GET ${url}: ${what}`, cause === undefined ? undefined : { cause });
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const getter = address.secure ? httpsGet : httpGet;
    const req = getter(url, { timeout: options.timeoutMs ?? 10_000, rejectUnauthorized: options.rejectUnauthorized ?? true }, resolve);
    req.on('timeout', () => req.destroy(fail('timed out')));
    req.on('error', (err) => reject(err instanceof HeadwayError ? err : fail(err.message, err)));
  });
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res) {
    total += (chunk as Buffer).length;
    if (total > MAX_KEY_RESPONSE_BYTES) {
      res.destroy();
      throw fail(`response larger than ${MAX_KEY_RESPONSE_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (res.statusCode !== 200) throw fail(`HTTP ${res.statusCode ?? '?'}: ${text.slice(0, 200).trim()}`);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw fail('response is not JSON', err);
  }
  const publicKey = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)['publicKey'] : undefined;
  if (typeof publicKey !== 'string') throw fail('response has no string "publicKey"');
  let key: MachinePublicKey | null;
  try {
    key = parsePublicKey('machine', publicKey);
  } catch (err) {
    throw fail(`"publicKey" is not an mkey: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  if (key === null) throw fail('control server is too old; no noise key (publicKey is zero)');
  return key;
}
