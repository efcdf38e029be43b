// HPACK encoding of our responses' header blocks: the static table for :status and header
// names, every value as a literal without indexing and without Huffman (RFC 7541 §6.2.2). It
// never touches the client's decoding table, so the client's SETTINGS_HEADER_TABLE_SIZE needs
// no answer.
import { STATIC_TABLE } from './hpack-tables.js';
import { CONNECTION_HEADERS, FIELD_NAME } from './request-headers.js';

/** Header names (lowercase) to their first static table index. */
const STATIC_NAME_INDEX = new Map<string, number>();
/** `:status` values with an entry of their own. */
const STATIC_STATUS_INDEX = new Map<string, number>();
STATIC_TABLE.forEach(([name, value], i) => {
  if (!STATIC_NAME_INDEX.has(name)) STATIC_NAME_INDEX.set(name, i + 1);
  if (name === ':status') STATIC_STATUS_INDEX.set(value, i + 1);
});

// Visible characters, space and tab; no CR, LF or NUL (RFC 9113 §8.2.1).
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Headers of a response as handlers give them. */
export type ResponseHeaders = Readonly<Record<string, string | number | readonly string[]>>;

/**
 * Encodes `:status` and `headers`. Throws on a name or value HTTP/2 cannot carry; HTTP/1
 * connection headers are dropped as RFC 9113 §8.2.2 requires.
 */
export function encodeResponseHeaders(status: number, headers: ResponseHeaders): Buffer {
  if (!Number.isInteger(status) || status < 100 || status > 999) throw new Error(`invalid response status ${status}`);
  const parts: number[] = [];
  const statusText = String(status);
  const indexed = STATIC_STATUS_INDEX.get(statusText);
  if (indexed !== undefined) writeInteger(parts, 0x80, 7, indexed);
  else writeLiteral(parts, STATIC_NAME_INDEX.get(':status')!, ':status', statusText);
  for (const [rawName, raw] of Object.entries(headers)) {
    const name = rawName.toLowerCase();
    if (CONNECTION_HEADERS.has(name)) continue;
    if (!FIELD_NAME.test(name)) throw new Error(`invalid response header name ${JSON.stringify(rawName)}`);
    const values = Array.isArray(raw) ? (raw as readonly string[]) : [String(raw)];
    for (const value of values) {
      if (!FIELD_VALUE.test(value)) throw new Error(`invalid value for response header ${name}`);
      writeLiteral(parts, STATIC_NAME_INDEX.get(name) ?? 0, name, value);
    }
  }
  return Buffer.from(parts);
}

/** Literal header field without indexing (§6.2.2), raw strings. */
function writeLiteral(out: number[], nameIndex: number, name: string, value: string): void {
  writeInteger(out, 0x00, 4, nameIndex);
  if (nameIndex === 0) writeString(out, name);
  writeString(out, value);
}

function writeString(out: number[], text: string): void {
  const bytes = Buffer.from(text, 'latin1');
  writeInteger(out, 0x00, 7, bytes.length);
  for (const byte of bytes) out.push(byte);
}

/** RFC 7541 §5.1 with `pattern` in the bits above the prefix. */
export function writeInteger(out: number[], pattern: number, prefixBits: number, value: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(pattern | value);
    return;
  }
  out.push(pattern | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}
