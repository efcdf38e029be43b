// Reading a /ts2021 upgrade request and answering on the raw socket (protocol.md §3,
// controlhttpserver.go). Node hands upgrades to the server's 'upgrade' event with the socket
// detached from its HTTP machinery, so every answer here is written by hand.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_CODES } from 'node:http';

export const UPGRADE_PATH = '/ts2021';
export const UPGRADE_PROTOCOL = 'tailscale-control-protocol';
export const HANDSHAKE_HEADER = 'x-tailscale-handshake';
/** The query parameter of the WebSocket variant (same name as the header, case as sent). */
export const HANDSHAKE_QUERY_PARAMETER = 'X-Tailscale-Handshake';

/**
 * The 101 answer. `Upgrade` must be exactly this value (the client compares case-sensitively),
 * and Go's HTTP client only hands over a writable body when `Connection: upgrade` is present.
 */
export const SWITCHING_PROTOCOLS = Buffer.from(
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${UPGRADE_PROTOCOL}\r\nConnection: upgrade\r\n\r\n`,
  'latin1',
);

// Standard base64 with padding, as Go's base64.StdEncoding.DecodeString accepts it; Node's own
// decoder silently skips junk, which would turn garbage into a "valid" short initiation.
const STRICT_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes standard padded base64, or null when it is not exactly that. */
export function decodeStrictBase64(text: string): Buffer | null {
  if (!STRICT_BASE64.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/** A single header value; repeated headers (joined or arrays) count as malformed. */
export function singleHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** Writes a small plain-text HTTP/1.1 answer on a detached socket and closes it. */
export function writeRawResponse(socket: Duplex, status: number, text: string, extraHeaders: Record<string, string> = {}): void {
  const body = Buffer.from(`${text}\n`, 'utf8');
  const headers = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(body.length),
    Connection: 'close',
    ...extraHeaders,
  };
  const head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  // A client that never reads must not keep the socket: end() flushes, destroySoon-style.
  setTimeout(() => socket.destroy(), 1000).unref();
}
