// The client half of the /ts2021 upgrade over a raw socket (protocol.md §3.2-3.3), written
// without the server's code so a shared misreading cannot hide: the request as Go's transport
// sends it, and the checks tailscaled makes on the answer (status exactly 101, `Upgrade`
// exactly `tailscale-control-protocol`, case-sensitive, and a `Connection` header with the
// `upgrade` token, without which Go would not hand over the connection).
import type { Duplex } from 'node:stream';
import { HeadwayError } from '../util/headway-error.js';
import { ClientErrors } from './errors.js';
import { StreamReader } from './stream-reader.js';

const UPGRADE_VALUE = 'tailscale-control-protocol';
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const MAX_HEAD_BYTES = 16 << 10;
const MAX_ERROR_BODY_BYTES = 4 << 10;

export function buildUpgradeRequest(authority: string, initiationBase64: string): Buffer {
  return Buffer.from(
    'POST /ts2021 HTTP/1.1\r\n' +
      `Host: ${authority}\r\n` +
      'User-Agent: headway-client\r\n' +
      `Upgrade: ${UPGRADE_VALUE}\r\n` +
      'Connection: upgrade\r\n' +
      `X-Tailscale-Handshake: ${initiationBase64}\r\n` +
      'Content-Length: 0\r\n' +
      '\r\n',
    'latin1',
  );
}

export interface ResponseHead {
  readonly httpVersion: string;
  readonly status: number;
  readonly reason: string;
  /** Header names lower-cased; repeated headers keep every value. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

/** Parses an HTTP/1.x response head (status line and header lines, without the blank line). */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const statusLine = /^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0] ?? '');
  if (statusLine === null) throw new Error(`not an HTTP/1.x status line: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`);
  const headers = new Map<string, string[]>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`malformed header line ${JSON.stringify(line.slice(0, 60))}`);
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const values = headers.get(name);
    if (values === undefined) headers.set(name, [value]);
    else values.push(value);
  }
  return { httpVersion: statusLine[1] ?? '', status: Number(statusLine[2]), reason: statusLine[3] ?? '', headers };
}

/** Why a 101 head would not be accepted by tailscaled, or null when it would. */
export function upgradeHeadProblem(head: ResponseHead): string | null {
  if (head.status !== 101) return `unexpected HTTP response: ${head.status} ${head.reason}`;
  const upgrade = head.headers.get('upgrade')?.[0];
  if (upgrade !== UPGRADE_VALUE) return `server switched to unexpected protocol ${JSON.stringify(upgrade ?? '')}`;
  const connectionTokens = (head.headers.get('connection') ?? []).flatMap((v) => v.split(',')).map((t) => t.trim().toLowerCase());
  if (!connectionTokens.includes('upgrade')) return '101 response without "Connection: upgrade"';
  return null;
}

/**
 * Sends the upgrade request on `socket` and reads the answer head. Returns the reader holding
 * whatever followed the head (the start of the Noise stream). Refusals throw
 * HW_CLIENT_UPGRADE_FAILED with the status and the server's short text.
 */
export async function upgradeToNoise(socket: Duplex, where: string, authority: string, initiationBase64: string): Promise<StreamReader> {
  const reader = new StreamReader(socket);
  socket.write(buildUpgradeRequest(authority, initiationBase64));
  const fail = (what: string, cause?: unknown): HeadwayError =>
    new HeadwayError(ClientErrors.UPGRADE_FAILED, `client: POST ${where}/ts2021: ${what}`, cause === undefined ? undefined : { cause });
  let head: ResponseHead;
  try {
    const end = await reader.find(HEAD_END, MAX_HEAD_BYTES, 'the response head');
    head = parseResponseHead(reader.take(end).toString('latin1'));
    reader.take(HEAD_END.length);
  } catch (err) {
    reader.release();
    throw fail(err instanceof Error ? err.message : String(err), err);
  }
  const problem = upgradeHeadProblem(head);
  if (problem !== null) {
    // A 1xx head has no body; anything after it is already the other protocol.
    const body = head.status >= 200 ? await readErrorBody(reader, head) : '';
    reader.release();
    throw fail(body === '' ? problem : `${problem}: ${body}`);
  }
  return reader;
}

/** Best effort: the short text body of a refusal, for the error message. */
async function readErrorBody(reader: StreamReader, head: ResponseHead): Promise<string> {
  const declared = Number(head.headers.get('content-length')?.[0]);
  const want = Number.isFinite(declared) ? Math.min(declared, MAX_ERROR_BODY_BYTES) : MAX_ERROR_BODY_BYTES;
  try {
    await reader.need(want, 'the error body');
  } catch {
    // The server closed early; use what arrived.
  }
  return reader.take(want).toString('utf8').trim().slice(0, 200);
}
