// The rules a request's header list must follow in HTTP/2 (RFC 9113 §8.2-8.3): lowercase
// names, pseudo-headers first and only the request ones, each once, :method/:scheme/:path
// present, no HTTP/1 connection headers, `te` only "trailers". A list that breaks them is a
// malformed request (the connection answers RST_STREAM PROTOCOL_ERROR).

export interface CheckedRequestHeaders {
  readonly method: string;
  readonly path: string;
  /** Pseudo-headers included; repeated fields joined (cookie with "; ", others ", "). */
  readonly headers: Record<string, string>;
}

const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path']);
/** HTTP/1 connection-specific fields, which HTTP/2 forbids (§8.2.2). */
export const CONNECTION_HEADERS: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
// A token (RFC 9110 §5.6.2) without uppercase letters.
export const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
// No NUL, CR or LF anywhere, no leading or trailing whitespace (§8.2.1).
const BAD_VALUE = /[\0\r\n]|^[ \t]|[ \t]$/;

/** The request's method, path and headers, or null when the list is malformed. */
export function checkRequestHeaders(fields: ReadonlyArray<readonly [string, string]>): CheckedRequestHeaders | null {
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  let regularSeen = false;
  for (const [name, value] of fields) {
    if (BAD_VALUE.test(value)) return null;
    if (name.startsWith(':')) {
      if (regularSeen || !REQUEST_PSEUDO.has(name) || headers[name] !== undefined) return null;
      headers[name] = value;
      continue;
    }
    regularSeen = true;
    if (!FIELD_NAME.test(name) || CONNECTION_HEADERS.has(name)) return null;
    if (name === 'te' && value !== 'trailers') return null;
    const previous = headers[name];
    headers[name] = previous === undefined ? value : `${previous}${name === 'cookie' ? '; ' : ', '}${value}`;
  }
  const method = headers[':method'];
  const path = headers[':path'];
  if (method === undefined || method === '') return null;
  // CONNECT carries only :authority (§8.5); no control endpoint takes it, the handler answers.
  if (method === 'CONNECT') return headers[':authority'] === undefined ? null : { method, path: path ?? '', headers };
  if (headers[':scheme'] === undefined || path === undefined || path === '') return null;
  return { method, path, headers };
}
